"""vaelab.samplers.flow_density with vaelab.samplers.maf and vaelab.samplers.iaf: the flows'
log-densities against the autograd Jacobian, and a density trained on a known 2-D mixture."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from vaelab.samplers.base import TrainingCodes
from vaelab.samplers.iaf import InverseAutoregressiveFlowSampler
from vaelab.samplers.maf import MaskedAutoregressiveFlowSampler


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared CPU two threads of small matrix products thrash."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SAMPLERS = (MaskedAutoregressiveFlowSampler, InverseAutoregressiveFlowSampler)


def _randomised(sampler_class, latent_dim: int = 3):
    """A sampler with random (non-identity) steps and a non-trivial standardisation."""
    torch.manual_seed(0)
    sampler = sampler_class(num_flows=2, hidden_dims=(16,))
    sampler.build(latent_dim)
    with torch.no_grad():
        for parameter in sampler.networks.parameters():
            parameter.normal_(0.0, 0.3)
        sampler.code_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        sampler.code_scale.copy_(torch.tensor([2.0, 0.5, 1.5]))
    return sampler


def _noise_of(sampler, z):
    """The noise u of a code z: the inverse of the generative map (autograd-friendly)."""
    x = (z - sampler.code_mean) / sampler.code_scale
    for transform in reversed(sampler.step_transforms()):
        x = transform.inv(x)
    return x


@pytest.mark.parametrize("sampler_class", SAMPLERS, ids=("maf", "iaf"))
def test_log_density_is_the_change_of_variables_with_the_autograd_jacobian(sampler_class):
    sampler = _randomised(sampler_class)
    codes = torch.randn(4, 3)
    base = Independent(Normal(torch.zeros(3), torch.ones(3)), 1)
    for z in codes:
        u = _noise_of(sampler, z)
        log_det = torch.linalg.slogdet(jacobian(lambda v: _noise_of(sampler, v), z))[1]
        expected = base.log_prob(u) + log_det
        assert torch.allclose(sampler.log_prob(z[None])[0], expected, atol=1e-4)


@pytest.mark.parametrize("sampler_class", SAMPLERS, ids=("maf", "iaf"))
def test_samples_come_back_to_their_noise(sampler_class):
    sampler = _randomised(sampler_class)
    torch.manual_seed(5)
    u = torch.randn(6, 3)
    torch.manual_seed(5)
    z = sampler.sample(6)
    assert torch.allclose(_noise_of(sampler, z), u, atol=1e-4)


@pytest.mark.slow
def test_maf_learns_a_known_two_dimensional_mixture():
    """Mean held-out log-likelihood within 0.1 nats of −H, the mixture's entropy (by Monte
    Carlo), and far above a single Gaussian's."""
    truth = MixtureSameFamily(
        Categorical(probs=torch.tensor([0.5, 0.5])),
        Independent(
            Normal(torch.tensor([[-2.0, 0.0], [2.0, 1.0]]), torch.tensor([[0.5, 1.0], [1.0, 0.4]])),
            1,
        ),
    )
    torch.manual_seed(0)
    codes, held_out = truth.sample((3000,)), truth.sample((20000,))
    negative_entropy = float(truth.log_prob(held_out).mean())
    sampler = MaskedAutoregressiveFlowSampler(
        num_flows=4, hidden_dims=(32, 32), epochs=60, batch_size=1000, lr=1e-2
    )
    sampler.fit(TrainingCodes(mean=codes), torch.Generator().manual_seed(0))
    with torch.no_grad():
        learned = float(sampler.log_prob(held_out).mean())
    gaussian = float(
        torch.distributions.MultivariateNormal(codes.mean(0), torch.cov(codes.T))
        .log_prob(held_out)
        .mean()
    )
    assert abs(learned - negative_entropy) < 0.1
    assert learned > gaussian + 0.1
    assert math.isfinite(learned)
