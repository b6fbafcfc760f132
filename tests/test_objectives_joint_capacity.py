"""JointVAE's objective (vaelab/objectives/joint_capacity.py, Dupont 2018, eq. 7): the loss
against a hand computation of recon + γ|KL_z − C_z| + γ|KL_c − C_c|, the two linear capacities,
C_c held at Σ log K, and its refusals."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaelab.errors import VaelabError
from vaelab.models.discrete import DiscreteVAE
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.objectives.joint_capacity import JointCapacity
from vaelab.posteriors.categorical import CategoricalPosterior
from vaelab.priors.categorical import CategoricalPrior
from vaelab.schedules.constant import ConstantBeta

SHAPE = (1, 4, 4)


def _joint_model() -> DiscreteVAE:
    torch.manual_seed(0)
    return DiscreteVAE(
        net=functools.partial(mlp, hidden_dims=[16]),
        num_variables=2,
        input_shape=SHAPE,
        posterior=CategoricalPosterior(num_categories=3, continuous_dim=2, temperature=0.67),
        prior=CategoricalPrior(),
    )


def test_the_loss_is_recon_plus_gamma_times_each_blocks_distance_to_its_capacity():
    model = _joint_model().eval()
    objective = JointCapacity(
        gamma=30.0,
        capacity_continuous_max=5.0,
        capacity_continuous_steps=100,
        capacity_discrete_max=1.0,
        capacity_discrete_steps=400,
    )
    weighting = ConstantBeta(1.0)
    objective.setup(model, weighting, {})
    x = torch.rand(6, *SHAPE)
    torch.manual_seed(1)
    out = objective(model, x, None, weighting, step=50)
    torch.manual_seed(1)
    samples = model.sample_latents(x)
    recon = -samples.log_likelihood
    q = samples.posterior
    kl_z = kl_divergence(q.continuous.base_dist, Normal(0.0, 1.0)).sum(-1)
    probs = q.probs
    kl_c = (probs * (probs.log() + math.log(3))).sum((-1, -2))
    expected = recon + 30 * (kl_z.mean() - 2.5).abs() + 30 * (kl_c.mean() - 0.125).abs()
    assert torch.allclose(out.loss, expected, atol=1e-4)
    assert torch.allclose(out.terms["kl_continuous"], kl_z, atol=1e-5)
    assert torch.allclose(out.terms["kl_discrete"], kl_c, atol=1e-5)
    assert torch.allclose(out.terms["kl"], kl_z + kl_c, atol=1e-5)
    assert torch.allclose(out.bound, -(recon + kl_z + kl_c), atol=1e-4)
    assert out.terms["capacity_continuous"].tolist() == pytest.approx([2.5] * 6)
    assert out.terms["capacity_discrete"].tolist() == pytest.approx([0.125] * 6)


def test_the_capacities_rise_linearly_and_c_c_stops_at_the_discrete_channels_capacity():
    objective = JointCapacity(
        capacity_continuous_max=5.0,
        capacity_continuous_steps=1000,
        capacity_discrete_max=5.0,
        capacity_discrete_steps=1000,
    )
    limit = 2 * math.log(3)  # two uniform 3-way variables: Σ log K nats
    assert objective.capacities(0, limit) == {"continuous": 0.0, "discrete": 0.0}
    assert objective.capacities(100, limit) == pytest.approx({"continuous": 0.5, "discrete": 0.5})
    assert objective.capacities(10**6, limit) == pytest.approx(
        {"continuous": 5.0, "discrete": limit}
    )
    model = _joint_model().eval()
    objective.setup(model, ConstantBeta(1.0), {})
    out = objective(model, torch.rand(2, *SHAPE), None, ConstantBeta(1.0), step=10**6)
    assert out.terms["capacity_discrete"].tolist() == pytest.approx([limit] * 2)


def test_a_gaussian_vae_and_a_beta_other_than_one_are_refused():
    gaussian = VAE(net=functools.partial(mlp, hidden_dims=[16]), latent_dim=2, input_shape=SHAPE)
    with pytest.raises(VaelabError, match=r"continuous and discrete blocks.*model=joint_vae"):
        JointCapacity().setup(gaussian, ConstantBeta(1.0), {})
    with pytest.raises(VaelabError, match="γ and the two capacities weight the KLs"):
        JointCapacity().setup(_joint_model(), ConstantBeta(4.0), {})
