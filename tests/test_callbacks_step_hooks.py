"""vaelab.callbacks.step_hooks: vaelab removes the per-batch hooks its callbacks inherit as
no-ops (Lightning calls every hook of every callback at every step); what a callback overrides
must still run, every batch."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader

from vaelab.callbacks.rng_state import RNGStateCheckpoint
from vaelab.callbacks.step_hooks import PER_BATCH_HOOKS, skip_inherited_batch_hooks

NUM_STEPS = 3


class CountsBatchEnds(L.Callback):
    def __init__(self) -> None:
        self.batch_ends = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ARG002
        self.batch_ends += 1


class TinyRegression(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):  # noqa: ARG002
        return self.layer(batch).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_only_inherited_no_op_hooks_are_removed(tmp_path):
    checkpoint = ModelCheckpoint(dirpath=tmp_path)
    monitor = LearningRateMonitor()
    rng = RNGStateCheckpoint()
    skip_inherited_batch_hooks([checkpoint, monitor, rng])
    # ModelCheckpoint saves on train batch ends, the monitor logs on batch starts
    assert callable(checkpoint.on_train_batch_end)
    assert callable(monitor.on_train_batch_start)
    assert checkpoint.on_before_backward is None
    # the RNG callback only adds to checkpoints: no per-batch hook is left
    assert all(getattr(rng, hook) is None for hook in PER_BATCH_HOOKS)
    assert callable(rng.state_dict)


def test_lightning_skips_removed_hooks_and_runs_the_kept_ones(tmp_path):
    counter, rng = skip_inherited_batch_hooks([CountsBatchEnds(), RNGStateCheckpoint()])
    assert counter.on_before_backward is None
    trainer = L.Trainer(
        max_steps=NUM_STEPS,
        callbacks=[counter, rng],
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    batches = DataLoader(torch.randn(4 * NUM_STEPS, 3), batch_size=4)
    trainer.fit(TinyRegression(), train_dataloaders=batches)
    assert counter.batch_ends == NUM_STEPS
    assert trainer.global_step == NUM_STEPS
