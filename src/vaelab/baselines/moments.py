"""Running first and second moments of flattened images: the sufficient statistics of PCA and
probabilistic PCA, accumulated batch by batch in float64 and summed over processes under DDP."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
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


@dataclass
class MomentSums:
    """n, Σx [D] and Σxxᵀ [D, D] (float64) of a set of vectors."""

    count: Tensor
    total: Tensor
    outer: Tensor

    def mean(self) -> Tensor:
        return self.total / self.count

    def covariance(self) -> Tensor:
        """The maximum-likelihood covariance S = (1/n) Σ (x − x̄)(x − x̄)ᵀ."""
        mean = self.mean()
        covariance = self.outer / self.count - torch.outer(mean, mean)
        return 0.5 * (covariance + covariance.T)


class DataMoments(nn.Module):
    """n, Σx and Σxxᵀ over every vector passed to :meth:`update` in this process
    (non-persistent buffers: checkpoints keep the fitted parameters, not the statistics)."""

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

    def local_sums(self) -> MomentSums:
        """The sums of this process's vectors (copies)."""
        return MomentSums(self.count.clone(), self.total.clone(), self.outer.clone())

    def summed_over_processes(self) -> MomentSums:
        """The sums over the vectors of every process: one all-reduce when torch.distributed
        is initialised (a collective: every rank must call it at the same point), else
        :meth:`local_sums`. Under DDP each rank sees a shard; the fit needs them all."""
        sums = self.local_sums()
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return sums
        packed = torch.cat([sums.count.reshape(1), sums.total, sums.outer.flatten()])
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
        count, total, outer = packed.split([1, self.dim, self.dim * self.dim])
        return MomentSums(count.reshape(()), total, outer.reshape(self.dim, self.dim))

    def mean(self) -> Tensor:
        """The mean of this process's vectors."""
        return self.local_sums().mean()

    def covariance(self) -> Tensor:
        """The maximum-likelihood covariance of this process's vectors."""
        return self.local_sums().covariance()
