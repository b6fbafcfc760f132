"""The issue-12 objectives train through vaelab-train: a fast_dev_run each on the digits set,
a short real-MNIST run each with finite, improving bounds, and FactorVAE's exact resume."""

from __future__ import annotations

import math

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import DETERMINISTIC, FAST, compose_config
from vaelab.evaluation.learning_curves import tensorboard_dir
from vaelab.train import train

#: each option with the terms it logs besides recon (a small discriminator for FactorVAE)
OPTIONS = {
    "beta_tcvae": (
        ["beta.value=4"],
        ("mutual_information", "total_correlation", "dimension_wise_kl"),
    ),
    "factor_vae": (
        ["objective.discriminator_width=64", "objective.discriminator_depth=2"],
        ("total_correlation",),
    ),
    "dip_vae_i": ([], ("covariance_off_diagonal", "covariance_diagonal")),
    "dip_vae_ii": ([], ("covariance_off_diagonal", "covariance_diagonal")),
    "info_vae": ([], ("mmd",)),
    "wae_mmd": ([], ("mmd",)),
}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_each_objective_trains_for_a_fast_dev_run_on_digits(option, make_config):
    overrides, terms = OPTIONS[option]
    metrics = train(
        make_config(
            "data=digits",
            f"objective={option}",
            "trainer.fast_dev_run=true",
            "callbacks=none",  # no checkpoints or pictures: 2 s instead of 4
            *overrides,
        )
    )
    bound = () if option == "wae_mmd" else ("test/elbo",)  # a deterministic WAE has no ELBO
    for name in (*bound, "test/loss", "test/recon", *(f"test/{t}" for t in terms)):
        assert math.isfinite(metrics[name]), name
    if option == "factor_vae":
        assert 0 <= metrics["train/discriminator_accuracy"] <= 1


def _val_curve(run_dir, name: str) -> list[float]:
    events = EventAccumulator(str(tensorboard_dir(run_dir)))
    events.Reload()
    return [event.value for event in events.Scalars(name)]


@pytest.mark.slow
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_each_objective_improves_its_bound_on_real_mnist(option, mnist_data_dir, tmp_path):
    """Three short epochs of model=mlp: the watched bound (val/elbo; val/loss for the
    deterministic WAE) is finite every epoch and better at the end than after the first."""
    overrides, terms = OPTIONS[option]
    metrics = train(
        compose_config(
            [
                *(o for o in FAST if not o.startswith("callbacks.")),
                "callbacks=none",  # no checkpoints or pictures: only the curves are tested
                f"paths.data_dir={mnist_data_dir}",
                "model=mlp",
                f"objective={option}",
                *overrides,
                "trainer.max_epochs=3",
                "trainer.limit_train_batches=30",
                "trainer.limit_val_batches=5",
                "test=false",
            ],
            tmp_path,
        )
    )
    watched, better = ("val/loss", -1) if option == "wae_mmd" else ("val/elbo", 1)
    curve = _val_curve(tmp_path, watched)
    assert len(curve) >= 3
    assert all(math.isfinite(v) for v in curve)
    assert better * (curve[-1] - curve[0]) > 0, curve
    for term in terms:
        assert math.isfinite(metrics[f"val/{term}"]), term


@pytest.mark.slow
def test_factor_vae_resumes_exactly_with_both_optimisers(mnist_data_dir, tmp_path):
    """2 + 2 epochs from last.ckpt end where 4 straight epochs do: the model's and the
    discriminator's weights and Adam states come back (val/total_correlation is the
    discriminator's estimate, so it differs if the discriminator was not restored)."""
    common = [
        *DETERMINISTIC,
        f"paths.data_dir={mnist_data_dir}",
        "objective=factor_vae",
        "objective.discriminator_width=64",
        "objective.discriminator_depth=2",
    ]
    straight = train(compose_config([*common, "trainer.max_epochs=4"], tmp_path / "straight"))
    train(compose_config([*common, "trainer.max_epochs=2"], tmp_path / "first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed = train(
        compose_config(
            [*common, "trainer.max_epochs=4", "resume=force", f"ckpt_path={last}"],
            tmp_path / "second",
        )
    )
    for name in ("val/elbo", "val/total_correlation"):
        assert resumed[name] == pytest.approx(straight[name], abs=1e-6, rel=0), name
    assert straight["val/elbo"] > -400
