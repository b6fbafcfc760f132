"""The wrapped (Riemannian) normal on the Poincaré ball (Mathieu et al. 2019, §3, eq. 5-6;
Nagano et al. 2019 for the hyperboloid): v ~ N(0, diag σ²) in the tangent space at the origin,
parallel-transported to μ and pushed through the exponential map at μ. Since the Möbius
translation x ↦ μ ⊕_c x is an isometry taking 0 to μ, exp_μ(PT_(0→μ)(v)) = μ ⊕_c exp₀(v).

**Density.** Log-densities here are with respect to the Lebesgue measure on the ball's
coordinates, so that posterior and prior share a measure and c → 0 gives N(μ, diag σ²)
exactly. The Riemannian volume is λ_z^D dz and exp at μ scales it by
(sinh(√c r)/(√c r))^(D−1) at geodesic distance r = 2‖v‖ (Mathieu et al.'s eq. 6 Jacobian), so

    log q(z) = log N(v; 0, diag σ²) − D log(2/λ_z) − (D − 1) log(sinh(√c r) / (√c r)),
    v = log₀((−μ) ⊕_c z).

σ is measured in the ball's coordinates at the origin; Mathieu et al.'s Σ is the Riemannian
one, Σ = 4 σ² (λ₀ = 2): their prior N^W(0, I) is σ₀ = ½ here.

**Precision.** The maps run in float64 (points within 10⁻⁵ of the boundary, ‖v‖ ≤ 6.1/√c;
float32 would stop at ‖v‖ ≤ 3.1/√c) and samples and log-densities come back in the input's
dtype. A sample beyond that radius is pulled inside it, where q and p are no longer scored at
the point drawn: the Monte-Carlo KL can then turn negative, and an encoder learns to inflate σ
to exploit it. The posterior therefore caps σ (``max_scale``).
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar

import torch
from torch import Tensor
from torch.distributions import Distribution, Normal, constraints

from vaelab.posteriors import poincare_ball as ball
from vaelab.posteriors.base import Posterior
from vaelab.posteriors.geometry import LatentGeometry, poincare_ball
from vaelab.schema import Range, checked_arguments


def _log_sinhc(x: Tensor) -> Tensor:
    """log(sinh(x)/x) for x ≥ 0, stable at 0 (x²/6) and for large x."""
    small = x < 1e-3
    safe = torch.where(small, torch.ones_like(x), x)
    large = safe + torch.log1p(-torch.exp(-2 * safe)) - math.log(2) - torch.log(safe)
    return torch.where(small, x.pow(2) / 6, large)


class WrappedNormal(Distribution):
    """N^W_c(μ, diag σ²) on the Poincaré ball: ``loc`` μ [..., D] in the ball, ``scale`` σ
    [..., D] > 0, ``curvature`` c > 0. ``mean`` is μ (the Fréchet mean: the distribution is
    symmetric about it), ``variance`` the first-order spread (2σ/λ_μ)² of z around μ."""

    arg_constraints: ClassVar[dict] = {"scale": constraints.positive}
    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self, loc: Tensor, scale: Tensor, curvature: float, validate_args: bool | None = None
    ):
        self.loc, self.scale, self.curvature = loc, scale, float(curvature)
        batch_shape = torch.broadcast_shapes(loc.shape, scale.shape)
        super().__init__(batch_shape[:-1], batch_shape[-1:], validate_args=validate_args)

    @property
    def tangent(self) -> Normal:
        """N(0, diag σ²) in the tangent space at the origin."""
        return Normal(torch.zeros_like(self.scale), self.scale, validate_args=False)

    @property
    def mean(self) -> Tensor:
        return self.loc.expand(self.batch_shape + self.event_shape)

    @property
    def mode(self) -> Tensor:
        return self.mean

    @property
    def variance(self) -> Tensor:
        return (2 * self.scale / ball.conformal_factor(self.loc, self.curvature)).pow(2)

    def push(self, v: Tensor) -> Tensor:
        """z = μ ⊕_c exp₀(v) for tangent vectors v at the origin (computed in float64)."""
        loc, c = self.loc.to(torch.float64), self.curvature
        moved = ball.mobius_add(loc, ball.exp_origin(v.to(torch.float64), c), c)
        return ball.project(moved, c).to(v.dtype)

    def pull(self, z: Tensor) -> Tensor:
        """v = log₀((−μ) ⊕_c z), the inverse of :meth:`push` (computed in float64)."""
        loc, c = self.loc.to(torch.float64), self.curvature
        return ball.log_origin(ball.mobius_add(-loc, z.to(torch.float64), c), c).to(z.dtype)

    def log_abs_det_push(self, v: Tensor, z: Tensor) -> Tensor:
        """log |det ∂z/∂v| = D log(2/λ_z) + (D − 1) log(sinh(√c r)/(√c r)), r = 2‖v‖."""
        dim = v.shape[-1]
        radius = 2 * self.curvature**0.5 * v.to(torch.float64).norm(dim=-1)
        lam = ball.conformal_factor(z.to(torch.float64), self.curvature).squeeze(-1)
        return (dim * torch.log(2 / lam) + (dim - 1) * _log_sinhc(radius)).to(v.dtype)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        return self.push(self.tangent.rsample(sample_shape))

    def log_prob(self, value: Tensor) -> Tensor:
        v = self.pull(value)
        return self.tangent.log_prob(v).sum(-1) - self.log_abs_det_push(v, value)


@checked_arguments("model.posterior")
class WrappedNormalPosterior(Posterior):
    """q(z|x) = N^W_c(μ, diag σ²) (Mathieu et al. 2019, §3 and §4): the encoder outputs
    (m, s); μ = exp₀(m) (their encoder's last map onto the ball) and σ = exp(s/2), capped at
    ``max_scale`` (see the module's note on precision). The KL to the wrapped normal prior has
    no closed form: Monte Carlo (chosen automatically)."""

    def __init__(
        self,
        curvature: Annotated[float, Range(gt=0)] = 1.0,
        max_scale: Annotated[float, Range(gt=0)] = 1.0,
    ) -> None:
        super().__init__()
        self.curvature = float(curvature)
        self.max_scale = float(max_scale)
        self.geometry: LatentGeometry = poincare_ball(self.curvature)

    def num_params(self, latent_dim: int) -> int:
        return 2 * latent_dim

    def distribution(self, encoder_output: Tensor) -> Distribution:
        tangent_mean, log_var = torch.chunk(encoder_output.float(), 2, dim=-1)
        return WrappedNormal(
            ball.exp_origin(tangent_mean, self.curvature),
            torch.exp(0.5 * log_var).clamp_max(self.max_scale),
            self.curvature,
            validate_args=False,
        )

    def mean(self, encoder_output: Tensor) -> Tensor:
        return ball.exp_origin(torch.chunk(encoder_output.float(), 2, dim=-1)[0], self.curvature)
