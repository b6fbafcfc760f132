"""Gaussian likelihood N(x; μ, σ²) per pixel, normalising constant included."""

from __future__ import annotations

from torch import Tensor
from torch.distributions import Distribution, Normal

from vaelab.likelihoods.location_scale import LocationScaleLikelihood


class GaussianLikelihood(LocationScaleLikelihood):
    """log p(x|z) = Σ_i −(x_i − μ_i)²/(2σ_i²) − log σ_i − ½ log 2π (Kingma & Welling 2014,
    App. C.2). With ``variance=fixed`` and σ = 1 this is −½‖x − μ‖² − (D/2) log 2π, i.e.
    MSE/2 plus a constant (seed 002's "I-Gaussian"); ``learned_per_pixel`` with a sigmoid
    mean is seed 003's Frey-face decoder. See :class:`LocationScaleLikelihood` for σ.
    """

    def base_distribution(self, loc: Tensor, scale: Tensor) -> Distribution:
        return Normal(loc, scale, validate_args=False)
