"""vaelab.models.hierarchical and vaelab.models.ladder: Hierarchical VAE and Ladder VAE on a
linear-Gaussian two-layer model whose marginal log p(x) is Gaussian, so every bound is checked
against the exact value.

Model (per coordinate, D = 3 coordinates of a 1×1×3 "image"): z₂ ~ N(0, 1),
z₁ | z₂ ~ N(a z₂ + c, s₁²), x | z₁ ~ N(b z₁ + e, σ₀²). Its marginal is
x ~ N(B c + e, B (A Aᵀ + S₁) Bᵀ + S₀), computed with torch.distributions.MultivariateNormal.
With diagonal A, B the exact posterior factorises and is linear-Gaussian, so both inference
models can represent it exactly: then every log weight equals log p(x).
"""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch import Tensor
from torch.distributions import MultivariateNormal, Normal

from tests.conftest import compose_config
from vaelab.builders import build_module
from vaelab.errors import VaelabError
from vaelab.evaluation.iw_nll import importance_weighted_log_likelihood
from vaelab.likelihoods import GaussianLikelihood
from vaelab.models.hierarchical import HierarchicalLatents, HierarchicalVAE
from vaelab.models.interface import MissingCapability
from vaelab.models.ladder import GaussianParameters, LadderVAE, precision_weighted
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.objectives import ELBO, IWAE
from vaelab.schedules import ConstantBeta

D = 3
SHAPE = (1, 1, D)
A = torch.tensor([0.8, -1.3, 0.5])  # z₂ → z₁ slopes
C = torch.tensor([0.2, -0.4, 0.1])  # z₁ offsets
S1 = 0.6  # σ of z₁ | z₂
B = torch.tensor([1.5, 0.7, -1.1])  # z₁ → x slopes
E = torch.tensor([-0.3, 0.5, 0.0])  # x offsets
S0 = 0.4  # σ of x | z₁


def marginal(a: Tensor, b: Tensor) -> MultivariateNormal:
    """p(x) of the linear-Gaussian hierarchy with slope matrices ``a`` (z₂ → z₁) and ``b``
    (z₁ → x): x ~ N(b c + e, b (a aᵀ + s₁² I) bᵀ + s₀² I)."""
    covariance = b @ (a @ a.T + S1**2 * torch.eye(D)) @ b.T + S0**2 * torch.eye(D)
    return MultivariateNormal(b @ C + E, covariance_matrix=covariance)


