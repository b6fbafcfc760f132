"""``vaelab.compose``: a config composed and checked as ``vaelab-train`` (or ``vaelab-eval``)
would, and the overrides that set Python values from keyword arguments."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.initialize import get_gh_backup, restore_gh_from_backup
from omegaconf import DictConfig, OmegaConf, open_dict

from vaelab.cli import run_reporting_errors, setup_error_message
from vaelab.config_checks import EvalSettings, TrainSettings, validate_config
from vaelab.errors import VaelabError
from vaelab.paths import CONFIG_DIR, export_project_root

QUOTE_OR_END = re.compile(r"(\\*)('|$)")
#: the configs of the entry points, and the settings their top-level keys are checked against
ENTRY_POINT_CONFIGS = {"train": TrainSettings, "eval": EvalSettings}


def compose(*overrides: str, config: Literal["train", "eval"] = "train") -> DictConfig:
    """The config ``vaelab-train <overrides>`` (``config="eval"``: ``vaelab-eval``) would run
    with, composed by Hydra from ``conf/`` and checked as the command line checks it, resolved
    (``paths.output_dir`` is the run dir a run started now would get).

    >>> cfg = vaelab.compose("data=digits", "model.latent_dim=4")
    >>> cfg.model.latent_dim
    4

    A bad override raises :class:`VaelabError` with the command line's one-line message.
    """
    if config not in ENTRY_POINT_CONFIGS:
        raise VaelabError(
            f"config={config!r} is not a vaelab config: use config='train' (vaelab-train) or "
            "config='eval' (vaelab-eval)"
        )
    refuse_flags(overrides)
    export_project_root()
    with _own_hydra():
        try:
            with initialize_config_dir(str(CONFIG_DIR), version_base="1.3", job_name=config):
                composed = hydra_compose(config, list(overrides), return_hydra_config=True)
        except Exception as err:  # what vaelab-train reports of Hydra's composition
            raise VaelabError(setup_error_message(err)) from err
    with open_dict(composed):
        run_dir = OmegaConf.select(composed, "hydra.run.dir")
        composed.hydra.runtime.output_dir = os.path.abspath(run_dir)
    with hydra_config(composed):
        task = OmegaConf.masked_copy(composed, [k for k in composed if k != "hydra"])

        def checked() -> DictConfig:
            validate_config(task, ENTRY_POINT_CONFIGS[config])
            OmegaConf.resolve(task)
            return task

        return run_reporting_errors(checked, raise_errors=True)


def refuse_flags(overrides: Sequence[str]) -> None:
    """Overrides only: Hydra's flags (``--multirun``, ``--cfg`` …) are the command line's."""
    flags = [o for o in overrides if not isinstance(o, str) or o.startswith("-")]
    if flags:
        raise VaelabError(
            f"{flags[0]!r} is not an override (key=value or group=option); a sweep from Python "
            "is a loop over vaelab.train(...), each into a job folder of one sweep dir "
            "(see vaelab.load_sweep)"
        )


@contextlib.contextmanager
def _own_hydra() -> Iterator[None]:
    """Compose with a Hydra of our own, and leave the caller's (if any) as it was."""
    backup = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        yield
    finally:
        restore_gh_from_backup(backup)


@contextlib.contextmanager
def hydra_config(composed: DictConfig | None) -> Iterator[None]:
    """Hydra's runtime config while a block runs (``None``: outside any Hydra run, as for a
    run loaded from its files), and the caller's again afterwards."""
    previous = HydraConfig.instance().cfg
    if composed is None:
        HydraConfig.instance().cfg = None
    else:
        HydraConfig.instance().set_config(composed)
    try:
        yield
    finally:
        HydraConfig.instance().cfg = previous


def override(key: str, value: object) -> list[str]:
    """Hydra overrides setting ``key`` to a Python value: ``override("eval.device", "cpu")``
    → ``["eval.device='cpu'"]``; a mapping sets each of its keys under ``key``."""
    if isinstance(value, Mapping):
        return [text for k, v in value.items() for text in override(f"{key}.{k}", v)]
    return [f"{key}={_value_text(value)}"]


def _value_text(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_value_text(v) for v in value) + "]"
    text = str(value) if isinstance(value, str | Path) else None
    if text is None:
        raise VaelabError(
            f"cannot pass {type(value).__name__} {value!r} as a config value; use a string, "
            "number, bool, None, list or dict"
        )
    # Hydra's quoted strings: a quote is escaped, and so are the backslashes just before a
    # quote or the closing quote; other backslashes are literal
    escaped = QUOTE_OR_END.sub(lambda m: m[1] * 2 + ("\\'" if m[2] else ""), text)
    return f"'{escaped}'"
