"""The uniform prior on S^(D−1): its density is 1/|S^(D−1)|, its samples are uniform unit
vectors, its KL to a vMF posterior is registered (objective.kl=auto takes the closed form), and
a Euclidean prior with a spherical posterior is refused."""

from __future__ import annotations

import math

import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.objectives.evidence import has_analytic_kl
from vaelab.posteriors.von_mises_fisher import VonMisesFisherPosterior
from vaelab.priors.spherical_uniform import HypersphericalUniform, SphericalUniformPrior
from vaelab.priors.standard_normal import StandardNormalPrior


def test_density_is_one_over_the_sphere_area():
    """|S¹| = 2π, |S²| = 4π, |S³| = 2π²."""
    for dim, area in ((2, 2 * math.pi), (3, 4 * math.pi), (4, 2 * math.pi**2)):
        p = HypersphericalUniform(dim, dtype=torch.float64)
        value = p.log_prob(torch.eye(dim, dtype=torch.float64))
        torch.testing.assert_close(value, torch.full((dim,), -math.log(area), dtype=torch.float64))
        assert float(p.entropy()) == pytest.approx(math.log(area))


def test_samples_are_uniform_unit_vectors():
    """Unit norm, mean 0 and second moment I/D (within MC error)."""
    torch.manual_seed(0)
    num, dim = 10_000, 3
    z = HypersphericalUniform(dim, dtype=torch.float64).sample((num,))
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(num, dtype=torch.float64))
    assert float(z.mean(0).abs().max()) < 4.5 / math.sqrt(3 * num)
    second = z.T @ z / num
    torch.testing.assert_close(second, torch.eye(dim, dtype=torch.float64) / dim, atol=0.01, rtol=0)


def _vae(prior) -> VAE:
    net = lambda **kw: mlp(hidden_dims=[8], **kw)  # noqa: E731
    return VAE(net, 3, (1, 4, 4), posterior=VonMisesFisherPosterior(), prior=prior)


def test_a_vae_with_it_samples_on_the_sphere_and_uses_the_closed_form_kl():
    model = _vae(SphericalUniformPrior())
    assert model.latent_geometry.manifold == "sphere"
    torch.manual_seed(0)
    assert model.prior.sample(5).norm(dim=-1).sub(1).abs().max() < 1e-6
    q = model.encode(torch.rand(2, 1, 4, 4))
    assert has_analytic_kl(q, model.prior.distribution())
    assert model.sample(2).shape == (2, 1, 4, 4)


def test_a_gaussian_prior_with_a_spherical_posterior_is_refused():
    with pytest.raises(VaelabError, match="prior=spherical_uniform"):
        _vae(StandardNormalPrior())


def test_latent_dim_one_is_refused():
    with pytest.raises(ValueError, match="latent_dim ≥ 2"):
        SphericalUniformPrior().setup(1, (1, 4, 4), lambda _: None)
