"""vaelab.samplers.gmm: the Gaussian mixture fitted to codes drawn from a known mixture."""

from __future__ import annotations

import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from vaelab.samplers.base import TrainingCodes
from vaelab.samplers.gmm import GaussianMixtureSampler


def _known_mixture() -> MixtureSameFamily:
    means = torch.tensor([[-3.0, 0.0, 1.0], [3.0, 1.0, -1.0]], dtype=torch.float64)
    covariances = torch.stack(
        [
            torch.tensor([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.5]]),
            torch.tensor([[0.5, 0.0, 0.0], [0.0, 2.0, -0.3], [0.0, -0.3, 1.0]]),
        ]
    ).double()
    return MixtureSameFamily(
        Categorical(probs=torch.tensor([0.3, 0.7], dtype=torch.float64)),
        MultivariateNormal(means, covariance_matrix=covariances),
    )


def test_the_fitted_density_and_samples_match_the_known_mixture():
    torch.manual_seed(0)
    truth = _known_mixture()
    codes = truth.sample((3000,))
    held_out = truth.sample((2000,))
    sampler = GaussianMixtureSampler(num_components=2)
    summary = sampler.fit(TrainingCodes(mean=codes.float()), torch.Generator().manual_seed(0))
    fitted = sampler.log_prob(held_out)
    true = truth.log_prob(held_out)
    # mean log-density within 0.02 nats of the true one; pointwise close too
    assert abs(float(fitted.mean() - true.mean())) < 0.02
    assert float((fitted - true).abs().median()) < 0.05
    assert abs(summary.train_log_likelihood - float(truth.log_prob(codes).mean())) < 0.05
    draws = sampler.sample(10000, torch.Generator().manual_seed(1)).double()
    assert torch.allclose(draws.mean(0), truth.mean, atol=0.08)
    assert torch.allclose(torch.cov(draws.T), torch.cov(codes.T), atol=0.15)


def test_a_generator_draws_reproducibly_and_leaves_the_global_rng_alone():
    sampler = GaussianMixtureSampler(num_components=2, covariance_type="diag")
    codes = _known_mixture().sample((500,)).float()
    sampler.fit(TrainingCodes(mean=codes), torch.Generator().manual_seed(0))
    state = torch.random.get_rng_state()
    first = sampler.sample(5, torch.Generator().manual_seed(3))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first, sampler.sample(5, torch.Generator().manual_seed(3)))
    # diag: the stored covariances are diagonal matrices
    off_diagonal = sampler.covariances - torch.diag_embed(sampler.covariances.diagonal(0, 1, 2))
    assert float(off_diagonal.abs().max()) == 0.0
