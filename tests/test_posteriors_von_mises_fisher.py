"""The von Mises–Fisher posterior (Davidson et al. 2018): Wood's sampler against A_d(κ), the
density's normalisation on S² by quadrature, the closed-form KL to the uniform against Monte
Carlo, the gradient g_rep + g_cor against the exact dA/dκ, the encoder layout; on MNIST (slow)
a short run that improves and an exact 2 + 2 = 4 epoch resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import special
from torch.distributions import kl_divergence

from tests.latent_family_runs import (
    resume_matches_straight_run,
    short_mnist_run_improves,
)
from vaelab.posteriors.structure import rejection_score
from vaelab.posteriors.von_mises_fisher import (
    VonMisesFisher,
    VonMisesFisherPosterior,
    wood_acceptance_rate,
)
from vaelab.priors.spherical_uniform import HypersphericalUniform
from vaelab.utils.bessel import mean_resultant_length

NUM_DRAWS = 8_000
#: MC tolerance in standard errors
Z = 4.5


def _vmf(dim: int, kappa: float, seed: int = 0) -> VonMisesFisher:
    generator = torch.Generator().manual_seed(seed)
    loc = F.normalize(torch.randn(dim, generator=generator, dtype=torch.float64), dim=0)
    return VonMisesFisher(loc, torch.tensor(kappa, dtype=torch.float64))


@pytest.mark.parametrize(
    ("dim", "kappa"), [(2, 0.5), (3, 1.0), (5, 20.0), (10, 10.0), (10, 150.0), (40, 1000.0)]
)
def test_sampler_mean_resultant_length_is_the_bessel_ratio(dim, kappa):
    """E[μᵀz] = ‖E z‖ = A_d(κ) = I_{d/2}(κ)/I_{d/2−1}(κ) (scipy), within MC error; the sample
    mean points along μ and every sample is a unit vector."""
    torch.manual_seed(1)
    q = _vmf(dim, kappa)
    z = q.rsample((NUM_DRAWS,))
    expected = special.ive(dim / 2, kappa) / special.ive(dim / 2 - 1, kappa)
    along = z @ q.loc
    stderr = along.std() / math.sqrt(NUM_DRAWS)
    assert abs(float(along.mean()) - expected) < Z * float(stderr)
    mean_vector = z.mean(0)
    off_axis = mean_vector - mean_vector.dot(q.loc) * q.loc
    assert float(off_axis.norm()) < Z * float(z.std(0).max()) * math.sqrt(dim / NUM_DRAWS)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(NUM_DRAWS, dtype=torch.float64))
    assert float(q.mean_resultant_length) == pytest.approx(expected, rel=1e-10)


def test_density_integrates_to_one_on_the_two_sphere():
    """∫_{S²} q(z) dA = 1 by Gauss–Legendre in cos θ × the trapezoid in φ, for a μ off the
    grid's axes and κ from flat to concentrated."""
    nodes, weights = np.polynomial.legendre.leggauss(200)
    cos_theta = torch.from_numpy(nodes)
    phi = torch.arange(400, dtype=torch.float64) * (2 * math.pi / 400)
    sin_theta = torch.sqrt(1 - cos_theta**2)
    grid = torch.stack(
        [
            sin_theta[:, None] * torch.cos(phi)[None],
            sin_theta[:, None] * torch.sin(phi)[None],
            cos_theta[:, None].expand(-1, len(phi)),
        ],
        dim=-1,
    )
    area = torch.from_numpy(weights)[:, None] * (2 * math.pi / 400)
    for kappa in (0.01, 1.0, 30.0, 200.0):
        q = _vmf(3, kappa, seed=3)
        total = float((q.log_prob(grid).exp() * area).sum())
        assert total == pytest.approx(1.0, abs=1e-8), kappa


@pytest.mark.parametrize(("dim", "kappa"), [(3, 2.0), (10, 10.0), (10, 150.0), (50, 800.0)])
def test_closed_form_kl_to_the_uniform_matches_monte_carlo(dim, kappa):
    torch.manual_seed(2)
    q, p = _vmf(dim, kappa), HypersphericalUniform(dim, dtype=torch.float64)
    z = q.sample((NUM_DRAWS,))
    ratio = q.log_prob(z) - p.log_prob(z)
    stderr = float(ratio.std()) / math.sqrt(NUM_DRAWS)
    assert abs(float(kl_divergence(q, p)) - float(ratio.mean())) < Z * stderr + 1e-9


