"""Short runs still log train scalars: shrink ``log_every_n_steps`` to fit an epoch.

Lightning sends step metrics to the loggers every ``trainer.log_every_n_steps`` steps. With
fewer batches per epoch than that (Frey Face: 18 batches against the default 50) a short run
logs no ``train/*`` scalar at all. At the start of training this callback lowers the interval
to about ``points_per_epoch`` points per epoch when the epoch is shorter than the interval;
longer epochs keep the configured interval.
"""

from __future__ import annotations

import math

import lightning as L
from typing_extensions import override

from vaelab.schema import PositiveInt, checked_arguments


def adapted_interval(configured: int, batches_per_epoch: float, points_per_epoch: int) -> int:
    """``configured`` if an epoch holds it, else an interval giving ``points_per_epoch``."""
    if not math.isfinite(batches_per_epoch) or batches_per_epoch >= configured:
        return configured
    return max(1, int(batches_per_epoch) // points_per_epoch)


@checked_arguments("callbacks.log_interval")
class AdaptiveLogInterval(L.Callback):
    """Lowers ``trainer.log_every_n_steps`` for epochs shorter than it (see module doc)."""

    def __init__(self, points_per_epoch: PositiveInt = 4) -> None:
        self.points_per_epoch = points_per_epoch

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.log_every_n_steps = adapted_interval(
            trainer.log_every_n_steps, trainer.num_training_batches, self.points_per_epoch
        )

    def state_dict(self) -> dict:
        return {}
