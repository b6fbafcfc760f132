"""priors/class_conditional.py: p(z | y) = N(μ_y, diag σ_y²), a conditional variant of the VAE
written as one prior (y reaches the prior through the model interface)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from vaelab.builders import build_model
from vaelab.errors import VaelabError
from vaelab.objectives.evidence import EvidenceEstimator
from vaelab.priors.class_conditional import ClassConditionalPrior
from vaelab.train import train

CLASSES, LATENT = 3, 4


def trained_looking_prior() -> ClassConditionalPrior:
    prior = ClassConditionalPrior(num_classes=CLASSES)
    prior.setup(LATENT, (1, 2, 2), encode=None)
    with torch.no_grad():  # distinct classes, as after training
        prior.means.copy_(torch.arange(CLASSES * LATENT, dtype=torch.float).view(CLASSES, -1))
        prior.raw_scales.copy_(torch.linspace(-1.0, 1.0, CLASSES * LATENT).view(CLASSES, -1))
    return prior


def test_log_density_is_the_class_gaussian_and_the_marginal_its_uniform_mixture():
    prior = trained_looking_prior()
    z, y = torch.randn(5, LATENT), torch.tensor([0, 2, 1, 1, 0])
    scales = torch.nn.functional.softplus(prior.raw_scales) + prior.min_scale
    expected = Normal(prior.means[y], scales[y]).log_prob(z).sum(-1)
    torch.testing.assert_close(prior.log_prob(z, y), expected)
    per_class = torch.stack([prior.log_prob(z, torch.full((5,), k)) for k in range(CLASSES)])
    marginal = torch.logsumexp(per_class, 0) - math.log(CLASSES)
    torch.testing.assert_close(prior.log_prob(z), marginal)


def test_untrained_it_is_the_standard_normal_for_every_class():
    prior = ClassConditionalPrior(num_classes=CLASSES, min_scale=0.0)
    prior.setup(LATENT, (1, 2, 2), encode=None)
    z = torch.randn(6, LATENT)
    standard = Normal(0.0, 1.0).log_prob(z).sum(-1)
    # softplus(0.5413) = 1.00001: unit scales to five digits
    torch.testing.assert_close(
        prior.log_prob(z, torch.arange(6) % CLASSES), standard, rtol=1e-4, atol=1e-4
    )


def test_closed_form_kl_per_dimension_is_the_kl_to_the_class_gaussian():
    prior = trained_looking_prior()
    y = torch.tensor([2, 0])
    q = Normal(torch.randn(2, LATENT), torch.rand(2, LATENT) + 0.5)
    per_dimension = prior.kl_per_dimension(q, y)
    expected = kl_divergence(Independent(q, 1), prior.distribution_given(y))
    torch.testing.assert_close(per_dimension.sum(-1), expected)


def test_samples_come_from_the_chosen_class_and_the_generator_leaves_the_global_rng():
    prior = trained_looking_prior()
    y = torch.full((20_000,), 2)
    state = torch.random.get_rng_state()
    first = prior.sample(len(y), y, torch.Generator().manual_seed(1))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first, prior.sample(len(y), y, torch.Generator().manual_seed(1)))
    torch.testing.assert_close(first.mean(0), prior.means[2], atol=0.05, rtol=0.0)


def test_the_elbo_engine_scores_the_code_under_its_own_class(make_config):
    cfg = make_config("data=digits", "prior=class_conditional", "model.latent_dim=2")
    model = build_model(cfg, (1, 8, 8), {"input_shape": (1, 8, 8), "num_classes": 10})
    assert model.conditions_on == "classes"
    assert model.num_classes == 10
    with torch.no_grad():
        model.prior.means.copy_(torch.arange(20.0).view(10, 2))
    engine = EvidenceEstimator("auto")
    engine.setup(model, "objective=elbo")
    assert engine.kl_estimator == "analytic"
    assert engine.per_dimension
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 3, 3, 9])
    torch.manual_seed(0)
    analytic = engine(model, x, y).kl
    q = model.encode(x, y)
    expected = kl_divergence(q, model.prior.distribution_given(y))
    torch.testing.assert_close(analytic, expected)
    assert not torch.allclose(analytic, kl_divergence(q, model.prior.distribution_given(y.flip(0))))


def test_a_vae_with_it_needs_labelled_data(make_config):
    cfg = make_config("data=digits", "prior=class_conditional")
    with pytest.raises(VaelabError, match=r"prior=class_conditional conditions on class labels"):
        build_model(cfg, (1, 8, 8), {"input_shape": (1, 8, 8), "num_classes": None})


def test_a_vae_with_a_class_conditional_prior_trains_on_digits(make_config):
    metrics = train(
        make_config(
            "data=digits", "prior=class_conditional", "trainer.fast_dev_run=true", "callbacks=none"
        )
    )
    assert math.isfinite(metrics["test/elbo"])
    assert metrics["test/kl"] >= 0