def test_kl_on_the_circle_is_the_von_mises_formula():
    """d = 2: KL(vM(κ) ‖ U) = κ I₁/I₀ − log I₀(κ) (the von Mises entropy's closed form)."""
    kappa = 3.0
    q, p = _vmf(2, kappa), HypersphericalUniform(2, dtype=torch.float64)
    expected = kappa * special.i1(kappa) / special.i0(kappa) - math.log(special.i0(kappa))
    assert float(kl_divergence(q, p)) == pytest.approx(expected, rel=1e-10)


def test_variance_matches_the_sample_variance():
    torch.manual_seed(4)
    q = _vmf(5, 7.0)
    z = q.sample((NUM_DRAWS,))
    torch.testing.assert_close(q.variance, z.var(0), atol=0.02, rtol=0.05)
    torch.testing.assert_close(q.mean, z.mean(0), atol=0.02, rtol=0)


@pytest.mark.parametrize(("dim", "kappa"), [(3, 2.0), (10, 10.0)])
def test_g_rep_plus_g_cor_is_the_exact_gradient_and_g_rep_alone_is_not(dim, kappa):
    """d/dκ E[μᵀz] = dA_d/dκ: rsample's gradient (g_rep) plus the score term the ELBO engine
    adds (f · ∇ log π(ε|κ), with rejection_score) is unbiased; g_rep alone is biased low."""
    torch.manual_seed(5)
    num = 20_000
    concentration = torch.tensor(kappa, dtype=torch.float64, requires_grad=True)
    loc = torch.zeros(dim, dtype=torch.float64)
    loc[0] = 1
    q = VonMisesFisher(loc, concentration)
    z = q.rsample((num,))
    f = z @ loc
    score = rejection_score(q, z)
    (g_rep,) = torch.autograd.grad(f.mean(), concentration, retain_graph=True)
    (g_cor,) = torch.autograd.grad((f.detach() * (score - score.detach())).mean(), concentration)
    exact_kappa = torch.tensor(kappa, dtype=torch.float64, requires_grad=True)
    (exact,) = torch.autograd.grad(mean_resultant_length(dim, exact_kappa), exact_kappa)
    assert float(g_rep + g_cor) == pytest.approx(float(exact), rel=0.03)
    assert float(g_rep) < 0.95 * float(exact)
    length = float(mean_resultant_length(dim, exact_kappa.detach()))
    assert float(exact) == pytest.approx(1 - (dim - 1) / kappa * length - length**2, rel=1e-9)


def test_wood_acceptance_rate_is_high():
    rates = wood_acceptance_rate(10, torch.tensor([1.0, 10.0, 100.0, 1e4]), num=5_000)
    assert bool((rates > 0.5).all())
    assert bool((rates < 1).all())


def test_posterior_layout_and_reparameterised_samples():
    posterior = VonMisesFisherPosterior(min_concentration=1.0)
    assert posterior.num_params(4) == 5
    out = torch.randn(3, 5, requires_grad=True)
    q = posterior.distribution(out)
    assert q.batch_shape == (3,)
    assert q.event_shape == (4,)
    assert bool((q.concentration > 1.0).all())
    torch.testing.assert_close(posterior.mean(out).norm(dim=-1), torch.ones(3))
    z = q.rsample((2,))
    assert z.shape == (2, 3, 4)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(2, 3))
    z.sum().backward()
    assert out.grad is not None
    assert bool((out.grad != 0).any())
    assert posterior.geometry.manifold == "sphere"


@pytest.mark.slow
def test_short_mnist_run_improves(mnist_data_dir, tmp_path):
    short_mnist_run_improves(["model=hyperspherical_mlp"], mnist_data_dir, tmp_path)


@pytest.mark.slow
def test_resume_after_two_epochs_reproduces_four_straight_epochs(mnist_data_dir, tmp_path):
    resume_matches_straight_run(["model=hyperspherical_mlp"], mnist_data_dir, tmp_path)
