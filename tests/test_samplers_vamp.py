"""vaelab.samplers.vamp: the mixture of training posteriors against torch.distributions."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal

from vaelab.errors import VaelabError
from vaelab.samplers.base import TrainingCodes
from vaelab.samplers.vamp import VampSampler


def test_density_is_the_mean_of_the_chosen_posteriors_densities():
    torch.manual_seed(0)
    codes = TrainingCodes(mean=torch.randn(50, 2), stddev=0.1 + torch.rand(50, 2))
    sampler = VampSampler(num_components=4)
    sampler.fit(codes, torch.Generator().manual_seed(0))
    z = torch.randn(7, 2)
    per_component = Normal(sampler.means[:, None], sampler.stddevs[:, None]).log_prob(z).sum(-1)
    expected = torch.logsumexp(per_component, 0) - torch.log(torch.tensor(4.0))
    assert torch.allclose(sampler.log_prob(z), expected, atol=1e-5)
    # the components are training posteriors
    rows = [int((codes.mean == m).all(1).nonzero()) for m in sampler.means]
    assert torch.equal(sampler.stddevs, codes.stddev[rows])
    restored = VampSampler(num_components=4)
    restored.restore(2, sampler.state_dict())
    assert torch.equal(restored.log_prob(z), sampler.log_prob(z))


def test_a_deterministic_code_is_refused_in_one_line():
    with pytest.raises(VaelabError, match="use sampler=gmm"):
        VampSampler().fit(TrainingCodes(mean=torch.zeros(5, 2)), torch.Generator())
