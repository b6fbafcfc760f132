"""p(x|z) = N(x; decoder output, σ²I) with one σ² set by a closed-form fit (PPCA's noise,
Tipping & Bishop 1999, eq. 2), not learned by gradient steps."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution, Normal

from vaelab.likelihoods.base import EVENT_DIMS, Likelihood


def at_least_float32(tensor: Tensor) -> Tensor:
    """``tensor`` in float32, or float64 when it already is (a model fitted in float64 keeps
    its precision; bfloat16 weights are read in float32)."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


class IsotropicGaussianLikelihood(Likelihood):
    """Every pixel ~ N(mean, σ²) with the same σ² (a buffer, saved with the checkpoint)."""

    params_per_channel = 1
    is_continuous = True

    def __init__(self, variance: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("variance", torch.tensor(float(variance)))

    def pixel_distribution(self, decoder_output: Tensor) -> Distribution:
        scale = self.variance.sqrt().to(decoder_output)
        return Normal(decoder_output, scale.expand_as(decoder_output), validate_args=False)

    def log_prob(self, decoder_output: Tensor, x: Tensor) -> Tensor:
        """log N(x; mean, σ²I) summed over pixels, in float32 or the model's float64."""
        mean = at_least_float32(decoder_output)
        return (
            self.pixel_distribution(mean).log_prob(x.to(mean)).sum(dim=tuple(range(-EVENT_DIMS, 0)))
        )

    def mean(self, decoder_output: Tensor) -> Tensor:
        return at_least_float32(decoder_output)
