"""VAE-GAN (Larsen et al. 2016): the learned similarity against torch.distributions, the
discriminator's loss and R1 penalty against a hand computation, Algorithm 1's gradients at
one set of parameters; a short MNIST run and the exact resume (slow)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal

from tests.latent_family_runs import (
    resume_matches_straight_run,
    training_raises_the_validation_elbo,
)
from tests.linear_factor_model import LinearFactorModel, binary_patterns
from vaelab.errors import VaelabError
from vaelab.objectives.vae_gan import VAEGAN, feature_negative_log_likelihood
from vaelab.schedules.constant import ConstantBeta

SMALL = {"discriminator_width": 8, "discriminator_depth": 1, "feature_layer": 1}


def set_up(**options) -> tuple[VAEGAN, LinearFactorModel]:
    torch.manual_seed(0)
    model = LinearFactorModel(latent_dim=2)
    objective = VAEGAN(**{**SMALL, **options})
    objective.setup(model, ConstantBeta(1.0), {})
    return objective, model


def test_the_learned_similarity_is_a_unit_gaussian_in_feature_space():
    data, decoded = torch.randn(5, 7), torch.randn(5, 7)
    expected = -Independent(Normal(decoded, 1.0), 1).log_prob(data)
    torch.testing.assert_close(feature_negative_log_likelihood(data, decoded), expected)


def test_the_encoders_loss_is_kl_plus_feature_recon_and_the_elbo_is_the_models():
    objective, model = set_up()
    x = binary_patterns(8)
    torch.manual_seed(1)
    out = objective(model, x, None, ConstantBeta(1.0), 0)
    torch.testing.assert_close(out.loss, out.terms["kl"] + out.terms["feature_recon"])
    torch.testing.assert_close(out.bound, -(out.terms["recon"] + out.terms["kl"]))
    assert {"z", "prior_z", "decoded", "prior_decoded"} <= set(out.intermediates)


def test_the_discriminators_loss_and_r1_penalty_match_a_hand_computation():
    objective, model = set_up(r1_penalty=2.0, negative_slope=0.1)
    x = binary_patterns(8)
    out = objective(model, x, None, ConstantBeta(1.0), 0)
    step = objective.group_loss("discriminator", model, x, None, out)
    (layer,) = objective.discriminator.hidden
    linear, head = layer[0], objective.discriminator.head

    def logit(images):
        return head(nn.functional.leaky_relu(linear(images.flatten(1)), 0.1)).squeeze(-1)

    bce = nn.functional.binary_cross_entropy_with_logits
    real, fake = logit(x), logit(out.intermediates["decoded"])
    prior_fake = logit(out.intermediates["prior_decoded"])
    gan = (
        bce(real, torch.ones_like(real), reduction="none")
        + bce(fake, torch.zeros_like(fake), reduction="none")
        + bce(prior_fake, torch.zeros_like(prior_fake), reduction="none")
    ).mean()
    # ∇_x logit = W1ᵀ (w2 ⊙ lrelu'(W1 x + b1)), lrelu' = 1 above zero, 0.1 below
    pre = linear(x.flatten(1))
    slope = torch.where(pre > 0, 1.0, 0.1)
    gradient = (slope * head.weight) @ linear.weight
    r1 = 0.5 * 2.0 * gradient.pow(2).sum(1).mean()
    torch.testing.assert_close(step.loss, gan + r1)


def test_the_groups_gradients_are_algorithm_1s_at_the_same_parameters():
    """The decoder's loss reads the batch's own z, so the encoder's step before it leaves it
    unchanged; the discriminator's reads the forward pass's x̃ and x_p, so the decoder's step
    leaves it unchanged."""
    objective, model = set_up()
    x = binary_patterns(8)
    out = objective(model, x, None, ConstantBeta(1.0), 0)
    groups = objective.optimiser_groups(model)
    assert [group.name for group in groups] == ["encoder", "decoder", "discriminator"]
    before = {
        g.name: objective.group_loss(g.name, model, x, None, out).loss.detach() for g in groups
    }
    for group in groups[:2]:  # step the encoder, then the decoder, by plain SGD
        optimizer = torch.optim.SGD(group.parameters, lr=0.5)
        optimizer.zero_grad()
        objective.group_loss(group.name, model, x, None, out).loss.backward()
        optimizer.step()
        if group.name == "encoder":
            after = objective.group_loss("decoder", model, x, None, out).loss
            torch.testing.assert_close(after, before["decoder"])
    after = objective.group_loss("discriminator", model, x, None, out).loss
    torch.testing.assert_close(after, before["discriminator"])


def test_a_feature_layer_above_the_discriminator_is_refused():
    with pytest.raises(VaelabError, match="feature_layer=4 must be at most"):
        VAEGAN(discriminator_depth=3, feature_layer=4)


@pytest.mark.slow
def test_a_short_mnist_run_raises_the_pixel_elbo(mnist_data_dir, tmp_path):
    """The loss itself is measured in the discriminator's moving features; the model's own
    pixel ELBO must rise (the decoder learns to reconstruct through Dis_l)."""
    training_raises_the_validation_elbo(
        ["objective=vae_gan", "model.net.hidden_dims=[128]"],
        mnist_data_dir,
        tmp_path,
        train_batches=150,
        val_batches=5,
    )


@pytest.mark.slow
def test_two_plus_two_epochs_resume_exactly_with_all_three_optimisers(mnist_data_dir, tmp_path):
    resume_matches_straight_run(
        ["objective=vae_gan", "objective.discriminator_width=64"], mnist_data_dir, tmp_path
    )
