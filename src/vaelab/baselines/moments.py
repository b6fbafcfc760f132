"""Running first and second moments of flattened images: the sufficient statistics of PCA and
probabilistic PCA, accumulated batch by batch in float64."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class PrincipalAxes:
    """Eigenvalues λ (descending) [D] and unit eigenvectors (columns) [D, D] of a covariance."""

    variances: Tensor
    directions: Tensor


def principal_axes(covariance: Tensor) -> PrincipalAxes:
    """Eigendecomposition of a symmetric covariance, largest variance first. Each direction's
    sign is fixed (its largest-magnitude entry is positive) so fits are reproducible."""
    values, vectors = torch.linalg.eigh(covariance)
    values, vectors = values.flip(0), vectors.flip(1)
    pivot = vectors.abs().argmax(dim=0)
    signs = torch.sign(vectors[pivot, torch.arange(vectors.shape[1])])
    signs[signs == 0] = 1
    return PrincipalAxes(values.clamp_min(0), vectors * signs)


class DataMoments(nn.Module):
    """n, Σx and Σxxᵀ over every vector passed to :meth:`update` (non-persistent buffers:
    checkpoints keep the fitted parameters, not the statistics)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = int(dim)
        self.register_buffer("count", torch.zeros((), dtype=torch.float64), persistent=False)
        self.register_buffer("total", torch.zeros(dim, dtype=torch.float64), persistent=False)
        self.register_buffer("outer", torch.zeros(dim, dim, dtype=torch.float64), persistent=False)

    def update(self, x: Tensor) -> None:
        """Add the rows of ``x`` [N, D]."""
        x = x.detach().to(torch.float64)
        self.count += x.shape[0]
        self.total += x.sum(dim=0)
        self.outer += x.T @ x

    def mean(self) -> Tensor:
        return self.total / self.count

    def covariance(self) -> Tensor:
        """The maximum-likelihood covariance S = (1/n) Σ (x − x̄)(x − x̄)ᵀ."""
        mean = self.mean()
        covariance = self.outer / self.count - torch.outer(mean, mean)
        return 0.5 * (covariance + covariance.T)
