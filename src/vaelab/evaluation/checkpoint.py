"""Find a run's checkpoint and saved config, and rebuild its model without executing pickles.

A run directory written by ``vaelab-train`` holds ``config.yaml`` (the resolved config) and
``checkpoints/*.ckpt`` (the best by val/elbo and ``last.ckpt``). Checkpoints are read with
``torch.load(weights_only=True)``: a file from a stranger cannot run code on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException
from yaml import YAMLError

from vaelab.builders import build_module, data_info_before_setup
from vaelab.checkpoints import check_compatible, load_checkpoint
from vaelab.errors import VaelabError, first_line
from vaelab.run_files import CHECKPOINT_DIR, CONFIG_FILE, LAST_CHECKPOINT


@dataclass
class CheckpointLocation:
    """The checkpoint file, its run directory and the run's resolved config file."""

    checkpoint: Path
    run_dir: Path
    config: Path


@dataclass
class LoadedRun:
    """A trained model rebuilt from a run, with the datamodule it was trained on."""

    location: CheckpointLocation
    config: DictConfig
    module: L.LightningModule
    datamodule: Any
    global_step: int
    epoch: int


def _best_checkpoint(folder: Path) -> Path:
    """The best checkpoint ModelCheckpoint recorded, else the only non-last one, else last."""
    candidates = sorted(p for p in folder.glob("*.ckpt") if p.name != LAST_CHECKPOINT)
    last = folder / LAST_CHECKPOINT
    last_state = _loadable(last)
    if last_state is not None:
        for state in last_state.get("callbacks", {}).values():
            best = (
                Path(str(state.get("best_model_path") or "")) if isinstance(state, dict) else Path()
            )
            if best.name and (folder / best.name).is_file():
                return folder / best.name
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        return max(candidates, key=lambda p: p.stat().st_mtime)
    if last_state is not None or last.is_file():
        return last  # loading it again names what is wrong with it
    raise VaelabError(
        f"no checkpoint (*.ckpt) in {folder}; train with the model_checkpoint "
        "callback enabled, or pass ckpt_path=<file.ckpt>"
    )


def _loadable(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None if there is none or it does not load (torn)."""
    if not path.is_file():
        return None
    try:
        return load_checkpoint(path)
    except VaelabError:
        return None


def load_run_config(path: Path) -> DictConfig:
    """A run's saved config.yaml; a damaged one is one clear error."""
    try:
        config = OmegaConf.load(path)
    except (OSError, YAMLError, OmegaConfBaseException, UnicodeDecodeError) as err:
        first = first_line(err)
        raise VaelabError(
            f"the run's config {path} is unreadable ({first}); restore it, or copy "
            f"{path.parent}/.hydra/config.yaml over it (Hydra's copy of the same run's config, "
            "unresolved)"
        ) from err
    if not isinstance(config, DictConfig) or "model" not in config or "data" not in config:
        raise VaelabError(
            f"the run's config {path} holds no model and data sections, so it is not a "
            "vaelab-train run config; restore it from the run's .hydra/config.yaml"
        )
    return config


def locate_checkpoint(path: str | Path) -> CheckpointLocation:
    """Resolve ``path`` (a .ckpt file, a run dir or its checkpoints/ dir) to the checkpoint,
    its run dir and the saved config; a run dir gives its best checkpoint, else last.ckpt."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise VaelabError(
            f"ckpt_path {path} does not exist; pass a run's .ckpt file or its run "
            "directory (logs/<task>/runs/<time>)"
        )
    if path.is_dir():
        folder = path if path.name == CHECKPOINT_DIR else path / CHECKPOINT_DIR
        if not folder.is_dir():
            raise VaelabError(
                f"{path} has no {CHECKPOINT_DIR}/ folder; pass a run directory "
                "written by vaelab-train or a .ckpt file"
            )
        checkpoint = _best_checkpoint(folder)
    else:
        checkpoint = path
    for run_dir in (checkpoint.parent, checkpoint.parent.parent):
        if (run_dir / CONFIG_FILE).is_file():
            return CheckpointLocation(checkpoint, run_dir, run_dir / CONFIG_FILE)
    raise VaelabError(
        f"no {CONFIG_FILE} next to {checkpoint} (looked in {checkpoint.parent} "
        f"and {checkpoint.parent.parent}); vaelab-train saves the run's config "
        f"as <run dir>/{CONFIG_FILE} — keep the checkpoint inside its run dir"
    )


def own_overrides(config: DictConfig) -> DictConfig:
    """The saved run's config to build from: its groups were checked when it trained, and the
    command line of this process (a run whose likelihood loads a classifier run, vaelab-eval)
    is not its own, so a config without its overrides gets an empty list of them."""
    if OmegaConf.select(config, "hydra.overrides.task", default=None) is not None:
        return config
    copy = config.copy()
    with open_dict(copy):
        copy.hydra = {"overrides": {"task": []}}
    return copy


def load_run(
    location: CheckpointLocation,
    device: torch.device,
    data_overrides: dict[str, Any] | None = None,
    setup_data: bool = True,
) -> LoadedRun:
    """Rebuild data (set up for testing, unless ``setup_data`` is false: then no data file is
    read yet) and model from the saved config and load the checkpoint's weights."""
    config = load_run_config(location.config)
    with open_dict(config):
        for key, value in (data_overrides or {}).items():
            if value is not None and key in config.data:
                config.data[key] = value
    checkpoint = load_checkpoint(location.checkpoint)
    datamodule = instantiate(config.data)
    module = build_module(
        own_overrides(config), datamodule.dims, data_info_before_setup(datamodule)
    )
    check_compatible(checkpoint, module, location.checkpoint)
    module.load_state_dict(checkpoint["state_dict"])
    module.to(device).eval()
    if setup_data:
        datamodule.setup("test")
    return LoadedRun(
        location=location,
        config=config,
        module=module,
        datamodule=datamodule,
        global_step=int(checkpoint.get("global_step", 0)),
        epoch=int(checkpoint.get("epoch", 0)),
    )
