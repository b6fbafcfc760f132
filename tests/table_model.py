"""The table model of the regularised objectives' tests: data point n is the 1×1×1 image holding
n, and q(z|x_n) = N(μ_n, diag σ_n²) is read from a table, so the aggregate posterior of the data
set is an exact Gaussian mixture."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import (
    Distribution,
    Independent,
    Normal,
)
from typing_extensions import override

from vaelab.models.interface import LatentVariableModel
from vaelab.priors.standard_normal import StandardNormalPrior

SHAPE = (1, 1, 1)


class TableModel(LatentVariableModel):
    """x = n (a 1×1×1 image); q(z|x_n) = N(means[n], diag scales[n]²);
    p(x|z) = N(x; Σ_d z_d, 1); p(z) given (N(0, I) by default)."""

    def __init__(self, means: Tensor, scales: Tensor, prior: nn.Module | None = None) -> None:
        super().__init__()
        self.input_shape, self.latent_dim = SHAPE, means.shape[-1]
        self.means = nn.Parameter(means.clone())
        self.log_scales = nn.Parameter(scales.log())
        self._prior = prior or StandardNormalPrior()
        self._prior.setup(self.latent_dim, SHAPE, self.encode)

    @property
    def prior(self) -> nn.Module:
        return self._prior

    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        index = x.flatten().long()
        return Independent(Normal(self.means[index], self.log_scales[index].exp()), 1)

    @override
    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        return Independent(Normal(z.sum(-1).reshape(*z.shape[:-1], *SHAPE), 1.0), 3)

    @override
    def sample(self, num: int, y: Tensor | None = None, generator=None) -> Tensor:
        return self.decode(self.prior.sample(num)).mean


def table(num_points: int, latent_dim: int, seed: int = 0) -> TableModel:
    generator = torch.Generator().manual_seed(seed)
    means = torch.randn(num_points, latent_dim, generator=generator)
    scales = 0.3 + torch.rand(num_points, latent_dim, generator=generator)
    return TableModel(means, scales)


def indices(num: int) -> Tensor:
    return torch.arange(num, dtype=torch.float32).reshape(num, *SHAPE)
