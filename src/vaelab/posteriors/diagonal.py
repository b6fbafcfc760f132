"""Diagonal Gaussian posterior N(μ, diag σ²) (Kingma & Welling 2014, eq. 9)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal

from vaelab.posteriors.base import Posterior
from vaelab.schema import checked_arguments

#: how the encoder's second half is read: log σ² (seeds 000 lecture, 002, 003) or log σ
#: (seed 000's Pyro VAE, seeds 001 and 004: "scale = exp(encoder output)")
Parameterization = Literal["log_var", "log_scale"]


@checked_arguments("model.posterior")
class DiagonalGaussianPosterior(Posterior):
    """The encoder outputs (μ, s); σ = exp(s/2) for ``log_var``, exp(s) for ``log_scale``;
    z = μ + σ ⊙ ε with ε ~ N(0, I)."""

    def __init__(self, parameterization: Parameterization = "log_var") -> None:
        super().__init__()
        self.parameterization = parameterization

    def num_params(self, latent_dim: int) -> int:
        return 2 * latent_dim

    def distribution(self, encoder_output: Tensor) -> Distribution:
        mu, raw = torch.chunk(encoder_output.float(), 2, dim=-1)
        log_scale = 0.5 * raw if self.parameterization == "log_var" else raw
        # validate_args=False: no argument checks in the training hot path (each is a kernel and,
        # on a GPU, a host sync); a non-finite loss is caught by the module's check_finite
        return Independent(
            Normal(mu, torch.exp(log_scale), validate_args=False), 1, validate_args=False
        )

    def mean(self, encoder_output: Tensor) -> Tensor:
        return torch.chunk(encoder_output.float(), 2, dim=-1)[0]
