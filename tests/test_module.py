"""vaelab.module: the training values' epoch means (``train/<name>_epoch``)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from vaelab.builders import build_module
from vaelab.errors import VaelabError
from vaelab.module import TrainingEpochMeans


def test_epoch_means_weight_each_batch_by_its_size():
    means = TrainingEpochMeans()
    means.add({"loss": torch.tensor(2.0), "kl": torch.tensor([1.0, 3.0, 5.0])}, batch_size=3)
    means.add({"loss": torch.tensor(10.0), "kl": torch.tensor([7.0])}, batch_size=1)
    result = means.means()
    assert result["loss"].item() == pytest.approx((3 * 2.0 + 10.0) / 4)
    assert result["kl"].item() == pytest.approx((1 + 3 + 5 + 7) / 4)
    means.reset()
    assert means.means() == {}


class StepLosses(L.Callback):
    """Each training step's loss and batch size, and the logged epoch means."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.sizes: list[int] = []
        self.epoch_metrics: dict[str, float] = {}

    def on_train_batch_end(self, _trainer, _module, outputs, batch, _batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))
        self.sizes.append(len(batch[0]))

    def on_train_epoch_end(self, trainer, _module) -> None:
        self.epoch_metrics = {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if name.endswith("_epoch")
        }


def test_the_epoch_mean_of_the_loss_is_the_mean_of_the_step_losses(make_config):
    """Digits in batches of 700 (the last of 37): train/loss_epoch is the mean of the step
    losses weighted by batch size, i.e. the mean over the epoch's data points."""
    cfg = make_config("data=digits", "data.batch_size=700", "seed=0")
    datamodule = instantiate(cfg.data)
    module = build_module(cfg, datamodule.dims, {"num_train": 1437})
    recorder = StepLosses()
    trainer = L.Trainer(
        max_epochs=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
    )
    trainer.fit(module, datamodule=datamodule)
    assert recorder.sizes == [700, 700, 37]
    weighted = (
        sum(loss * size for loss, size in zip(recorder.losses, recorder.sizes, strict=True)) / 1437
    )
    assert recorder.epoch_metrics["train/loss_epoch"] == pytest.approx(weighted, rel=1e-5)
    assert weighted != pytest.approx(sum(recorder.losses) / 3, rel=1e-4)  # the weights matter
    assert recorder.epoch_metrics["train/elbo_epoch"] == pytest.approx(-weighted, rel=1e-5)
    names = {"train/loss_epoch", "train/recon_epoch", "train/kl_epoch", "train/elbo_epoch"}
    assert set(recorder.epoch_metrics) == names
    assert names <= module.logged_metric_names()


def test_a_reconstruction_loss_is_never_logged_as_a_bound(make_config):
    """likelihood=log_cosh (a loss, not a normalised p(x|z)): recon + KL is no ELBO, so the
    module logs loss, recon and kl only, checkpoints watch val/loss, and a bound-only objective
    refuses in one line."""
    module = build_module(make_config("data=digits", "likelihood=log_cosh"), (1, 8, 8))
    assert module.metric_names == ("loss", "recon", "kl")
    assert not module.has_bound
    assert module.redirected_monitor("val/elbo") == "val/loss"
    x = torch.rand(4, 1, 8, 8)
    values = module._per_point_values(module(x))
    assert set(values) == {"recon", "kl"}
    wae = make_config(
        "data=digits",
        "likelihood=log_cosh",
        "objective=wae_mmd",
        "objective.deterministic_encoder=false",
    )
    module = build_module(wae, (1, 8, 8))
    assert "elbo" in module(x).terms  # the objective computes it ...
    assert set(module._per_point_values(module(x))) == {"recon", "kl", "mmd"}  # ... unlogged
    with pytest.raises(VaelabError) as refused:
        build_module(make_config("data=digits", "likelihood=log_cosh", "objective=iwae"), (1, 8, 8))
    assert str(refused.value) == (
        "objective=iwae is an importance-weighted bound on log p(x), but VAE's likelihood is a "
        "reconstruction loss, not a normalised p(x|z): use objective=elbo (its loss is recon + "
        "β·KL) or a normalised likelihood="
    )
