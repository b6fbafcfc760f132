"""Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in
Variational Autoencoders", the MIG definition of its Sec. 4):

    MIG = 1/K Σ_k [ I(z_{j(k)}; v_k) − max_{j ≠ j(k)} I(z_j; v_k) ] / H(v_k),

with j(k) = argmax_j I(z_j; v_k). As in disentanglement_lib (``discrete_mig``), the mutual
information is that of the empirical joint distribution of the codes discretised into
``num_bins`` = 20 equal-width bins and the (discrete) factors, on ``num_train`` = 10 000 points;
the factors themselves are not binned.
"""

from __future__ import annotations

import numpy as np

from vaelab.evaluation.disentanglement.information import (
    discrete_entropy,
    discrete_mutual_information,
    histogram_discretize,
)
from vaelab.evaluation.disentanglement.sampling import FactorCodes
from vaelab.evaluation.disentanglement.settings import NUM_BINS


def mutual_information_gap(sample: FactorCodes, num_bins: int = NUM_BINS) -> float:
    """MIG of ``sample``."""
    mutual_information = discrete_mutual_information(
        histogram_discretize(sample.codes, num_bins), sample.factors
    )  # [D, F]
    # one code: the runner-up is "no code", with no information
    padded = np.vstack([mutual_information, np.zeros((1, mutual_information.shape[1]))])
    top_two = -np.sort(-padded, axis=0)[:2]
    return float(np.mean((top_two[0] - top_two[1]) / discrete_entropy(sample.factors)))
