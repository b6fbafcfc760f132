"""The wrapped normal on the Poincaré ball (Mathieu et al. 2019): it integrates to 1 on the 2-D
ball (quadrature), equals the Euclidean Gaussian as c → 0 (density and Monte-Carlo KL), its
log-det is the autograd Jacobian's; on MNIST (slow) a short run that improves and an exact
2 + 2 = 4 epoch resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from tests.latent_family_runs import resume_matches_straight_run, short_mnist_run_improves
from vaelab.posteriors.wrapped_normal import WrappedNormal, WrappedNormalPosterior

F64 = torch.float64


def _wrapped(curvature: float, dim: int = 2) -> WrappedNormal:
    """μ at a fixed fraction of the ball's radius (at most 1: fixed as c → 0)."""
    loc = torch.tensor([0.35, -0.25, 0.1][:dim], dtype=F64) * min(1.0, 1 / math.sqrt(curvature))
    scale = torch.tensor([0.4, 0.25, 0.3][:dim], dtype=F64)
    return WrappedNormal(loc, scale, curvature)


def test_density_integrates_to_one_on_the_two_dimensional_ball():
    """∫_B q(z) dz = 1 in polar coordinates (Gauss–Legendre in the radius, the trapezoid in
    the angle), for several curvatures."""
    nodes, weights = np.polynomial.legendre.leggauss(200)
    angle = torch.arange(200, dtype=F64) * (2 * math.pi / 200)
    for curvature in (0.3, 1.0, 2.5):
        radius_max = 1 / math.sqrt(curvature)
        radius = torch.from_numpy((nodes + 1) / 2 * radius_max)
        grid = torch.stack(
            [radius[:, None] * torch.cos(angle), radius[:, None] * torch.sin(angle)], dim=-1
        )
        area = (torch.from_numpy(weights) * radius_max / 2 * radius)[:, None] * (2 * math.pi / 200)
        total = float((_wrapped(curvature).log_prob(grid).exp() * area).sum())
        assert total == pytest.approx(1.0, abs=1e-6), curvature


def test_log_density_is_the_euclidean_gaussians_as_the_curvature_vanishes():
    q = _wrapped(1e-10, dim=3)
    z = q.loc + 0.3 * torch.randn(7, 3, dtype=F64)
    gaussian = Independent(Normal(q.loc, q.scale), 1)
    torch.testing.assert_close(q.log_prob(z), gaussian.log_prob(z), rtol=0, atol=1e-6)


def test_monte_carlo_kl_is_the_gaussian_kl_as_the_curvature_vanishes():
    """KL(q ‖ p) by Monte Carlo with the wrapped densities → the closed-form Gaussian KL."""
    torch.manual_seed(0)
    curvature, num = 1e-10, 20_000
    q = _wrapped(curvature, dim=3)
    p = WrappedNormal(torch.zeros(3, dtype=F64), torch.full((3,), 0.5, dtype=F64), curvature)
    z = q.sample((num,))
    ratio = q.log_prob(z) - p.log_prob(z)
    exact = kl_divergence(
        Independent(Normal(q.loc, q.scale), 1), Independent(Normal(p.loc, p.scale), 1)
    )
    assert abs(float(ratio.mean() - exact)) < 4.5 * float(ratio.std()) / math.sqrt(num)


def test_log_det_is_the_autograd_jacobians_and_pull_inverts_push():
    q = _wrapped(0.8, dim=3)
    generator = torch.Generator().manual_seed(1)
    for v in 0.7 * torch.randn(4, 3, generator=generator, dtype=F64):
        jacobian = torch.autograd.functional.jacobian(q.push, v)
        expected = torch.linalg.slogdet(jacobian).logabsdet
        torch.testing.assert_close(q.log_abs_det_push(v, q.push(v)), expected)
        torch.testing.assert_close(q.pull(q.push(v)), v)


def test_samples_lie_in_the_ball_and_the_posterior_layout():
    posterior = WrappedNormalPosterior(curvature=2.0, max_scale=1.0)
    assert posterior.num_params(3) == 6
    out = torch.randn(5, 6) * 3
    q = posterior.distribution(out)
    z = q.rsample((4,))
    assert z.shape == (4, 5, 3)
    assert float(z.norm(dim=-1).max()) < 1 / math.sqrt(2.0)
    assert float(q.scale.max()) <= 1.0
    assert torch.isfinite(q.log_prob(z)).all()
    torch.testing.assert_close(posterior.mean(out), q.loc)


@pytest.mark.slow
def test_short_mnist_run_improves(mnist_data_dir, tmp_path):
    short_mnist_run_improves(["model=poincare_mlp"], mnist_data_dir, tmp_path)


@pytest.mark.slow
def test_resume_after_two_epochs_reproduces_four_straight_epochs(mnist_data_dir, tmp_path):
    resume_matches_straight_run(["model=poincare_mlp"], mnist_data_dir, tmp_path)
