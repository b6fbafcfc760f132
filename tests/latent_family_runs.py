"""Short real-MNIST runs shared by the tests of latent families chosen by one override
(model=hyperspherical_mlp, posterior=planar, model=gumbel_vae, …): a run whose bound improves
and lies above the IW estimate, and the exact 2 + 2 = 4 epoch resume."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import DETERMINISTIC, FAST, compose_config
from vaelab.builders import build_module
from vaelab.evaluation.encodings import prepare_batch
from vaelab.evaluation.metrics import evaluate_test_set, summarize
from vaelab.module import LatentVariableModule
from vaelab.train import train

#: DETERMINISTIC for a model or objective that takes no beta= (an autoencoder, an AAE)
DETERMINISTIC_WITHOUT_BETA = [o for o in DETERMINISTIC if not o.startswith("beta")]
#: a small network, so that each run is a few seconds on a CPU
SMALL_NET = ["model.net.hidden_dims=[128]"]


def _first_test_batch(datamodule) -> list:
    datamodule.setup("test")
    batch = next(iter(datamodule.test_dataloader()))
    return [prepare_batch(datamodule, batch, torch.device("cpu"))]


@dataclass(frozen=True)
class ShortRun:
    """A short run's module and its scores on one test batch before and after training."""

    module: LatentVariableModule
    parameters_before: dict[str, torch.Tensor]
    untrained: dict
    trained: dict


def short_mnist_run_improves(
    option: list[str], data_dir: Path, tmp_path: Path, min_gain: float = 150
) -> ShortRun:
    """100 steps on MNIST: −ELBO falls by over ``min_gain`` nats from the untrained model's and
    the IW-NLL (k = 100) lies below −ELBO before and after."""
    cfg = compose_config(
        [*FAST, f"paths.data_dir={data_dir}", "data.eval_batch_size=250", *SMALL_NET, *option],
        tmp_path / "run",
    )
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    L.seed_everything(0)
    module = build_module(cfg, datamodule.dims)
    batches = _first_test_batch(datamodule)
    parameters_before = {n: p.detach().clone() for n, p in module.model.named_parameters()}

    def scores() -> dict:
        torch.manual_seed(0)
        return summarize(evaluate_test_set(module.model.eval(), batches, 100, chunk_size=50))

    untrained = scores()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=100,
        limit_val_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=datamodule)
    trained = scores()
    assert math.isfinite(float(trainer.callback_metrics["val/elbo"]))
    assert all(math.isfinite(trained[k]) for k in ("neg_elbo", "iw_nll", "kl", "recon"))
    assert trained["neg_elbo"] < untrained["neg_elbo"] - min_gain, (untrained, trained)
    for summary in (untrained, trained):
        assert summary["iw_nll"] <= summary["neg_elbo"]
    return ShortRun(module, parameters_before, untrained, trained)


def resume_matches_straight_run(
    option: list[str],
    data_dir: Path,
    tmp_path: Path,
    base: list[str] = DETERMINISTIC,
    metric: str = "val/elbo",
) -> None:
    """2 epochs, then 2 more from last.ckpt (extending a finished run: ``resume=force``), end
    where 4 straight epochs do (``metric``: ``val/loss`` for a model without an ELBO)."""
    common = [
        *base,
        f"paths.data_dir={data_dir}",
        "callbacks.image_logger=null",
        "callbacks.encoding_snapshot=null",
        *SMALL_NET,
        *option,
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
    assert math.isfinite(straight[metric])
    assert resumed[metric] == pytest.approx(straight[metric], abs=1e-6, rel=0)


def training_raises_the_validation_elbo(
    option: list[str], data_dir: Path, tmp_path: Path, train_batches: int, val_batches: int
) -> None:
    """Through ``vaelab-train``'s own train(): ``train_batches`` steps raise val/elbo by over
    100 nats above one step's (for a model too slow for :func:`short_mnist_run_improves`)."""
    common = [
        *FAST,
        f"paths.data_dir={data_dir}",
        "callbacks.image_logger=null",
        "callbacks.encoding_snapshot=null",
        "logger=csv",
        "test=false",
        f"trainer.limit_val_batches={val_batches}",
        "trainer.max_epochs=1",
        *option,
    ]
    one_step = train(compose_config([*common, "trainer.limit_train_batches=1"], tmp_path / "a"))
    trained = train(
        compose_config([*common, f"trainer.limit_train_batches={train_batches}"], tmp_path / "b")
    )
    assert math.isfinite(trained["val/elbo"])
    assert trained["val/elbo"] > one_step["val/elbo"] + 100


def training_lowers_the_validation_loss(
    option: list[str],
    data_dir: Path,
    tmp_path: Path,
    train_batches: int,
    *,
    val_batches: int = 5,
    min_gain: float | None = None,
    logs_no_bound: bool = False,
) -> tuple[dict, dict]:
    """For a model without an ELBO (an autoencoder, an adversarial one) or a run that logs no
    bound (a reconstruction loss, SWAE): through ``vaelab-train``'s own train() on MNIST,
    ``train_batches`` steps lower val/loss below one step's, by over ``min_gain`` (nats) or,
    without it, by over a quarter; ``logs_no_bound``: no bound is logged either. Returns both
    runs' metrics."""
    common = [
        *FAST,
        f"paths.data_dir={data_dir}",
        "callbacks.image_logger=null",
        "callbacks.encoding_snapshot=null",
        "logger=csv",
        "test=false",
        f"trainer.limit_val_batches={val_batches}",
        "trainer.max_epochs=1",
        *SMALL_NET,
        *option,
    ]
    one_step = train(compose_config([*common, "trainer.limit_train_batches=1"], tmp_path / "a"))
    trained = train(
        compose_config([*common, f"trainer.limit_train_batches={train_batches}"], tmp_path / "b")
    )
    assert math.isfinite(trained["val/loss"])
    if logs_no_bound:
        assert not any("elbo" in name or "bound" in name for name in trained)
    if min_gain is None:
        assert trained["val/loss"] < 0.75 * one_step["val/loss"], (one_step, trained)
    else:
        assert trained["val/loss"] < one_step["val/loss"] - min_gain, (one_step, trained)
    return one_step, trained
