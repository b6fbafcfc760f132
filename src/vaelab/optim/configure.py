"""The optimiser (and optional epoch-wise LR scheduler) a LightningModule returns."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


def optimizer_config(
    params: Iterable[torch.nn.Parameter],
    optimizer: Callable[..., torch.optim.Optimizer],
    lr_scheduler: Callable[..., Any] | None,
) -> Any:
    """``configure_optimizers``' return value from the config's partials: the optimiser alone,
    or with its scheduler stepped once per epoch."""
    built = optimizer(params=params)
    if lr_scheduler is None:
        return built
    return {
        "optimizer": built,
        "lr_scheduler": {"scheduler": lr_scheduler(optimizer=built), "interval": "epoch"},
    }
