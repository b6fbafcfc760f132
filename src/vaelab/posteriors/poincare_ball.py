"""The Poincaré ball B_c^D = {z ∈ R^D : c‖z‖² < 1} of curvature −c (Mathieu et al. 2019,
"Continuous Hierarchical Representations with Poincaré Variational Auto-Encoders", §2; Ganea
et al. 2018 for the gyrovector formulas): Möbius addition, the exponential and logarithm maps at
the origin, the conformal factor λ_z = 2 / (1 − c‖z‖²) and the geodesic distance. Every map
tends to its Euclidean counterpart as c → 0 (exp₀(v) → v, x ⊕ y → x + y)."""

from __future__ import annotations

import torch
from torch import Tensor

#: points are kept within (1 − BOUNDARY_MARGIN)/√c of the centre: float32 cannot tell the
#: boundary from points closer to it (Mathieu et al.'s code uses 4e-3 in float32)
BOUNDARY_MARGIN = {torch.float32: 4e-3, torch.float64: 1e-5}
#: smallest norm a tangent vector or point is divided by
MIN_NORM = 1e-15


def _norm(x: Tensor) -> Tensor:
    return x.norm(dim=-1, keepdim=True).clamp_min(MIN_NORM)


def _artanh(x: Tensor) -> Tensor:
    limit = 1 - BOUNDARY_MARGIN.get(x.dtype, 1e-5) ** 2
    return torch.atanh(x.clamp(-limit, limit))


def project(z: Tensor, curvature: float) -> Tensor:
    """``z`` pulled inside the ball's numerically safe radius."""
    radius = (1 - BOUNDARY_MARGIN.get(z.dtype, 1e-5)) / curvature**0.5
    norm = _norm(z)
    return torch.where(norm > radius, z / norm * radius, z)


def conformal_factor(z: Tensor, curvature: float) -> Tensor:
    """λ_z = 2 / (1 − c‖z‖²) [..., 1]: the metric at z is λ_z² times the Euclidean one."""
    return 2 / (1 - curvature * z.pow(2).sum(-1, keepdim=True)).clamp_min(MIN_NORM)


def mobius_add(x: Tensor, y: Tensor, curvature: float) -> Tensor:
    """x ⊕_c y = ((1 + 2c⟨x,y⟩ + c‖y‖²) x + (1 − c‖x‖²) y) / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²)."""
    c = curvature
    xy = (x * y).sum(-1, keepdim=True)
    x2 = x.pow(2).sum(-1, keepdim=True)
    y2 = y.pow(2).sum(-1, keepdim=True)
    numerator = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return numerator / (1 + 2 * c * xy + c**2 * x2 * y2).clamp_min(MIN_NORM)


def exp_origin(v: Tensor, curvature: float) -> Tensor:
    """exp₀(v) = tanh(√c‖v‖) v / (√c‖v‖) for v in the tangent space at the origin (whose
    metric is λ₀² = 4 times the Euclidean one)."""
    sqrt_c = curvature**0.5
    norm = _norm(v)
    return project(torch.tanh(sqrt_c * norm) * v / (sqrt_c * norm), curvature)


def log_origin(z: Tensor, curvature: float) -> Tensor:
    """log₀(z) = artanh(√c‖z‖) z / (√c‖z‖), the inverse of :func:`exp_origin`."""
    sqrt_c = curvature**0.5
    norm = _norm(z)
    return _artanh(sqrt_c * norm) * z / (sqrt_c * norm)


def distance(x: Tensor, y: Tensor, curvature: float) -> Tensor:
    """d_c(x, y) = (2/√c) artanh(√c ‖(−x) ⊕_c y‖) [...]: the geodesic distance."""
    sqrt_c = curvature**0.5
    gap = mobius_add(-x, y, curvature).norm(dim=-1)
    return 2 / sqrt_c * _artanh(sqrt_c * gap)
