"""vaelab.objectives.factor_vae, FactorVAE (Kim & Mnih 2018): permute_dims shuffles each
dimension within the batch, the discriminator estimates the total correlation of a correlated
Gaussian, and the loss adds γ times its estimate to the β-VAE loss."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import (
    Distribution,
    Independent,
    MultivariateNormal,
    Normal,
)
from typing_extensions import override

from tests.table_model import indices, table
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.factor_vae import FactorVAE, permute_dims
from vaelab.priors.standard_normal import StandardNormalPrior
from vaelab.schedules import ConstantBeta


def test_permute_dims_shuffles_each_dimension_within_the_batch():
    torch.manual_seed(0)
    z = torch.arange(40.0).reshape(10, 4) * torch.tensor([1.0, 100.0, 1e4, 1e6])
    shuffled = permute_dims(z)
    for d in range(4):  # the same values in every column, in another order
        assert torch.equal(shuffled[:, d].sort().values, z[:, d].sort().values)
    assert not torch.equal(shuffled, z)
    # rows mix columns of different data points: the joint is broken
    assert (shuffled[:, 0] / 1 != shuffled[:, 1] / 100).any()


class CorrelatedCodes(LatentVariableModel):
    """q(z|x) = N(x, 10⁻⁶ I) for x drawn from a correlated Gaussian: q(z) is that Gaussian."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.input_shape, self.latent_dim = (1, 1, latent_dim), latent_dim
        self._prior = StandardNormalPrior()
        self._prior.setup(latent_dim, self.input_shape, self.encode)

    @property
    def prior(self) -> nn.Module:
        return self._prior

    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        return Independent(Normal(x.flatten(1), 1e-6), 1)

    @override
    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        return Independent(Normal(z.reshape(-1, *self.input_shape), 1.0), 3)

    @override
    def sample(self, num: int, y: Tensor | None = None, generator=None) -> Tensor:
        return self.decode(self.prior.sample(num)).mean


@pytest.mark.slow
def test_the_discriminator_estimates_the_total_correlation_of_a_correlated_gaussian():
    """TC of N(0, R) is −½ log det R; R here: unit variances, correlation 0.8 between z_0
    and z_1 (TC = −½ log 0.36 = 0.511 nats)."""
    torch.manual_seed(0)
    correlation = torch.tensor([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])
    codes = MultivariateNormal(torch.zeros(3), correlation)
    model = CorrelatedCodes(3)
    factor_vae = FactorVAE(discriminator_width=64, discriminator_depth=2)
    factor_vae.setup(model, ConstantBeta(1.0), {})
    optimizer = torch.optim.Adam(factor_vae.adversary_parameters(), lr=3e-3)
    for _ in range(600):
        x = codes.sample((512,)).reshape(512, 1, 1, 3)
        step = factor_vae.adversary_step(model, x, None, None)
        optimizer.zero_grad()
        step.loss.backward()
        optimizer.step()
    with torch.no_grad():
        x = codes.sample((20000,)).reshape(20000, 1, 1, 3)
        estimate = factor_vae(model, x, None, ConstantBeta(1.0), 0).terms["total_correlation"]
    exact = -0.5 * torch.logdet(correlation).item()
    assert exact == pytest.approx(0.5108, abs=1e-4)
    assert estimate.mean().item() == pytest.approx(exact, abs=0.08)
    assert 0.5 < step.terms["discriminator_accuracy"] < 0.75  # better than chance, not perfect


def test_factor_vae_adds_gamma_times_the_discriminator_estimate_to_the_beta_vae_loss():
    model = table(8, 2)
    x = indices(8)
    factor_vae = FactorVAE(gamma=7.0, discriminator_width=8, discriminator_depth=1)
    factor_vae.setup(model, ConstantBeta(2.0), {})
    torch.manual_seed(3)
    out = factor_vae(model, x, None, ConstantBeta(2.0), 0)
    torch.testing.assert_close(
        out.loss,
        out.terms["recon"] + 2.0 * out.terms["kl"] + 7.0 * out.terms["total_correlation"],
    )
    torch.testing.assert_close(out.bound, -(out.terms["recon"] + out.terms["kl"]))
    assert factor_vae.adversary_optimizer is not None
