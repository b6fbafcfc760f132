"""vaelab.objectives.elbo (and IWAE beside it): the ELBO and IWAE on a linear-Gaussian model
whose every quantity has a closed form; the loss in nats per image by hand, and the ELBO below an
exactly integrable log p(x).

Model: p(z) = N(0, 1), p(x|z) = N(x; a·z + b, 1) as a 1×1×1 image; q(z|x) = N(μ, σ²) with
learnable (μ, log σ²) that ignore x. Then, for a = 1, b = 0: log p(x) = log N(x; 0, 2), the true
posterior is N(x/2, ½), E_q log p(x|z) = −½((x − μ)² + σ²) − ½ log 2π and
KL = ½(μ² + σ² − 1 − log σ²).
"""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import Tensor
from torch.distributions import Normal

from tests.conftest import compose_config
from tests.linear_gaussian import (
    X,
    copies,
    linear_gaussian_vae,
    log_evidence,
    run,
    small_mlp_vae,
)
from vaelab.errors import VaelabError
from vaelab.models.vae import VAE
from vaelab.module import LatentVariableModule
from vaelab.nets.mlp import mlp
from vaelab.objectives import ELBO, IWAE
from vaelab.posteriors import DiagonalGaussianPosterior, FullCovarianceGaussianPosterior
from vaelab.posteriors.structure import factorised_marginals
from vaelab.schedules import ConstantBeta, LinearWarmup


def closed_form_elbo(x: float, mu: float, log_var: float) -> float:
    var = math.exp(log_var)
    expected_log_lik = -0.5 * ((x - mu) ** 2 + var) - 0.5 * math.log(2 * math.pi)
    kl = 0.5 * (mu**2 + var - 1 - log_var)
    return expected_log_lik - kl


def mean_and_se(values: Tensor) -> tuple[float, float]:
    return values.mean().item(), (values.std() / len(values) ** 0.5).item()


@pytest.mark.parametrize("kl", ["analytic", "monte_carlo"])
def test_elbo_is_unbiased_for_the_closed_form(kl):
    torch.manual_seed(0)
    vae = linear_gaussian_vae()
    with torch.no_grad():
        out = run(ELBO(kl=kl), vae, copies())
    mean, se = mean_and_se(out.bound)
    assert abs(mean - closed_form_elbo(X, 0.3, -0.5)) < 4 * se
    if kl == "analytic":  # exact, no sampling noise in the KL
        torch.testing.assert_close(
            out.terms["kl"],
            torch.full_like(out.terms["kl"], 0.5 * (0.3**2 + math.exp(-0.5) - 1 + 0.5)),
        )
    torch.testing.assert_close(out.bound, -(out.terms["recon"] + out.terms["kl"]))


def test_monte_carlo_and_analytic_kl_agree_in_expectation():
    torch.manual_seed(1)
    vae = linear_gaussian_vae(mu=-0.8, log_var=0.4)
    with torch.no_grad():
        analytic = run(ELBO(kl="analytic"), vae, copies())
        sampled = run(ELBO(kl="monte_carlo"), vae, copies())
    kl_mean, kl_se = mean_and_se(sampled.terms["kl"])
    assert abs(kl_mean - analytic.terms["kl"][0].item()) < 4 * kl_se
    (mean_a, se_a), (mean_m, se_m) = mean_and_se(analytic.bound), mean_and_se(sampled.bound)
    assert abs(mean_a - mean_m) < 4 * math.hypot(se_a, se_m)
    # the per-dimension KLs add up to the KL in both estimators
    torch.testing.assert_close(sampled.per_dimension["kl"].sum(-1), sampled.terms["kl"])
    torch.testing.assert_close(analytic.per_dimension["kl"].sum(-1), analytic.terms["kl"])


@pytest.mark.parametrize("kl", ["analytic", "monte_carlo"])
def test_num_samples_reduces_variance_as_one_over_l(kl):
    torch.manual_seed(2)
    vae = linear_gaussian_vae()
    with torch.no_grad():
        single = run(ELBO(kl=kl, num_samples=1), vae, copies()).bound
        ten = run(ELBO(kl=kl, num_samples=10), vae, copies()).bound
    ratio = (single.var() / ten.var()).item()
    assert 8.5 < ratio < 11.5, ratio
    assert abs(single.mean() - ten.mean()) < 4 * math.hypot(
        mean_and_se(single)[1], mean_and_se(ten)[1]
    )


@pytest.mark.parametrize(
    "objective", [ELBO(num_samples=5), ELBO(kl="monte_carlo", num_samples=5), IWAE(num_samples=5)]
)
def test_samples_go_through_the_decoder_in_one_batched_call(objective):
    vae = linear_gaussian_vae()
    out = run(objective, vae, copies(num=7))
    assert vae.decoder.inputs
    assert len(vae.decoder.inputs) == 1
    assert vae.decoder.inputs[0].shape == (5 * 7, 1)
    assert out.bound.shape == out.terms["recon"].shape == out.terms["kl"].shape == (7,)


@pytest.mark.parametrize(
    "posterior", [DiagonalGaussianPosterior(), FullCovarianceGaussianPosterior()]
)
def test_iwae_with_one_sample_is_the_monte_carlo_elbo(posterior):
    vae, x = small_mlp_vae(posterior)
    torch.manual_seed(4)
    iwae = run(IWAE(num_samples=1), vae, x)
    torch.manual_seed(4)
    elbo = run(ELBO(kl="monte_carlo", num_samples=1), vae, x)
    torch.testing.assert_close(iwae.bound, elbo.bound)
    torch.testing.assert_close(iwae.terms["elbo"], elbo.bound)
    torch.testing.assert_close(iwae.terms["recon"], elbo.terms["recon"])
    torch.testing.assert_close(iwae.terms["kl"], elbo.terms["kl"])
    assert ("kl" in elbo.per_dimension) == (factorised_marginals(vae.encode(x)) is not None)


