"""The planar transform (Rezende & Mohamed 2015, §4.1, eqs. 10–12 and Appendix A)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Transform

from vaelab.flows.base import LATENT_VECTORS

#: softplus(SOFTPLUS_ONE) = 1
SOFTPLUS_ONE = math.log(math.e - 1.0)
#: bisection steps of the planar inverse: the bracket shrinks by 2⁻⁶⁰, below float64's ulp
PLANAR_BISECTION_STEPS = 60


class PlanarTransform(Transform):
    """f(z) = z + û tanh(wᵀz + b) (Rezende & Mohamed 2015, eq. 10) with
    log |det ∂f/∂z| = log |1 + ûᵀψ(z)|, ψ(z) = tanh'(wᵀz + b) w (eqs. 11–12).

    û = u + [m(wᵀu) − wᵀu] w / ‖w‖² makes wᵀû = m(wᵀu) > −1, so f is invertible (their
    Appendix A). m(a) = softplus(a + log(e − 1)) − 1 is the paper's −1 + softplus(a) shifted
    so that m(0) = 0: then u = 0 gives û = 0 and the identity whatever w is.

    ``u``, ``w`` [..., D] and ``b`` [...] broadcast against z's leading axes (amortised
    parameters carry the batch axis). The inverse solves the scalar equation
    wᵀy = a + wᵀû tanh(a + b) for a = wᵀx by bisection (its right side increases with a).
    """

    domain = LATENT_VECTORS
    codomain = LATENT_VECTORS
    bijective = True

    def __init__(self, u: Tensor, w: Tensor, b: Tensor) -> None:
        super().__init__(cache_size=1)
        w_dot_u = (w * u).sum(-1, keepdim=True)
        m = F.softplus(w_dot_u + SOFTPLUS_ONE) - 1.0
        norm_sq = (w * w).sum(-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
        self.u_hat = u + (m - w_dot_u) * w / norm_sq
        self.w = w
        self.b = b

    def _pre_activation(self, x: Tensor) -> Tensor:
        return (x * self.w).sum(-1) + self.b

    def _call(self, x: Tensor) -> Tensor:
        return x + self.u_hat * torch.tanh(self._pre_activation(x)).unsqueeze(-1)

    def _inverse(self, y: Tensor) -> Tensor:
        slope = (self.w * self.u_hat).sum(-1)  # wᵀû > −1
        target = (y * self.w).sum(-1)  # wᵀy = a + slope · tanh(a + b), solved for a
        low = target - slope.abs() - 1.0
        high = target + slope.abs() + 1.0
        for _ in range(PLANAR_BISECTION_STEPS):
            middle = 0.5 * (low + high)
            below = middle + slope * torch.tanh(middle + self.b) < target
            low = torch.where(below, middle, low)
            high = torch.where(below, high, middle)
        projection = 0.5 * (low + high)  # a = wᵀx
        return y - self.u_hat * torch.tanh(projection + self.b).unsqueeze(-1)

    # torch's Transform interface passes y too; these log-determinants need only x
    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:  # noqa: ARG002
        derivative = 1.0 - torch.tanh(self._pre_activation(x)) ** 2
        return torch.log1p(derivative * (self.w * self.u_hat).sum(-1))
