"""vaelab.evaluation.disentanglement.dci: the factors' classifiers fitted side by side give the
scores of one scikit-learn fit per factor, bit for bit."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier

from vaelab.evaluation.disentanglement.dci import dci_scores, trees_per_factor, weighted_dci
from vaelab.evaluation.disentanglement.sampling import FactorCodes


def _factor_codes(num: int, seed: int) -> FactorCodes:
    """Two binary factors read back through noise, plus one noise code (float64)."""
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, 2, num), rng.integers(0, 2, num)], axis=1)
    codes = np.concatenate(
        [factors + 0.4 * rng.standard_normal(factors.shape), rng.standard_normal((num, 1))], axis=1
    )
    return FactorCodes(codes=codes, factors=factors)


class _Progress:
    def __init__(self) -> None:
        self.advanced: list[int] = []

    def advance(self, amount: int = 1) -> None:
        self.advanced.append(amount)


def test_parallel_fits_equal_one_direct_fit_per_factor():
    train, test = _factor_codes(60, seed=0), _factor_codes(40, seed=1)
    progress = _Progress()
    scores = dci_scores(train, test, seed=3, progress=progress, workers=2)
    importance, train_accuracy, test_accuracy = [], [], []
    for factor in range(train.factors.shape[1]):  # scikit-learn's default classifier, float64 codes
        model = GradientBoostingClassifier(random_state=3).fit(
            train.codes, train.factors[:, factor]
        )
        importance.append(model.feature_importances_)
        train_accuracy.append(model.score(train.codes, train.factors[:, factor]))
        test_accuracy.append(model.score(test.codes, test.factors[:, factor]))
    expected = np.stack(importance, axis=1)
    np.testing.assert_array_equal(scores.importance, expected)
    assert (scores.disentanglement, scores.completeness) == weighted_dci(expected)
    assert scores.informativeness_train == np.mean(train_accuracy)
    assert scores.informativeness_test == np.mean(test_accuracy)
    assert sorted(progress.advanced) == sorted(trees_per_factor(train)) == [100, 100]
