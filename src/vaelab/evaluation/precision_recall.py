"""Improved precision and recall of a generative model (Kynkäänniemi et al. 2019, "Improved
Precision and Recall Metric for Assessing Generative Models", Sec. 2, the definitions of
the manifold, precision and recall).

Each set's manifold is the union of balls around its points with radius the distance to the
point's k-th nearest neighbour within the set (k = 3, the paper's default). Precision is the
fraction of generated points inside the real manifold; recall the fraction of real points
inside the generated manifold. Distances are Euclidean in the feature space.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: neighbourhood size of the manifold estimate (the paper's k = 3)
NEIGHBOURS = 3
#: rows of a distance block (memory: CHUNK × N floats)
CHUNK = 1024


@dataclass
class PrecisionRecall:
    precision: float
    recall: float


def _kth_neighbour_radius(points: Tensor, k: int) -> Tensor:
    """Distance of each point [N] to its k-th nearest other point of the set."""
    radii = []
    for block in points.split(CHUNK):
        distances = torch.cdist(block, points)
        # the smallest distance is the point itself (0): take the (k + 1)-th smallest
        radii.append(distances.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _inside_fraction(queries: Tensor, centres: Tensor, radii: Tensor) -> float:
    """Fraction of ``queries`` within radius of at least one centre."""
    inside = [(torch.cdist(block, centres) <= radii).any(dim=1) for block in queries.split(CHUNK)]
    return float(torch.cat(inside).double().mean())


def precision_recall(real: Tensor, generated: Tensor, k: int = NEIGHBOURS) -> PrecisionRecall:
    """Precision and recall of ``generated`` [M, K] against ``real`` [N, K] features."""
    real, generated = real.double(), generated.double()
    return PrecisionRecall(
        precision=_inside_fraction(generated, real, _kth_neighbour_radius(real, k)),
        recall=_inside_fraction(real, generated, _kth_neighbour_radius(generated, k)),
    )
