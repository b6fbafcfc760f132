"""The radial transform (Rezende & Mohamed 2015, §4.1, eq. 14 and Appendix A.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Transform

from vaelab.flows.base import LATENT_VECTORS


class RadialTransform(Transform):
    """f(z) = z + β h(α, r)(z − z₀), h = 1 / (α + r), r = ‖z − z₀‖ (Rezende & Mohamed 2015,
    eq. 14), with log |det ∂f/∂z| = (D − 1) log(1 + βh) + log(1 + βh + β h'(r) r), h'(r) = −h².

    f is invertible iff β ≥ −α (their Appendix A.2). The raw parameters are mapped to
    α = softplus(raw α) > 0 and β = −α + softplus(raw β) > −α, so every value of them gives an
    invertible map; raw α = raw β = 0 gives α = log 2, β = 0: the identity.

    ``center`` [..., D], ``raw_alpha`` and ``raw_beta`` [...] broadcast against z's leading
    axes (amortised parameters carry the batch axis). The inverse is closed-form: the radius
    r of x solves r + βr / (α + r) = ‖y − z₀‖, a quadratic with one positive root.
    """

    domain = LATENT_VECTORS
    codomain = LATENT_VECTORS
    bijective = True

    def __init__(self, center: Tensor, raw_alpha: Tensor, raw_beta: Tensor) -> None:
        super().__init__(cache_size=1)
        self.center = center
        self.alpha = F.softplus(raw_alpha)
        self.beta = -self.alpha + F.softplus(raw_beta)

    def _radius(self, x: Tensor) -> Tensor:
        return torch.linalg.vector_norm(x - self.center, dim=-1)

    def _call(self, x: Tensor) -> Tensor:
        h = 1.0 / (self.alpha + self._radius(x))
        return x + (self.beta * h).unsqueeze(-1) * (x - self.center)

    def _inverse(self, y: Tensor) -> Tensor:
        radius_y = self._radius(y)
        # r² + (α + β − r_y) r − α r_y = 0; its positive root is r = ‖x − z₀‖
        linear = self.alpha + self.beta - radius_y
        radius = 0.5 * (-linear + torch.sqrt(linear**2 + 4.0 * self.alpha * radius_y))
        scale = 1.0 + self.beta / (self.alpha + radius)
        return self.center + (y - self.center) / scale.unsqueeze(-1)

    # torch's Transform interface passes y too; this log-determinant needs only x
    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:  # noqa: ARG002
        radius = self._radius(x)
        h = 1.0 / (self.alpha + radius)
        beta_h = self.beta * h
        dim = x.shape[-1]
        # 1 + βh + β h'(r) r = 1 + βα h² > 0 and 1 + βh > 0 whenever β > −α
        return (dim - 1) * torch.log1p(beta_h) + torch.log1p(beta_h - self.beta * h * h * radius)
