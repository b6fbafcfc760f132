"""log I_v(κ), the modified Bessel function of the first kind, with a gradient in κ.

Evaluated through scipy's exponentially scaled ``ive`` (log I_v(κ) = log ive(v, κ) + κ), which
stays finite for large κ and order (Davidson et al. 2018, §4 and Appendix; κ of 10⁴ and d of
100 are fine); the derivative uses d/dκ log I_v(κ) = I_{v+1}(κ)/I_v(κ) + v/κ (Abramowitz &
Stegun 9.6.26). The values are computed in float64 on the CPU (a host round trip on a GPU).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import special
from torch import Tensor


def _ive(order: float, kappa: Tensor) -> Tensor:
    values = special.ive(order, kappa.detach().to("cpu", torch.float64).numpy())
    return torch.from_numpy(np.asarray(values)).to(kappa.device)


def bessel_ratio(order: float, kappa: Tensor) -> Tensor:
    """I_{v+1}(κ) / I_v(κ) (no gradient), in the dtype of κ."""
    return (_ive(order + 1, kappa) / _ive(order, kappa)).to(kappa.dtype)


class _LogBessel(torch.autograd.Function):
    @staticmethod
    def forward(ctx, kappa: Tensor, order: float) -> Tensor:
        ctx.save_for_backward(kappa)
        ctx.order = order
        scaled = _ive(order, kappa)
        return (scaled.log() + kappa.detach().to(torch.float64)).to(kappa.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, None]:
        (kappa,) = ctx.saved_tensors
        derivative = bessel_ratio(ctx.order, kappa) + ctx.order / kappa
        return grad_output * derivative, None


def log_bessel_iv(order: float, kappa: Tensor) -> Tensor:
    """log I_order(κ) elementwise for κ > 0, differentiable in κ."""
    return _LogBessel.apply(kappa, float(order))


def mean_resultant_length(dim: int, kappa: Tensor) -> Tensor:
    """A_d(κ) = I_{d/2}(κ) / I_{d/2−1}(κ), the norm of a vMF's mean on S^(d−1), differentiable
    in κ (as the exponential of a difference of two log-Bessel functions)."""
    return torch.exp(log_bessel_iv(dim / 2, kappa) - log_bessel_iv(dim / 2 - 1, kappa))
