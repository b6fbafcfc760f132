"""Warnings, when training starts, for settings that silently disable what a user expects:
validation that the run never reaches (so no ``val/`` metrics, no pictures, and a checkpoint
that monitors a ``val/`` metric never updates) and pictures that go nowhere.

Lightning accepts these settings without a word: ``trainer.val_check_interval=1000`` with
``trainer.max_steps=200`` trains, tests ``last.ckpt`` and writes nothing else.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from typing_extensions import override

from vaelab.callbacks.image_logger import ImageLogger

#: the prefix of the metrics logged only by validation
VALIDATION_PREFIX = "val/"


@dataclass(frozen=True)
class RunLength:
    """How much of the training loop a run does and when it first validates, in training
    batches (Lightning's counts, as the trainer holds them once fitting starts)."""

    batches_per_epoch: float
    max_epochs: int | None
    max_steps: int
    accumulate_grad_batches: int
    val_check_batch: float
    check_val_every_n_epoch: int | None
    limit_val_batches: float

    @classmethod
    def of(cls, trainer: L.Trainer) -> RunLength:
        return cls(
            batches_per_epoch=float(trainer.num_training_batches),
            max_epochs=trainer.max_epochs,
            max_steps=trainer.max_steps,
            accumulate_grad_batches=trainer.accumulate_grad_batches,
            val_check_batch=float(trainer.val_check_batch),
            check_val_every_n_epoch=trainer.check_val_every_n_epoch,
            limit_val_batches=float(trainer.limit_val_batches),
        )

    @property
    def total_batches(self) -> float:
        """The training batches the run does (inf when neither limit is set)."""
        by_epochs = (
            self.max_epochs * self.batches_per_epoch
            if self.max_epochs is not None and self.max_epochs >= 0
            else math.inf
        )
        by_steps = (
            self.max_steps * self.accumulate_grad_batches if self.max_steps >= 0 else math.inf
        )
        return min(by_epochs, by_steps)

    @property
    def first_validation_batch(self) -> float:
        """The training batch after which validation first runs."""
        epochs_before = (self.check_val_every_n_epoch or 1) - 1
        before = epochs_before * self.batches_per_epoch if epochs_before else 0.0
        return before + self.val_check_batch

    def why_validation_never_runs(self) -> str | None:
        """The setting that keeps validation from ever running, or None."""
        if self.limit_val_batches == 0:
            return "trainer.limit_val_batches=0 turns validation off"
        total = self.total_batches
        if math.isinf(total) or self.first_validation_batch <= total:
            return None
        limit = (
            f"trainer.max_steps={self.max_steps}"
            if self.max_steps >= 0 and self.max_steps * self.accumulate_grad_batches == total
            else f"trainer.max_epochs={self.max_epochs}"
        )
        if self.check_val_every_n_epoch is None or self.val_check_batch > self.batches_per_epoch:
            return (
                f"trainer.val_check_interval first validates after {self.val_check_batch:.0f} "
                f"training batches, but the run does {total:.0f} ({limit}); lower "
                f"trainer.val_check_interval or raise {limit.split('=')[0]}"
            )
        return (
            f"trainer.check_val_every_n_epoch={self.check_val_every_n_epoch} first validates "
            f"after epoch {self.check_val_every_n_epoch}, but the run does "
            f"{total / self.batches_per_epoch:.3g} epoch(s) ({limit}); lower "
            f"trainer.check_val_every_n_epoch or raise {limit.split('=')[0]}"
        )


def silent_settings(trainer: L.Trainer, length: RunLength) -> list[str]:
    """One warning per setting of ``trainer`` (and its callbacks and loggers) that silently
    disables validation, the pictures or a monitoring checkpoint."""
    warnings = []
    never = length.why_validation_never_runs()
    image_loggers = [c for c in trainer.callbacks if isinstance(c, ImageLogger)]
    if never is not None:
        lost = ["no val/ metrics"]
        if image_loggers:
            lost.append("no pictures (callbacks.image_logger draws validation batches)")
        lost += [
            f"the checkpoint that monitors {c.monitor} never updates (only last.ckpt is written)"
            for c in trainer.callbacks
            if isinstance(c, ModelCheckpoint) and str(c.monitor).startswith(VALIDATION_PREFIX)
        ]
        warnings.append(f"validation never runs in this run: {never}. So: {'; '.join(lost)}")
    has_tensorboard = any(isinstance(lg, TensorBoardLogger) for lg in trainer.loggers)
    if any(c.png_dir is None for c in image_loggers) and not has_tensorboard:
        warnings.append(
            "callbacks.image_logger writes its pictures nowhere: no TensorBoard logger and "
            "callbacks.image_logger.png_dir=null; set png_dir or add logger=tensorboard"
        )
    return warnings


class SilentSettingsWarning(L.Callback):
    """At the start of training (rank 0), prints ``vaelab: warning: …`` for each setting
    :func:`silent_settings` finds."""

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.fast_dev_run:
            return
        for warning in silent_settings(trainer, RunLength.of(trainer)):
            print(f"vaelab: warning: {warning}", file=sys.stderr, flush=True)
