"""Discretisation, mutual information and entropy of discrete columns (MIG, modularity).

Natural logarithms throughout (nats), as ``sklearn.metrics.mutual_info_score`` that
disentanglement_lib calls per pair. Here all (code, factor) pairs come from one product of
one-hot matrices instead of a loop over pairs.
"""

from __future__ import annotations

import numpy as np

from vaelab.evaluation.disentanglement.settings import NUM_BINS


def histogram_discretize(codes: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """Each column of ``codes`` [N, D] → bin indices 1..num_bins of ``num_bins`` equal-width
    bins over the column's range (disentanglement_lib's ``histogram_discretizer``: NumPy's
    histogram edges, the maximum in the last bin). A constant column lands in one bin."""
    discrete = np.empty(codes.shape, dtype=np.int64)
    for column in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, column], num_bins)
        discrete[:, column] = np.digitize(codes[:, column], edges[:-1])
    return discrete


def _one_hot_columns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, K] integer columns → (one-hot [N, S] over every column's observed values, the
    start index of each column's block [K])."""
    blocks, starts, offset = [], [], 0
    for column in values.T:
        _, inverse = np.unique(column, return_inverse=True)
        states = int(inverse.max()) + 1
        block = np.zeros((len(column), states))
        block[np.arange(len(column)), inverse] = 1.0
        blocks.append(block)
        starts.append(offset)
        offset += states
    return np.concatenate(blocks, axis=1), np.asarray(starts)


def discrete_mutual_information(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """I(first_i; second_j) in nats for every column pair of [N, A] and [N, B] integer
    arrays, from the empirical joint distribution: [A, B]."""
    one_hot_a, starts_a = _one_hot_columns(first)
    one_hot_b, starts_b = _one_hot_columns(second)
    num = len(first)
    joint = one_hot_a.T @ one_hot_b / num  # p(a = s, b = t) of every pair of columns
    outer = np.outer(one_hot_a.mean(0), one_hot_b.mean(0))
    positive = joint > 0
    terms = np.zeros_like(joint)
    terms[positive] = joint[positive] * np.log(joint[positive] / outer[positive])
    return np.add.reduceat(np.add.reduceat(terms, starts_a, axis=0), starts_b, axis=1)


def discrete_entropy(values: np.ndarray) -> np.ndarray:
    """H(values_j) in nats of each column of an [N, K] integer array: [K]."""
    entropies = np.empty(values.shape[1])
    for index, column in enumerate(values.T):
        _, counts = np.unique(column, return_counts=True)
        p = counts / counts.sum()
        entropies[index] = -(p * np.log(p)).sum()
    return entropies
