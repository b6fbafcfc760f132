"""Print a composed Hydra config as a rich tree, one branch per config group.

By default only what differs from ``vaelab-train``'s defaults is shown (a run's full config is
~180 lines and always saved as ``<run dir>/config.yaml``); ``print_config=full`` prints all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

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
#: top-level keys that differ from run to run by design (where the run goes)
NOT_COMPARED = ("paths", "hydra")
FULL = "full"


def print_config_tree(cfg: DictConfig, order: Sequence[str] = FIRST_FIELDS) -> None:
    """Groups in ``order`` first, then the remaining top-level keys, each as YAML."""
    _print_tree("CONFIG", cfg, order)


def _print_tree(title: str, cfg: DictConfig | Mapping, order: Sequence[str]) -> None:
    tree = rich.tree.Tree(title, style="dim", guide_style="dim")
    fields = [f for f in order if f in cfg] + [f for f in cfg if f not in order]
    for field in fields:
        branch = tree.add(str(field), style="bold")
        value = cfg[field]
        if isinstance(value, DictConfig):
            text = OmegaConf.to_yaml(value, resolve=True)
        elif isinstance(value, Mapping):
            text = OmegaConf.to_yaml(OmegaConf.create(dict(value)))
        else:
            text = str(value)
        branch.add(rich.syntax.Syntax(text, "yaml"))
    rich.print(tree)


def _leaves(node: object, prefix: str = "") -> Iterator[tuple[str, object]]:
    if isinstance(node, Mapping) and node:
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node


def differing_keys(cfg: DictConfig, defaults: DictConfig) -> list[str]:
    """Dotted keys whose unresolved value in ``cfg`` differs from (or is absent in)
    ``defaults``; interpolations compare as written, so run-specific paths do not count."""
    mine = dict(_leaves(OmegaConf.to_container(cfg, resolve=False)))
    theirs = dict(_leaves(OmegaConf.to_container(defaults, resolve=False)))
    return [
        key
        for key, value in mine.items()
        if key.split(".")[0] not in NOT_COMPARED and (key not in theirs or theirs[key] != value)
    ]


def _resolved(cfg: DictConfig, key: str) -> object:
    try:
        value = OmegaConf.select(cfg, key)
    except Exception:  # an interpolation only a running Hydra app resolves
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def differences(cfg: DictConfig, defaults: DictConfig) -> dict:
    """The nested, resolved part of ``cfg`` that differs from ``defaults``."""
    nested: dict = {}
    for key in differing_keys(cfg, defaults):
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _resolved(cfg, key)
    return nested


def default_config(config_name: str = "train") -> DictConfig:
    """The config ``vaelab-<config_name>`` composes without overrides."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from vaelab.paths import CONFIG_DIR

    if GlobalHydra.instance().is_initialized():  # inside vaelab-train: reuse its search path
        return compose(config_name)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name)


def print_run_config(cfg: DictConfig, mode: object = True) -> None:
    """``print_config``: ``full`` prints everything, ``true`` what differs from the defaults
    (with the config groups chosen), ``false`` nothing."""
    if mode is False or mode is None:
        return
    if str(mode) == FULL:
        print_config_tree(cfg)
        return
    changed = differences(cfg, default_config())
    title = "CONFIG: what differs from the defaults (print_config=full shows all)"
    if not changed:
        rich.print(f"[dim]{title}: nothing[/dim]")
        return
    _print_tree(title, changed, FIRST_FIELDS)