def exact_log_marginal(x: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """log p(x) [N] for x [N, 1, 1, D]."""
    return marginal(a, b).log_prob(x.flatten(-3))


def set_linear(layer, weight: Tensor, bias: Tensor, log_variance: Tensor) -> None:
    """A GaussianLayer without hidden layers: μ = weight · input + bias, log σ² constant."""
    out = len(bias)
    with torch.no_grad():
        layer.head.weight.zero_()
        layer.head.weight[:out] = weight
        layer.head.bias[:out] = bias
        layer.head.bias[out:] = log_variance


def generative_parts(model: HierarchicalVAE, a: Tensor, b: Tensor) -> None:
    """p(z₁|z₂) = N(a z₂ + c, s₁²), p(x|z₁) = N(b z₁ + e, s₀²)."""
    set_linear(model.generative[0], a, C, torch.full((D,), 2 * math.log(S1)))
    with torch.no_grad():
        model.decoder.net[0].weight.copy_(b)
        model.decoder.net[0].bias.copy_(E)


def linear_model(cls: type[HierarchicalVAE]) -> HierarchicalVAE:
    return cls(
        latent_dims=[D, D],
        hidden_dims=[[], []],
        input_shape=SHAPE,
        likelihood=GaussianLikelihood(variance="fixed", scale=S0),
    )


def exact_bottom_up_model(a: Tensor | None = None, b: Tensor | None = None) -> HierarchicalVAE:
    """Burda's bottom-up q set to the exact posterior p(z₁|x) p(z₂|z₁) of the diagonal model
    (of another model when slope matrices ``a``, ``b`` are given)."""
    model = linear_model(HierarchicalVAE)
    generative_parts(model, torch.diag(A) if a is None else a, torch.diag(B) if b is None else b)
    prior_var = A**2 + S1**2  # z₁'s marginal variance
    var1 = 1 / (1 / prior_var + B**2 / S0**2)  # p(z₁|x)
    set_linear(
        model.inference[0],
        torch.diag(var1 * B / S0**2),
        var1 * (C / prior_var - B * E / S0**2),
        var1.log(),
    )
    var2 = 1 / (1 + A**2 / S1**2)  # p(z₂|z₁)
    set_linear(model.inference[1], torch.diag(var2 * A / S1**2), -var2 * A * C / S1**2, var2.log())
    return model


def exact_ladder_model(a: Tensor | None = None, b: Tensor | None = None) -> LadderVAE:
    """The ladder's q set to the exact posterior: q(z₂|x) = p(z₂|x) and the bottom-up estimate
    of z₁ = the likelihood term N(z₁; (x − e)/b, s₀²/b²), so that the precision-weighted
    combination with p(z₁|z₂) is p(z₁|z₂, x)."""
    model = linear_model(LadderVAE)
    generative_parts(model, torch.diag(A) if a is None else a, torch.diag(B) if b is None else b)
    set_linear(model.inference[0], torch.diag(1 / B), -E / B, (S0**2 / B**2).log())
    noise = B**2 * S1**2 + S0**2  # x | z₂ ~ N(b a z₂ + b c + e, noise)
    var2 = 1 / (1 + (B * A) ** 2 / noise)
    slope = var2 * B * A / noise
    set_linear(model.inference[1], torch.diag(slope), -slope * (B * C + E), var2.log())
    return model


def data(num: int = 5, seed: int = 0) -> Tensor:
    return torch.randn(num, *SHAPE, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("build", [exact_bottom_up_model, exact_ladder_model])
def test_exact_posterior_makes_the_elbo_and_iw_estimate_exact(build):
    model = build()
    x = data()
    exact = exact_log_marginal(x, torch.diag(A), torch.diag(B))
    torch.manual_seed(0)
    log_weights = model.log_weights(x, num_samples=50)
    torch.testing.assert_close(log_weights, exact.expand(50, -1), atol=1e-4, rtol=0)
    elbo = ELBO(num_samples=10)
    elbo.setup(model, ConstantBeta(1.0), {})
    assert elbo.kl_estimator == "monte_carlo"
    torch.testing.assert_close(
        elbo(model, x, None, ConstantBeta(1.0), 0).bound, exact, atol=1e-4, rtol=0
    )
    estimate = importance_weighted_log_likelihood(model, x, num_samples=64, chunk_size=16)
    torch.testing.assert_close(estimate.log_likelihood.float(), exact, atol=1e-4, rtol=0)


@pytest.mark.parametrize("build", [exact_bottom_up_model, exact_ladder_model])
def test_bounds_are_ordered_below_the_exact_log_likelihood(build):
    """Full slope matrices (the diagonal ones plus noise) under the diagonal model's posterior,
    a mismatched q: E[ELBO] < IW_k ≤ log p(x), and IW with many samples comes within
    Monte-Carlo error of log p(x)."""
    torch.manual_seed(1)
    a = torch.diag(A) + 0.2 * torch.randn(D, D)
    b = torch.diag(B) + 0.2 * torch.randn(D, D)
    model = build(a, b)
    for layer in model.inference:  # wider than the posterior: the IW weights' variance is finite
        with torch.no_grad():
            layer.head.bias[D:] += math.log(3.0)
    x = marginal(a, b).sample((4,)).reshape(4, *SHAPE)  # typical points of the model
    exact = exact_log_marginal(x, a, b)
    torch.manual_seed(2)
    elbo = ELBO(num_samples=4000)
    elbo.setup(model, ConstantBeta(1.0), {})
    with torch.no_grad():
        mean_elbo = elbo(model, x, None, ConstantBeta(1.0), 0).bound
    estimate = importance_weighted_log_likelihood(model, x, num_samples=20_000, chunk_size=5000)
    iw = estimate.log_likelihood.float()
    assert torch.all(mean_elbo < iw)  # IW-NLL ≤ −ELBO
    assert torch.all(exact - mean_elbo > 1.0)  # q is mismatched: the ELBO has a real gap
    torch.testing.assert_close(iw, exact, atol=0.1, rtol=0)  # within Monte-Carlo error


def test_iwae_objective_sums_every_layer():
    """IWAE's bound from a hierarchy's sample_latents is log mean w over all layers' densities:
    with the exact posterior it is log p(x)."""
    model = exact_bottom_up_model()
    x = data()
    out = IWAE(num_samples=8)(model, x, None, ConstantBeta(1.0), 0)
    torch.testing.assert_close(
        out.bound, exact_log_marginal(x, torch.diag(A), torch.diag(B)), atol=1e-4, rtol=0
    )
    samples = model.sample_latents(x, None, 3)
    assert isinstance(samples.z, HierarchicalLatents)
    assert [tuple(z.shape) for z in samples.z.layers] == [(3, 5, D), (3, 5, D)]


def test_precision_weighted_combination_is_the_product_of_two_gaussians():
    """N(x; a, A) N(x; b, B) = N(a; b, A + B) N(x; c, C) with C, c of eqs. 18–19."""
    torch.manual_seed(3)
    first = GaussianParameters(torch.randn(6), torch.rand(6) + 0.1)
    second = GaussianParameters(torch.randn(6), torch.rand(6) + 0.1)
    product = precision_weighted(first, second)
    x = torch.randn(10, 6)
    left = Normal(first.mean, first.variance.sqrt()).log_prob(x) + Normal(
        second.mean, second.variance.sqrt()
    ).log_prob(x)
    normaliser = Normal(second.mean, (first.variance + second.variance).sqrt()).log_prob(first.mean)
    right = normaliser + Normal(product.mean, product.variance.sqrt()).log_prob(x)
    torch.testing.assert_close(left, right, atol=1e-5, rtol=0)


def test_analytic_kl_is_refused_and_auto_says_why():
    model = exact_bottom_up_model()
    with pytest.raises(VaelabError, match="kl=analytic needs one posterior"):
        ELBO(kl="analytic").setup(model, ConstantBeta(1.0), {})
    elbo = ELBO(kl="auto")
    elbo.setup(model, ConstantBeta(1.0), {})
    assert elbo.resolved_choices()["kl_estimator"] == "monte_carlo"
    assert "2 stochastic layers" in elbo.resolved_choices()["kl_estimator_reason"]
    with pytest.raises(MissingCapability, match="no single prior"):
        _ = model.prior


def test_ancestral_samples_and_layer_codes_have_the_layer_shapes():
    torch.manual_seed(0)
    model = HierarchicalVAE(latent_dims=[4, 2], hidden_dims=[[8], [6]], input_shape=(1, 3, 3))
    assert model.sample(5).shape == (5, 1, 3, 3)
    codes = model.layer_codes(torch.rand(7, 1, 3, 3))
    assert [q.mean.shape for q in codes] == [(7, 4), (7, 2)]
    with pytest.raises(VaelabError, match="one list of widths per stochastic layer"):
        HierarchicalVAE(latent_dims=[4, 2], hidden_dims=[[8]], input_shape=(1, 3, 3))


def test_the_preset_refuses_a_prior_it_does_not_take(tmp_path):
    cfg = compose_config(["data=digits", "model=ladder_mlp", "prior=vamp"], tmp_path)
    with pytest.raises(VaelabError, match="has no prior: remove prior=vamp"):
        build_module(cfg, (1, 8, 8))


def test_one_layer_is_the_vae():
    """L = 1 with the VAE's weights: the same log weights, and the analytic KL under kl=auto."""
    torch.manual_seed(0)
    shape = (1, 4, 4)
    vae = VAE(partial(mlp, hidden_dims=[8], activation="tanh"), 3, shape)
    model = HierarchicalVAE([3], [[8]], shape)
    with torch.no_grad():
        model.inference[0].body[0].load_state_dict(vae.encoder[1].state_dict())
        model.inference[0].head.load_state_dict(vae.encoder[3].state_dict())
    model.decoder.load_state_dict(vae.decoder.state_dict())
    x = (torch.rand(5, *shape) > 0.5).float()
    torch.manual_seed(1)
    expected = vae.log_weights(x, None, 4)
    torch.manual_seed(1)
    torch.testing.assert_close(model.log_weights(x, None, 4), expected)
    elbo = ELBO()
    elbo.setup(model, ConstantBeta(1.0), {})
    assert elbo.kl_estimator == "analytic"
    torch.manual_seed(2)
    bound = elbo(model, x, None, ConstantBeta(1.0), 0).bound
    torch.manual_seed(2)
    torch.testing.assert_close(bound, elbo(vae, x, None, ConstantBeta(1.0), 0).bound)
