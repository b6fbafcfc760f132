"""Modularity and explicitness (Ridgeway & Mozer 2018, "Learning Deep Disentangled
Embeddings With the F-Statistic Loss", the two criteria they define).

Modularity: with m_dk the mutual information between code d (discretised into 20 bins, as in
disentanglement_lib) and factor k, and θ_d = max_k m_dk,

    δ_d = Σ_{k ≠ argmax} m_dk² / (θ_d² (F − 1)),   modularity = mean_d (1 − δ_d)

(a code with no information about any factor scores 0). Explicitness: per factor, a one-vs-rest
logistic regression (scikit-learn's default ``LogisticRegression``) on all codes, standardised
with the training mean and deviation; the score is the mean over factors of the macro ROC-AUC
on held-out points. Defaults (10 000 / 5 000 points) are disentanglement_lib's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from vaelab.evaluation.disentanglement.information import (
    discrete_mutual_information,
    histogram_discretize,
)
from vaelab.evaluation.disentanglement.sampling import FactorCodes
from vaelab.evaluation.disentanglement.settings import NUM_BINS
from vaelab.stage_progress import Stage


@dataclass
class ModularityExplicitness:
    modularity: float
    explicitness_train: float
    explicitness_test: float


def modularity(mutual_information: np.ndarray) -> float:
    """Mean over codes of 1 − δ_d for a mutual-information matrix [D, F]."""
    squared = mutual_information**2
    largest = squared.max(axis=1)
    num_factors = squared.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = (squared.sum(axis=1) - largest) / (largest * (num_factors - 1))
    return float(np.mean(np.where(largest > 0, 1.0 - deviation, 0.0)))


def _macro_auc(classes: np.ndarray, labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean one-vs-rest ROC-AUC over the classes that occur (and do not fill) ``labels``."""
    aucs = [
        roc_auc_score(labels == value, probabilities[:, column])
        for column, value in enumerate(classes)
        if 0 < np.sum(labels == value) < len(labels)
    ]
    return float(np.mean(aucs))


def modularity_explicitness(
    train: FactorCodes,
    test: FactorCodes,
    num_bins: int = NUM_BINS,
    progress: Stage | None = None,
) -> ModularityExplicitness:
    """Both criteria; ``progress`` advances by one per factor's classifier."""
    mutual_information = discrete_mutual_information(
        histogram_discretize(train.codes, num_bins), train.factors
    )
    mean, std = train.codes.mean(0), train.codes.std(0)
    std = np.where(std > 0, std, 1.0)
    train_codes, test_codes = (train.codes - mean) / std, (test.codes - mean) / std
    train_auc, test_auc = [], []
    for factor in range(train.factors.shape[1]):
        classifier = LogisticRegression()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier.fit(train_codes, train.factors[:, factor])
        for codes, labels, out in (
            (train_codes, train.factors[:, factor], train_auc),
            (test_codes, test.factors[:, factor], test_auc),
        ):
            out.append(_macro_auc(classifier.classes_, labels, classifier.predict_proba(codes)))
        if progress is not None:
            progress.advance()
    return ModularityExplicitness(
        modularity=modularity(mutual_information),
        explicitness_train=float(np.mean(train_auc)),
        explicitness_test=float(np.mean(test_auc)),
    )
