"""The log-cosh reconstruction loss (Chen, Chen & Zhang 2019, "Log Hyperbolic Cosine Loss
Improves Variational Auto-Encoder", OpenReview)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from vaelab.likelihoods.base import EVENT_DIMS
from vaelab.likelihoods.reconstruction_loss import ReconstructionLoss
from vaelab.schema import PositiveFloat, checked_arguments


def log_cosh(error: Tensor, alpha: float) -> Tensor:
    """f(t; a) = (1/a)·log cosh(a·t) (the paper's loss, §2), computed stably as
    (1/a)·(|a t| + softplus(−2|a t|) − log 2): ≈ a t²/2 for |a t| ≪ 1 (the squared error)
    and ≈ |t| − log(2)/a for |a t| ≫ 1 (the absolute error)."""
    scaled = (alpha * error).abs()
    return (scaled + F.softplus(-2 * scaled) - math.log(2)) / alpha


@checked_arguments("model.likelihood")
class LogCoshLoss(ReconstructionLoss):
    """L(x, x̂) = Σ_pixels f(x̂_i − x_i; α), f(t; a) = (1/a)·log cosh(a·t) (Chen et al. 2019):
    quadratic for small errors, linear for large ones, so it is sharper than the squared
    error and smooth at 0. The paper's a = α = 10 is the default. A loss, not a normalised
    likelihood (:mod:`vaelab.likelihoods.reconstruction_loss`)."""

    def __init__(self, alpha: PositiveFloat = 10.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def loss(self, reconstruction: Tensor, x: Tensor) -> Tensor:
        per_pixel = log_cosh(reconstruction - x, self.alpha)
        return per_pixel.sum(dim=tuple(range(-EVENT_DIMS, 0)))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"
