"""The Poincaré ball's maps: Möbius addition's identities, exp₀/log₀ inverse to each other, the
geodesic distance from the origin in closed form, and the Euclidean limits as c → 0."""

from __future__ import annotations

import math

import torch

from vaelab.posteriors import poincare_ball as ball

C = 0.7


def _points(count: int, dim: int = 3, radius: float = 0.9, seed: int = 0) -> torch.Tensor:
    """Points strictly inside the ball of curvature −C."""
    generator = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(
        torch.randn(count, dim, generator=generator, dtype=torch.float64), dim=-1
    )
    norm = torch.rand(count, 1, generator=generator, dtype=torch.float64) * radius
    return direction * norm / math.sqrt(C)


def test_mobius_addition_identities():
    """0 ⊕ y = y, x ⊕ 0 = x, (−x) ⊕ x = 0 and left cancellation (−x) ⊕ (x ⊕ y) = y."""
    x, y = _points(6, seed=1), _points(6, seed=2)
    zero = torch.zeros_like(x)
    torch.testing.assert_close(ball.mobius_add(zero, y, C), y)
    torch.testing.assert_close(ball.mobius_add(x, zero, C), x)
    torch.testing.assert_close(ball.mobius_add(-x, x, C), zero)
    torch.testing.assert_close(ball.mobius_add(-x, ball.mobius_add(x, y, C), C), y)


def test_exp_and_log_at_the_origin_are_inverse_and_the_distance_is_closed_form():
    z = _points(8)
    torch.testing.assert_close(ball.exp_origin(ball.log_origin(z, C), C), z)
    origin = torch.zeros_like(z)
    expected = 2 / math.sqrt(C) * torch.atanh(math.sqrt(C) * z.norm(dim=-1))
    torch.testing.assert_close(ball.distance(origin, z, C), expected)
    # the distance from the origin is λ₀ = 2 times the norm of log₀
    torch.testing.assert_close(ball.distance(origin, z, C), 2 * ball.log_origin(z, C).norm(dim=-1))
    x = _points(8, seed=3)
    torch.testing.assert_close(ball.distance(x, z, C), ball.distance(z, x, C))


def test_the_maps_tend_to_their_euclidean_counterparts_as_the_curvature_vanishes():
    c = 1e-12
    x = torch.randn(5, 4, dtype=torch.float64)
    y = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(ball.mobius_add(x, y, c), x + y)
    torch.testing.assert_close(ball.exp_origin(x, c), x)
    torch.testing.assert_close(ball.distance(x, y, c), 2 * (x - y).norm(dim=-1))
    torch.testing.assert_close(
        ball.conformal_factor(x, c), torch.full((5, 1), 2.0, dtype=torch.float64)
    )


def test_project_keeps_points_inside_the_ball():
    far = torch.tensor([[10.0, 0.0], [0.1, 0.2]], dtype=torch.float64)
    inside = ball.project(far, C)
    assert float(inside[0].norm()) < 1 / math.sqrt(C)
    torch.testing.assert_close(inside[1], far[1])
