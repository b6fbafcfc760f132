"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams 2018, "A
Framework for the Quantitative Evaluation of Disentangled Representations", the D, C and I
of its framework section).

A regressor per factor k predicts v_k from all codes; R_dk is the importance of code d for
factor k. As in disentanglement_lib, the predictor is scikit-learn's default
``GradientBoostingClassifier`` (100 trees of depth 3), fit on ``num_train`` = 10 000 points, and
R_dk its (impurity) feature importances. With P_dk = R_dk / Σ_k' R_dk' and
P̃_dk = R_dk / Σ_d' R_d'k,

    D_d = 1 − H_F(P_d·)    (entropy base F = number of factors),   D = Σ_d w_d D_d,
    w_d = Σ_k R_dk / Σ_dk R_dk;
    C_k = 1 − H_D(P̃_·k)  (entropy base D = number of codes),     C = Σ_k w̃_k C_k,
    w̃_k = Σ_d R_dk / Σ_dk R_dk;

informativeness is the predictors' accuracy on ``num_eval`` = 5 000 held-out points (the
paper's prediction error, as an accuracy, disentanglement_lib's ``informativeness_test``).

The factors' classifiers are independent fits with the same seed, so they run side by side on
the CPUs this process has (threads: scikit-learn's tree building releases the GIL), the
largest first; the codes are handed over once as the contiguous float32 array the trees read.
Each fit is the one a serial loop would make, so the scores are the same bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import entropy
from sklearn.ensemble import GradientBoostingClassifier

from vaelab.evaluation.disentanglement.sampling import FactorCodes
from vaelab.stage_progress import Stage
from vaelab.threads import cpu_limits

#: added to every importance before the entropies, as in disentanglement_lib (empty rows)
IMPORTANCE_FLOOR = 1e-11
#: boosting stages of scikit-learn's default GradientBoostingClassifier
BOOSTING_STAGES = 100


@dataclass
class DCIScores:
    disentanglement: float
    completeness: float
    informativeness_train: float
    informativeness_test: float
    importance: np.ndarray  # [D, F]


def weighted_dci(importance: np.ndarray) -> tuple[float, float]:
    """(D, C) of an importance matrix [D, F] (codes × factors), as in the formulas above."""
    num_codes, num_factors = importance.shape
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    floored = importance + IMPORTANCE_FLOOR
    per_code = 1.0 - entropy(floored.T, base=num_factors)  # entropy over each row
    per_factor = 1.0 - entropy(floored, base=num_codes)  # entropy over each column
    code_weight = weights.sum(axis=1) / weights.sum()
    factor_weight = weights.sum(axis=0) / weights.sum()
    return float(per_code @ code_weight), float(per_factor @ factor_weight)


def trees_per_factor(train: FactorCodes, stages: int = BOOSTING_STAGES) -> list[int]:
    """Trees each factor's classifier grows: one per class and stage (one per stage for a
    binary factor)."""
    classes = [len(np.unique(column)) for column in train.factors.T]
    return [stages * (count if count > 2 else 1) for count in classes]


@dataclass
class FactorFit:
    """One factor's classifier: its importances [D] and its accuracies."""

    factor: int
    importance: np.ndarray
    train_accuracy: float
    test_accuracy: float


def fit_factor(
    factor: int,
    train_codes: np.ndarray,
    test_codes: np.ndarray,
    train: FactorCodes,
    test: FactorCodes,
    seed: int,
) -> FactorFit:
    """Fit factor ``factor``'s default gradient-boosted-tree classifier on the codes."""
    model = GradientBoostingClassifier(random_state=seed)
    model.fit(train_codes, train.factors[:, factor])
    return FactorFit(
        factor=factor,
        importance=np.abs(model.feature_importances_),
        train_accuracy=model.score(train_codes, train.factors[:, factor]),
        test_accuracy=model.score(test_codes, test.factors[:, factor]),
    )


def dci_scores(
    train: FactorCodes,
    test: FactorCodes,
    seed: int = 0,
    progress: Stage | None = None,
    workers: int | None = None,
) -> DCIScores:
    """Fit one gradient-boosted-tree classifier per factor; importance → D and C.
    ``workers``: classifiers fitted at once (default: this process's CPUs, at most one per
    factor). ``progress`` advances by the trees of each factor's classifier as it finishes."""
    num_factors = train.factors.shape[1]
    trees = trees_per_factor(train)
    workers = min(num_factors, workers or cpu_limits().available)
    train_codes = np.ascontiguousarray(train.codes, dtype=np.float32)
    test_codes = np.ascontiguousarray(test.codes, dtype=np.float32)
    largest_first = sorted(range(num_factors), key=lambda factor: -trees[factor])
    fits: dict[int, FactorFit] = {}
    parallel = Parallel(n_jobs=workers, backend="threading", return_as="generator_unordered")
    for fit in parallel(
        delayed(fit_factor)(factor, train_codes, test_codes, train, test, seed)
        for factor in largest_first
    ):
        fits[fit.factor] = fit
        if progress is not None:
            progress.advance(trees[fit.factor])
    importance = np.stack([fits[factor].importance for factor in range(num_factors)], axis=1)
    disentanglement, completeness = weighted_dci(importance)
    return DCIScores(
        disentanglement=disentanglement,
        completeness=completeness,
        informativeness_train=float(np.mean([fits[f].train_accuracy for f in range(num_factors)])),
        informativeness_test=float(np.mean([fits[f].test_accuracy for f in range(num_factors)])),
        importance=importance,
    )
