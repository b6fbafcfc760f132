"""Point the checkpoint callbacks at a metric the model logs when they watch one it cannot
(an autoencoder or PCA has no ELBO, the default ``val/elbo`` monitor)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

MODE_START = {"min": torch.inf, "max": -torch.inf}


def monitor_logged_metric(
    trainer: L.Trainer,
    logged: Collection[str],
    metric: str,
    mode: Literal["min", "max"],
    model_name: str,
) -> None:
    """Every :class:`~lightning.pytorch.callbacks.ModelCheckpoint` whose ``monitor`` is not in
    ``logged`` watches ``metric`` (``mode``) instead, and the run log says so."""
    for callback in trainer.checkpoint_callbacks:
        if callback.monitor is None or callback.monitor in logged:
            continue
        rank_zero_info(
            f"{model_name} logs no {callback.monitor!r}: checkpoints monitor "
            f"{metric!r} ({mode}) instead"
        )
        callback.monitor = metric
        callback.mode = mode
        callback.kth_value = torch.tensor(MODE_START[mode])
