"""Print a composed Hydra config as a rich tree, one branch per config group."""

from __future__ import annotations

from collections.abc import Sequence

import rich
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

FIRST_FIELDS = (
    "data",
    "model",
    "likelihood",
    "posterior",
    "objective",
    "beta",
    "optimizer",
    "lr_scheduler",
    "trainer",
    "callbacks",
    "logger",
    "paths",
)


def print_config_tree(cfg: DictConfig, order: Sequence[str] = FIRST_FIELDS) -> None:
    """Groups in ``order`` first, then the remaining top-level keys, each as YAML."""
    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    fields = [f for f in order if f in cfg] + [f for f in cfg if f not in order]
    for field in fields:
        branch = tree.add(field, style="bold")
        value = cfg[field]
        text = (
            OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        )
        branch.add(rich.syntax.Syntax(text, "yaml"))
    rich.print(tree)
