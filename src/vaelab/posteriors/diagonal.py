"""Diagonal Gaussian posterior N(μ, diag σ²) (Kingma & Welling 2014, eq. 9)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from vaelab.posteriors.base import Posterior


class DiagonalGaussianPosterior(Posterior):
    """The encoder outputs (μ, log σ²); z = μ + σ ⊙ ε with ε ~ N(0, I)."""

    factorizes = True

    def num_params(self, latent_dim: int) -> int:
        return 2 * latent_dim

    def distribution(self, encoder_output: Tensor) -> Distribution:
        mu, log_var = torch.chunk(encoder_output.float(), 2, dim=-1)
        return Independent(Normal(mu, torch.exp(0.5 * log_var)), 1)

    def mean(self, encoder_output: Tensor) -> Tensor:
        return torch.chunk(encoder_output.float(), 2, dim=-1)[0]
