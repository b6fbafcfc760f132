"""p(x|z) = N(x; decoder output, σ²I) with one σ² set by a closed-form fit (PPCA's noise,
Tipping & Bishop 1999, eq. 2), not learned by gradient steps."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution, Normal

from vaelab.likelihoods.base import Likelihood


class IsotropicGaussianLikelihood(Likelihood):
    """Every pixel ~ N(mean, σ²) with the same σ² (a buffer, saved with the checkpoint)."""

    params_per_channel = 1
    is_continuous = True

    def __init__(self, variance: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("variance", torch.tensor(float(variance)))

    def pixel_distribution(self, decoder_output: Tensor) -> Distribution:
        scale = self.variance.sqrt().to(decoder_output)
        return Normal(decoder_output, scale.expand_as(decoder_output))

    def mean(self, decoder_output: Tensor) -> Tensor:
        return decoder_output.float()
