"""RAE-L2 and RAE-GP as ``model=`` options: built from their yaml with their own loss, the
objective group refused; a short MNIST run and the exact resume (slow)."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from tests.latent_family_runs import (
    DETERMINISTIC_WITHOUT_BETA,
    resume_matches_straight_run,
    training_lowers_the_validation_loss,
)
from vaelab.baselines.regularised_autoencoder import RegularisedAutoencoder
from vaelab.builders import build_module
from vaelab.errors import VaelabError
from vaelab.objectives.regularised_autoencoder import RegularisedAutoencoderLoss
from vaelab.regimes import GradientRegime


@pytest.mark.parametrize(("option", "weight_decays"), [("rae_l2", [0.0, 2e-4]), ("rae_gp", [0.0])])
def test_each_option_builds_its_model_loss_and_optimiser(make_config, option, weight_decays):
    cfg = make_config("data=digits", f"model={option}")
    module = build_module(cfg, instantiate(cfg.data).dims)
    assert isinstance(module.model, RegularisedAutoencoder)
    assert isinstance(module.objective, RegularisedAutoencoderLoss)
    assert type(module.regime) is GradientRegime
    optimizer = module.configure_optimizers()
    assert [group["weight_decay"] for group in optimizer.param_groups] == pytest.approx(
        weight_decays
    )
    assert not module.has_bound  # checkpoints watch val/loss
    samples = module.model.sample(3, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (3, *module.model.input_shape)


def test_an_objective_option_is_refused_in_one_line(make_config):
    from vaelab.train import train

    cfg = make_config("data=digits", "model=rae_gp", "objective=iwae")
    with pytest.raises(VaelabError) as refused:
        train(cfg)
    assert "\n" not in str(refused.value)
    assert "objective" in str(refused.value)


@pytest.mark.slow
@pytest.mark.parametrize("option", ["rae_l2", "rae_gp"])
def test_a_short_mnist_run_lowers_its_loss(mnist_data_dir, tmp_path, option):
    _, trained = training_lowers_the_validation_loss(
        [f"model={option}"], mnist_data_dir, tmp_path, train_batches=100, min_gain=200
    )
    assert trained["val/code_penalty"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("option", ["rae_l2", "rae_gp"])
def test_two_plus_two_epochs_resume_exactly(mnist_data_dir, tmp_path, option):
    resume_matches_straight_run(
        [f"model={option}"],
        mnist_data_dir,
        tmp_path,
        base=DETERMINISTIC_WITHOUT_BETA,
        metric="val/loss",
    )
