"""Separated Attribute Predictability, SAP (Kumar et al. 2018, "Variational Inference of
Disentangled Latent Concepts from Unlabeled Observations", the SAP score they propose).

Score matrix S [D, F]: for discrete factors (disentanglement_lib's default,
``continuous_factors = False``), S_dk is the held-out accuracy of a linear SVM
(``LinearSVC(C=0.01, class_weight="balanced")``) that predicts factor k from code d alone,
trained on ``num_train`` = 10 000 and tested on ``num_eval`` = 5 000 points; for continuous
factors, the squared correlation R² of code d and factor k. SAP is the mean over factors of
the gap between the two largest entries of the factor's column.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from vaelab.evaluation.disentanglement.sampling import FactorCodes
from vaelab.stage_progress import Stage

#: LinearSVC regularisation of disentanglement_lib's discrete SAP
SVM_C = 0.01


def sap_score_matrix(
    train: FactorCodes,
    test: FactorCodes,
    continuous_factors: bool = False,
    progress: Stage | None = None,
) -> np.ndarray:
    """S [D, F] as defined above; ``progress`` advances by one per (code, factor) fit."""
    if continuous_factors:
        codes = train.codes - train.codes.mean(0)
        factors = train.factors - train.factors.mean(0)
        covariance = codes.T @ factors / (len(train) - 1)  # [D, F]
        variance_codes = codes.var(axis=0, ddof=1)[:, None]
        variance_factors = factors.var(axis=0, ddof=1)[None, :]
        scores = covariance**2 / (variance_codes * variance_factors)
        return np.where(variance_codes > 1e-12, scores, 0.0)
    num_codes, num_factors = train.codes.shape[1], train.factors.shape[1]
    scores = np.zeros((num_codes, num_factors))
    for code in range(num_codes):
        for factor in range(num_factors):
            classifier = LinearSVC(C=SVM_C, class_weight="balanced")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                classifier.fit(train.codes[:, [code]], train.factors[:, factor])
            predicted = classifier.predict(test.codes[:, [code]])
            scores[code, factor] = np.mean(predicted == test.factors[:, factor])
            if progress is not None:
                progress.advance()
    return scores


def fits(train: FactorCodes) -> int:
    """Classifiers the discrete score fits: one per (code, factor)."""
    return train.codes.shape[1] * train.factors.shape[1]


def sap_score(
    train: FactorCodes,
    test: FactorCodes,
    continuous_factors: bool = False,
    progress: Stage | None = None,
) -> float:
    """Mean over factors of the gap between the two most predictive codes."""
    scores = sap_score_matrix(train, test, continuous_factors, progress)
    ordered = np.sort(np.vstack([np.zeros((1, scores.shape[1])), scores]), axis=0)
    return float(np.mean(ordered[-1] - ordered[-2]))
