"""Numeric checks of the foundation: Bernoulli log-likelihood, analytic KL, the loss in nats,
and the sign of the ELBO against an exactly integrable log p(x)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.models.vae import VAE
from vaelab.module import LatentVariableModule
from vaelab.nets.mlp import mlp
from vaelab.objectives.elbo import ELBO
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior
from vaelab.priors.standard_normal import StandardNormalPrior
from vaelab.schedules.constant import ConstantBeta


def test_bernoulli_log_prob_equals_torch_distributions_and_bce():
    torch.manual_seed(0)
    logits = torch.randn(5, 1, 7, 6) * 3
    x_binary = torch.bernoulli(torch.rand(5, 1, 7, 6))
    x_grey = torch.rand(5, 1, 7, 6)
    lik = BernoulliLikelihood()
    expected = Bernoulli(logits=logits).log_prob(x_binary).sum(dim=(1, 2, 3))
    torch.testing.assert_close(lik.log_prob(logits, x_binary), expected, atol=1e-5, rtol=0)
    bce = F.binary_cross_entropy_with_logits(logits, x_grey, reduction="none").sum(dim=(1, 2, 3))
    torch.testing.assert_close(lik.log_prob(logits, x_grey), -bce, atol=1e-5, rtol=0)
    torch.testing.assert_close(lik.mean(logits), torch.sigmoid(logits))


def test_bernoulli_log_prob_is_stable_for_extreme_logits():
    logits = torch.tensor([[-200.0, 200.0]]).reshape(1, 1, 1, 2)
    x = torch.tensor([[1.0, 0.0]]).reshape(1, 1, 1, 2)
    # log σ(−200) + log(1 − σ(200)) = −400 exactly, no inf/nan
    torch.testing.assert_close(BernoulliLikelihood().log_prob(logits, x), torch.tensor([-400.0]))


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


def _module(latent_dim=2, num_samples=1, input_shape=(1, 4, 3), hidden=(8,)):
    net = lambda **kw: mlp(hidden_dims=hidden, activation="leaky_relu", negative_slope=0.2, **kw)  # noqa: E731
    return LatentVariableModule(
        model=VAE(net=net, latent_dim=latent_dim, input_shape=input_shape),
        optimizer=lambda params: torch.optim.Adam(params),
        objective=ELBO(num_samples=num_samples),
    )


def test_training_loss_is_negative_elbo_in_nats_per_image_by_hand():
    torch.manual_seed(2)
    module = _module()
    x = torch.bernoulli(torch.rand(6, 1, 4, 3))
    torch.manual_seed(3)
    loss = module.training_step([x, torch.zeros(6)], 0)
    # by hand: the same ε, seed 000's loss (BCE summed over pixels + closed-form KL), / batch
    torch.manual_seed(3)
    enc = module.model.encoder(x)
    mu, log_var = enc.chunk(2, dim=-1)
    z = mu + (0.5 * log_var).exp() * torch.randn_like(mu)
    probs = torch.sigmoid(module.model.decoder(z))
    bce = F.binary_cross_entropy(probs, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + log_var - mu**2 - log_var.exp())
    torch.testing.assert_close(loss, (bce + kl) / len(x), atol=1e-4, rtol=1e-5)


def test_elbo_is_below_exact_log_likelihood_of_a_one_dimensional_latent_model():
    """log p(x) = log ∫ p(x|z) N(z; 0, 1) dz by quadrature; the ELBO must lie below it for
    every x (a sign error in either term breaks this)."""
    torch.manual_seed(4)
    module = _module(latent_dim=1, input_shape=(1, 2, 2), hidden=(6,))
    vae = module.model
    x = torch.bernoulli(torch.rand(8, 1, 2, 2))
    with torch.no_grad():
        z_grid = torch.linspace(-12, 12, 40001).unsqueeze(-1)
        log_px_given_z = vae.decode(z_grid.unsqueeze(1)).log_prob(x)  # [G, B]
        log_prior = Normal(0.0, 1.0).log_prob(z_grid)  # [G, 1]
        dz = float(z_grid[1] - z_grid[0])
        log_px = torch.logsumexp(log_px_given_z + log_prior, dim=0) + math.log(dz)
        objective = ELBO(num_samples=20_000)
        objective.setup(vae, ConstantBeta(1.0), {})
        elbo = objective(vae, x, None, ConstantBeta(1.0), 0).bound
    assert torch.all(elbo <= log_px + 1e-3), (elbo, log_px)
    assert torch.all(log_px - elbo < 5.0)  # and a real bound, not −∞
    assert torch.all(log_px < 0)  # a probability mass of a binary image


@pytest.mark.parametrize("num_samples", [1, 7])
def test_elbo_terms_have_one_value_per_data_point_and_correct_signs(num_samples):
    torch.manual_seed(5)
    module = _module(num_samples=num_samples)
    x = torch.bernoulli(torch.rand(9, 1, 4, 3))
    out = module(x)
    recon, kl = out.terms["recon"], out.terms["kl"]
    for term in (recon, kl, out.bound, out.loss):
        assert term.shape == (9,)
    assert out.per_dimension["kl"].shape == (9, 2)
    assert torch.all(recon > 0)
    assert torch.all(kl >= 0)
    torch.testing.assert_close(out.bound, -(recon + kl))
    torch.testing.assert_close(out.loss, recon + kl)  # β = 1: the loss is −ELBO
    torch.testing.assert_close(out.per_dimension["kl"].sum(-1), kl)
