"""Laplace likelihood per pixel: the L1 reconstruction loss as a normalised density."""

from __future__ import annotations

from torch import Tensor
from torch.distributions import Distribution, Laplace

from vaelab.likelihoods.location_scale import LocationScaleLikelihood


class LaplaceLikelihood(LocationScaleLikelihood):
    """log p(x|z) = Σ_i −|x_i − μ_i|/b_i − log(2 b_i): with a fixed scale b this is the L1
    loss ‖x − μ‖₁/b plus a constant. The scale b plays σ's part in
    :class:`LocationScaleLikelihood` (fixed, learned_global, learned_per_pixel)."""

    def base_distribution(self, loc: Tensor, scale: Tensor) -> Distribution:
        return Laplace(loc, scale, validate_args=False)
