"""Posteriors: analytic KL vs Monte Carlo, closed forms, full covariance ⊃ diagonal."""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate
from torch.distributions import kl_divergence

from tests.conftest import compose_config
from vaelab.posteriors import DiagonalGaussianPosterior, FullCovarianceGaussianPosterior
from vaelab.posteriors.structure import factorised_marginals
from vaelab.priors.standard_normal import StandardNormalPrior

LATENT = 3
NUM_MC = 100_000


def standard_normal(latent_dim: int = LATENT):
    """The default prior N(0, I) as the model builds it (for the KL of every posterior)."""
    prior = StandardNormalPrior()
    prior.setup(latent_dim, (1, 1, 1), encode=None)
    return prior.distribution()


def encoder_output(num_params: int, batch: int = 4, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.7 * torch.randn(batch, num_params, generator=generator)


POSTERIORS = {
    "diagonal_log_var": DiagonalGaussianPosterior("log_var"),
    "diagonal_log_scale": DiagonalGaussianPosterior("log_scale"),
    "full_covariance_exp": FullCovarianceGaussianPosterior("exp"),
    "full_covariance_softplus": FullCovarianceGaussianPosterior("softplus"),
}


@pytest.mark.parametrize("name", POSTERIORS)
def test_analytic_kl_agrees_with_monte_carlo(name):
    """KL(q || N(0, I)) in closed form vs the mean of log q(z) − log p(z) over 10⁵ samples."""
    posterior = POSTERIORS[name]
    q = posterior.distribution(encoder_output(posterior.num_params(LATENT)))
    prior = standard_normal()
    analytic = kl_divergence(q, prior)
    torch.manual_seed(1)
    z = q.sample((NUM_MC,))
    log_ratio = q.log_prob(z) - prior.log_prob(z)  # [N, B]
    estimate = log_ratio.mean(0)
    standard_error = log_ratio.std(0) / NUM_MC**0.5
    assert ((estimate - analytic).abs() < 4 * standard_error).all(), (estimate, analytic)
    assert (analytic > 0).all()


def test_diagonal_kl_is_the_lecture_formula():
    """Seed 000: KL = −½ Σ (1 + log σ² − μ² − σ²)."""
    out = encoder_output(2 * LATENT)
    mu, log_var = out.chunk(2, dim=-1)
    posterior = DiagonalGaussianPosterior("log_var")
    kl = kl_divergence(posterior.distribution(out), standard_normal())
    expected = -0.5 * (1 + log_var - mu**2 - log_var.exp()).sum(-1)
    torch.testing.assert_close(kl, expected)


def test_full_covariance_kl_is_the_gaussian_formula():
    """KL(N(μ, Σ) || N(0, I)) = ½ (tr Σ + μᵀμ − D − log det Σ)."""
    posterior = FullCovarianceGaussianPosterior()
    out = encoder_output(posterior.num_params(LATENT))
    tril = posterior.scale_tril(out)
    cov = tril @ tril.transpose(-1, -2)
    mu = posterior.mean(out)
    expected = 0.5 * (
        cov.diagonal(dim1=-2, dim2=-1).sum(-1) + (mu**2).sum(-1) - LATENT - torch.logdet(cov)
    )
    kl = kl_divergence(posterior.distribution(out), standard_normal())
    torch.testing.assert_close(kl, expected, rtol=1e-5, atol=1e-5)


def test_full_covariance_layout_and_sample_covariance():
    posterior = FullCovarianceGaussianPosterior()
    assert posterior.num_params(LATENT) == LATENT * (LATENT + 3) // 2 == 9
    out = torch.tensor(
        [
            [
                0.5,
                -1.0,
                2.0,  # μ
                0.0,
                -0.5,
                0.3,  # log L_jj
                0.4,
                -0.2,
                0.8,
            ]
        ]
    )  # L_10, L_20, L_21
    tril = posterior.scale_tril(out)[0]
    expected = torch.tensor([[1.0, 0.0, 0.0], [0.4, torch.e**-0.5, 0.0], [-0.2, 0.8, torch.e**0.3]])
    torch.testing.assert_close(tril, expected)
    q = posterior.distribution(out)
    torch.manual_seed(2)
    z = q.rsample((NUM_MC,))[:, 0]
    torch.testing.assert_close(z.mean(0), out[0, :3], atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(z.T), tril @ tril.T, atol=0.03, rtol=0.02)


def test_full_covariance_with_diagonal_cholesky_equals_diagonal_exactly():
    """Off-diagonal entries 0 and raw diagonal log σ ⇒ the very same q as the diagonal family."""
    generator = torch.Generator().manual_seed(3)
    mu = torch.randn(6, LATENT, generator=generator)
    log_sigma = 0.5 * torch.randn(6, LATENT, generator=generator)
    below = torch.zeros(6, LATENT * (LATENT - 1) // 2)
    full = FullCovarianceGaussianPosterior("exp")
    q_full = full.distribution(torch.cat([mu, log_sigma, below], dim=-1))
    diagonal_outputs = {
        "log_var": torch.cat([mu, 2 * log_sigma], -1),
        "log_scale": torch.cat([mu, log_sigma], -1),
    }
    points = torch.randn(10, 6, LATENT, generator=generator)
    for parameterization, out in diagonal_outputs.items():
        diag = DiagonalGaussianPosterior(parameterization)
        q_diag = diag.distribution(out)
        torch.testing.assert_close(q_full.log_prob(points), q_diag.log_prob(points))
        torch.testing.assert_close(
            kl_divergence(q_full, standard_normal()),
            kl_divergence(q_diag, standard_normal()),
        )
        torch.testing.assert_close(q_full.mean, q_diag.mean)
        torch.testing.assert_close(q_full.variance, q_diag.variance)
        torch.manual_seed(4)
        z_full = q_full.rsample((5,))
        torch.manual_seed(4)
        z_diag = q_diag.rsample((5,))
        torch.testing.assert_close(z_full, z_diag)  # same ε, same reparameterisation


@pytest.mark.parametrize("name", POSTERIORS)
def test_rsample_is_reparameterised(name):
    posterior = POSTERIORS[name]
    out = encoder_output(posterior.num_params(LATENT)).requires_grad_(True)
    z = posterior.distribution(out).rsample((2,))
    assert z.shape == (2, 4, LATENT)
    z.sum().backward()
    assert out.grad is not None
    assert (out.grad.abs().sum(0) > 0).all()  # every parameter moves z


def test_wrong_encoder_width_and_options_raise():
    with pytest.raises(ValueError, match="D\\(D \\+ 3\\)/2"):
        FullCovarianceGaussianPosterior().distribution(torch.zeros(2, 8))
    with pytest.raises(ValueError, match="parameterization"):
        DiagonalGaussianPosterior("std")
    with pytest.raises(ValueError, match="diagonal_transform"):
        FullCovarianceGaussianPosterior("square")


@pytest.mark.parametrize(
    ("overrides", "cls", "factorised"),
    [
        (["posterior=diagonal"], DiagonalGaussianPosterior, True),
        (
            ["posterior=diagonal", "model.posterior.parameterization=log_scale"],
            DiagonalGaussianPosterior,
            True,
        ),
        (["posterior=full_covariance"], FullCovarianceGaussianPosterior, False),
    ],
)
def test_posterior_configs_instantiate(tmp_path, overrides, cls, factorised):
    posterior = instantiate(compose_config(overrides, tmp_path).model.posterior)
    assert type(posterior) is cls
    q = posterior.distribution(torch.zeros(1, posterior.num_params(2)))
    assert (factorised_marginals(q) is not None) is factorised


def _diag_q(mu, log_var):
    return DiagonalGaussianPosterior().distribution(torch.cat([mu, log_var], dim=-1))


def test_analytic_kl_matches_closed_form_and_monte_carlo():
    torch.manual_seed(1)
    mu, log_var = torch.randn(4, 3), torch.randn(4, 3)
    q = _diag_q(mu, log_var)
    prior = StandardNormalPrior()
    prior.setup(3, (1, 1, 1), encode=None)
    prior = prior.distribution()
    analytic = kl_divergence(q, prior)
    # seed 000's closed form: −½ Σ (1 + log σ² − μ² − σ²)
    closed = -0.5 * (1 + log_var - mu**2 - log_var.exp()).sum(-1)
    torch.testing.assert_close(analytic, closed, atol=1e-5, rtol=1e-5)
    samples = q.sample((100_000,))
    log_ratio = q.log_prob(samples) - prior.log_prob(samples)
    mc, stderr = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(len(samples))
    assert torch.all((mc - analytic).abs() < 4 * stderr), (mc, analytic, stderr)
