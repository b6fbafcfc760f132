"""Build a LightningModule from a composed config; shared by training and evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from vaelab.errors import VaelabError

#: config groups that become constructor arguments of the model when present
MODEL_PARTS = ("likelihood", "posterior", "objective", "beta")


def build_module(cfg: DictConfig, input_shape: Sequence[int]) -> L.LightningModule:
    """``cfg.model`` instantiated with the data's shape, the optimiser (a partial), the
    optional LR scheduler (a partial) and the likelihood/posterior/objective/β groups."""
    data_shape = tuple(int(s) for s in input_shape)
    declared = cfg.model.get("input_shape")
    if declared is not None and tuple(int(s) for s in declared) != data_shape:
        raise VaelabError(
            f"model.input_shape={list(declared)} does not match the data's {data_shape} "
            "(C, H, W); networks take their input shape from the data: remove the override "
            "or choose the data= that has this shape"
        )
    parts = {name: instantiate(cfg[name]) for name in MODEL_PARTS if cfg.get(name)}
    scheduler = cfg.get("lr_scheduler")
    return instantiate(
        cfg.model,
        input_shape=data_shape,
        optimizer=instantiate(cfg.optimizer),
        lr_scheduler=instantiate(scheduler) if scheduler else None,
        **parts,
    )


def instantiate_each(group: DictConfig | None) -> list:
    """Every entry of a dict of configs that has a ``_target_`` (callbacks, loggers)."""
    if not group:
        return []
    return [
        instantiate(entry)
        for entry in group.values()
        if isinstance(entry, DictConfig) and "_target_" in entry
    ]