def test_iwae_bound_is_non_decreasing_in_k_and_approaches_log_evidence():
    """q = p(z) (a poor proposal): E L_k rises with k towards log p(x) and never exceeds it."""
    torch.manual_seed(5)
    vae = linear_gaussian_vae(mu=0.0, log_var=0.0)
    x = copies(num=20_000)
    stats = []
    with torch.no_grad():
        for k in (1, 2, 5, 20, 100):
            stats.append(mean_and_se(run(IWAE(num_samples=k), vae, x).bound))
    truth = log_evidence(X)
    for (low, low_se), (high, high_se) in pairwise(stats):
        assert high > low - 3 * math.hypot(low_se, high_se)
    for mean, se in stats:
        assert mean < truth + 4 * se
    assert stats[-1][0] - stats[0][0] > 0.2  # a clear gain over the ELBO
    assert abs(stats[-1][0] - truth) < 0.02 + 4 * stats[-1][1]


@pytest.mark.parametrize("k", [1, 7])
def test_iwae_with_the_exact_posterior_is_log_evidence_for_every_sample(k):
    """q = p(z|x) = N(x/2, ½) makes every weight p(x): the bound is exact, with no noise."""
    vae = linear_gaussian_vae(mu=X / 2, log_var=math.log(0.5))
    bound = run(IWAE(num_samples=k), vae, copies(num=50)).bound
    torch.testing.assert_close(bound, torch.full_like(bound, log_evidence(X)), rtol=0, atol=1e-5)


def test_iwae_gradient_is_the_weighted_pathwise_gradient():
    """∇L_k = Σ_i w̃_i ∇ log w(z(ε_i)) with z = μ + σε: checked against hand derivatives.

    log w = log N(x; a z + b, 1) + log N(z; 0, 1) − log N(z; μ, σ²); with r = x − a z − b:
    ∂/∂μ = a r − z, ∂/∂s = (a r − z)·σε/2 + ½ (s = log σ²), ∂/∂a = r z, ∂/∂b = r.
    """
    torch.manual_seed(6)
    mu, log_var, a, b, k = 0.4, -0.3, 1.3, 0.2, 4
    vae = linear_gaussian_vae(mu, log_var, a, b)
    x = torch.tensor([0.3, 1.5, -0.8]).reshape(3, 1, 1, 1)
    out = run(IWAE(num_samples=k), vae, x)
    out.bound.sum().backward()

    sigma = math.exp(0.5 * log_var)
    z = vae.decoder.inputs[0].reshape(k, 3)
    eps = (z - mu) / sigma
    xs = x.reshape(1, 3)
    r = xs - a * z - b
    log_w = -0.5 * r**2 - 0.5 * z**2 + 0.5 * eps**2 + 0.5 * log_var - 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(out.bound, torch.logsumexp(log_w, 0) - math.log(k))
    weights = torch.softmax(log_w, dim=0)
    d_mu = a * r - z
    expected = {
        "encoder.params": torch.stack(
            [(weights * d_mu).sum(), (weights * (d_mu * sigma * eps / 2 + 0.5)).sum()]
        ),
        "decoder.a": (weights * r * z).sum(),
        "decoder.b": (weights * r).sum(),
    }
    grads = {name: p.grad for name, p in vae.named_parameters()}
    for name, value in expected.items():
        torch.testing.assert_close(grads[name], value, rtol=1e-5, atol=1e-5)


def test_iwae_loss_is_minus_bound_and_refuses_beta():
    vae, x = small_mlp_vae()
    out = run(IWAE(num_samples=3), vae, x)
    torch.testing.assert_close(out.loss, -out.bound)
    for weighting in (ConstantBeta(0.5), LinearWarmup(1.0, 100)):
        with pytest.raises(VaelabError, match="beta=constant"):
            IWAE().setup(vae, weighting, {})


def test_elbo_loss_weights_the_kl_by_beta():
    vae, x = small_mlp_vae()
    torch.manual_seed(7)
    weighted = run(ELBO(), vae, x, ConstantBeta(4.0))
    torch.manual_seed(7)
    plain = run(ELBO(), vae, x, ConstantBeta(1.0))
    recon, kl = plain.terms["recon"], plain.terms["kl"]
    torch.testing.assert_close(weighted.loss, recon + 4.0 * kl)
    torch.testing.assert_close(plain.loss, -plain.bound)
    torch.testing.assert_close(weighted.bound, plain.bound)  # the bound is β-free


def test_iwae_logs_its_bound_under_its_own_name_and_the_elbo_beside_it():
    assert IWAE().logged_names()[0] == "iwae_bound"
    assert "elbo" in IWAE().logged_names()
    assert ELBO().logged_names() == ("elbo", "recon", "kl")


@pytest.mark.parametrize(
    ("overrides", "cls", "num_samples"),
    [
        (["objective=elbo", "objective.kl=monte_carlo", "objective.num_samples=5"], ELBO, 5),
        (["objective=iwae", "objective.num_samples=50"], IWAE, 50),
    ],
)
def test_objective_configs_instantiate(tmp_path, overrides, cls, num_samples):
    objective = instantiate(compose_config(overrides, tmp_path).objective)
    assert type(objective) is cls
    assert objective.num_samples == num_samples


def test_bad_num_samples_raise():
    with pytest.raises(VaelabError, match=r"objective\.num_samples=0 must be an integer >= 1"):
        IWAE(num_samples=0)
    with pytest.raises(VaelabError, match=r"objective\.num_samples=0 must be an integer >= 1"):
        ELBO(num_samples=0)


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
