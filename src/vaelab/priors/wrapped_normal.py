"""The wrapped normal prior N^W_c(0, σ₀² I) on the Poincaré ball (Mathieu et al. 2019, §4:
their prior is the wrapped normal N^W(0, I) at the origin, σ₀ = ½ in this module's units, see
posteriors/wrapped_normal.py). At c → 0 it is N(0, σ₀² I)."""

from __future__ import annotations

from typing import Annotated

import torch
from torch.distributions import Distribution

from vaelab.posteriors.geometry import poincare_ball
from vaelab.posteriors.wrapped_normal import WrappedNormal
from vaelab.priors.base import Encoder, Prior
from vaelab.schema import Range, checked_arguments


@checked_arguments("model.prior")
class WrappedNormalPrior(Prior):
    """p(z) = N^W_c(0, σ₀² I): ``curvature`` must be the posterior's (the VAE checks it;
    conf/prior/wrapped_normal.yaml follows ``model.posterior.curvature``), ``scale`` σ₀ in
    the ball's coordinates at the origin. Nothing is learned; KL(q ‖ p) is Monte Carlo."""

    def __init__(
        self,
        curvature: Annotated[float, Range(gt=0)] = 1.0,
        scale: Annotated[float, Range(gt=0)] = 0.5,
    ) -> None:
        super().__init__()
        self.curvature = float(curvature)
        self.scale = float(scale)
        self.geometry = poincare_ball(self.curvature)

    def setup(self, latent_dim: int, input_shape: tuple[int, ...], encode: Encoder) -> None:
        super().setup(latent_dim, input_shape, encode)
        self.register_buffer("loc", torch.zeros(self.latent_dim), persistent=False)

    def distribution(self) -> Distribution:
        return WrappedNormal(
            self.loc, torch.full_like(self.loc, self.scale), self.curvature, validate_args=False
        )
