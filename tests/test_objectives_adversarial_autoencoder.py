"""The adversarial autoencoder (Makhzani et al. 2016) on a toy problem: its three optimiser
groups drive the aggregate code distribution to the prior (moments match, the discriminator
is left at chance); its refusals; a short MNIST run and the exact resume (slow)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal
from typing_extensions import override

from tests.latent_family_runs import (
    DETERMINISTIC_WITHOUT_BETA,
    resume_matches_straight_run,
    training_lowers_the_validation_loss,
)
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.adversarial_autoencoder import AdversarialAutoencoder
from vaelab.priors.standard_normal import StandardNormalPrior
from vaelab.schedules.constant import ConstantBeta

SHAPE = (1, 1, 4)


class LinearGaussianAutoencoder(LatentVariableModel):
    """x [B, 1, 1, 4] → z = A x + c (a Gaussian q with a small fixed spread) → N(B z + d, I)."""

    def __init__(self) -> None:
        super().__init__()
        self.latent_dim, self.input_shape = 2, SHAPE
        self.encoder = nn.Linear(4, 2)
        self.decoder = nn.Linear(2, 4)
        self._modules["prior"] = StandardNormalPrior()
        self.prior.setup(2, SHAPE, self.encode)

    @property
    def prior(self) -> StandardNormalPrior:
        return self._modules["prior"]

    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        mean = self.encoder(x.flatten(1))
        return Independent(Normal(mean, torch.full_like(mean, 0.01)), 1)

    @override
    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        return Independent(Normal(self.decoder(z).unflatten(-1, SHAPE), 1.0), 3)

    @override
    def sample(self, num: int, y: Tensor | None = None, generator=None) -> Tensor:
        return self.decode(self.prior.sample(num)).mean


def toy_data(num: int, generator: torch.Generator) -> Tensor:
    """Correlated Gaussian data with a non-zero mean: a linear encoder can map it to N(0, I)."""
    mixing = torch.tensor([[2.0, 0.5, 0.0, 0.3], [0.0, 1.5, -0.7, 0.2]])
    latent = torch.randn(num, 2, generator=generator)
    return (latent @ mixing + 1.5).unflatten(-1, SHAPE)


@pytest.mark.slow  # 600 steps of three optimisers: 3 s idle, 20 s on the shared 2-core machine
def test_codes_match_the_prior_and_the_discriminator_ends_at_chance():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = LinearGaussianAutoencoder()
    with torch.no_grad():  # start with codes far from N(0, I)
        model.encoder.bias.fill_(3.0)
    objective = AdversarialAutoencoder(discriminator_width=32, discriminator_depth=1)
    objective.setup(model, ConstantBeta(1.0), {})
    groups = objective.optimiser_groups(model)
    assert [group.name for group in groups] == ["autoencoder", "discriminator", "generator"]
    optimizers = [torch.optim.Adam(group.parameters, lr=5e-3, betas=(0.5, 0.9)) for group in groups]
    accuracies = []
    for step in range(600):
        x = toy_data(128, generator)
        out = objective(model, x, None, ConstantBeta(1.0), step)
        for group, optimizer in zip(groups, optimizers, strict=True):
            loss = objective.group_loss(group.name, model, x, None, out)
            optimizer.zero_grad()
            loss.loss.backward()
            optimizer.step()
            if group.name == "discriminator" and step >= 500:
                accuracies.append(float(loss.terms["discriminator_accuracy"]))
    with torch.no_grad():
        codes = model.encode(toy_data(20_000, generator)).mean
    torch.testing.assert_close(codes.mean(0), torch.zeros(2), atol=0.15, rtol=0)
    torch.testing.assert_close(codes.std(0), torch.ones(2), atol=0.15, rtol=0)
    assert abs(sum(accuracies) / len(accuracies) - 0.5) < 0.1, accuracies[-10:]


def test_the_objective_logs_no_bound_with_a_deterministic_encoder():
    objective = AdversarialAutoencoder(discriminator_width=8, discriminator_depth=1)
    model = LinearGaussianAutoencoder()
    objective.setup(model, ConstantBeta(1.0), {})
    x = toy_data(8, torch.Generator().manual_seed(1))
    out = objective(model, x, None, ConstantBeta(1.0), 0)
    expected = -Independent(
        Normal(model.decoder(model.encoder(x.flatten(1))).unflatten(-1, SHAPE), 1.0), 3
    ).log_prob(x)
    torch.testing.assert_close(out.loss, expected)
    assert out.bound is None
    assert objective.logged_names() == ("recon",)


def test_a_beta_is_refused_in_one_line():
    from vaelab.errors import VaelabError

    with pytest.raises(VaelabError, match="β does not apply"):
        AdversarialAutoencoder().setup(LinearGaussianAutoencoder(), ConstantBeta(2.0), {})


@pytest.mark.slow
def test_a_short_mnist_run_lowers_the_reconstruction(mnist_data_dir, tmp_path):
    _, trained = training_lowers_the_validation_loss(
        ["objective=adversarial_autoencoder", "model.latent_dim=10"],
        mnist_data_dir,
        tmp_path,
        train_batches=100,
        min_gain=100,
    )
    assert {"train/discriminator_loss", "train/generator_loss"} <= set(trained)


@pytest.mark.slow
def test_two_plus_two_epochs_resume_exactly_with_all_three_optimisers(mnist_data_dir, tmp_path):
    resume_matches_straight_run(
        ["objective=adversarial_autoencoder", "objective.discriminator_width=64"],
        mnist_data_dir,
        tmp_path,
        base=DETERMINISTIC_WITHOUT_BETA,
        metric="val/loss",
    )
