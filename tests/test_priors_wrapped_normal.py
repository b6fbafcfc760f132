"""The wrapped normal prior: N(0, σ₀² I) as c → 0, its curvature follows the posterior's in
the config, and a posterior on another ball is refused."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal

from tests.conftest import FAST, compose_config
from vaelab.builders import build_module
from vaelab.errors import VaelabError
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.posteriors.wrapped_normal import WrappedNormalPosterior
from vaelab.priors.wrapped_normal import WrappedNormalPrior


def test_as_the_curvature_vanishes_it_is_the_gaussian_of_its_scale():
    prior = WrappedNormalPrior(curvature=1e-10, scale=0.5)
    prior.setup(4, (1, 4, 4), lambda _: None)
    z = 0.3 * torch.randn(6, 4)
    gaussian = Independent(Normal(torch.zeros(4), torch.full((4,), 0.5)), 1)
    torch.testing.assert_close(prior.log_prob(z), gaussian.log_prob(z), rtol=0, atol=1e-4)


def test_two_balls_of_different_curvature_are_refused():
    def net(**kw):
        return mlp(hidden_dims=[8], **kw)

    with pytest.raises(VaelabError, match="Poincaré ball"):
        VAE(
            net,
            2,
            (1, 4, 4),
            posterior=WrappedNormalPosterior(curvature=1.0),
            prior=WrappedNormalPrior(curvature=0.5),
        )


def test_the_prior_follows_the_posteriors_curvature_in_the_config(tmp_path):
    cfg = compose_config(
        [*FAST, "model=poincare_mlp", "data=digits", "model.posterior.curvature=0.4"], tmp_path
    )
    assert cfg.model.prior.curvature == 0.4
    module = build_module(cfg, (1, 8, 8))
    assert module.model.latent_geometry.curvature == 0.4
    assert module.model.prior.sample(3).norm(dim=-1).max() < 1 / math.sqrt(0.4)
