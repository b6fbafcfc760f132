"""The ELBO engine's correction term for a rejection sampler (posteriors/structure.
rejection_score): the terms' values are unchanged and their gradient gains exactly
g_cor = E[f ∇ log π(ε|θ)], for the Monte-Carlo and the closed-form KL."""

from __future__ import annotations

import pytest
import torch

from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.objectives import evidence
from vaelab.objectives.evidence import EvidenceEstimator
from vaelab.posteriors.structure import rejection_score
from vaelab.posteriors.von_mises_fisher import VonMisesFisherPosterior
from vaelab.priors.spherical_uniform import SphericalUniformPrior


def _model() -> VAE:
    torch.manual_seed(0)

    def net(**kw):
        return mlp(hidden_dims=[8], **kw)

    return VAE(net, 3, (1, 4, 4), VonMisesFisherPosterior(), prior=SphericalUniformPrior())


def _terms(model: VAE, x: torch.Tensor, kl: str):
    estimator = EvidenceEstimator(kl=kl, num_samples=4)
    estimator.setup(model, "objective=elbo")
    torch.manual_seed(1)
    return estimator(model, x, None)


def _grad(value: torch.Tensor, model: VAE) -> torch.Tensor:
    parameters = list(model.encoder.parameters())
    return torch.cat(
        [g.flatten() for g in torch.autograd.grad(value, parameters, retain_graph=True)]
    )


@pytest.mark.parametrize("kl", ["monte_carlo", "analytic"])
def test_the_correction_changes_the_gradient_by_g_cor_and_no_value(kl, monkeypatch):
    model, x = _model(), torch.rand(5, 1, 4, 4)
    full = _terms(model, x, kl)
    with monkeypatch.context() as patch:
        patch.setattr(evidence, "rejection_score", lambda *_: None)
        plain = _terms(model, x, kl)
    assert torch.equal(full.recon, plain.recon)
    assert torch.equal(full.kl, plain.kl)
    samples = full.samples
    score = rejection_score(samples.posterior, samples.z)
    moved = score - score.detach()
    integrand = samples.log_likelihood.detach()
    if kl == "monte_carlo":
        integrand = integrand - (samples.log_posterior - samples.log_prior).detach()
    g_cor = _grad(-(integrand * moved).mean(0).sum(), model)
    difference = _grad((full.recon + full.kl).sum(), model) - _grad(
        (plain.recon + plain.kl).sum(), model
    )
    assert float(g_cor.abs().max()) > 0
    torch.testing.assert_close(difference, g_cor)
