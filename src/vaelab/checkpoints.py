"""Safe checkpoint loading: never unpickle code, and refuse checkpoints of another model."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vaelab.errors import VaelabError

LAST_CHECKPOINT = "last.ckpt"
CHECKPOINT_DIR = "checkpoints"
#: what Lightning's SLURM handler writes into the run dir before a requeue
HPC_CHECKPOINTS = "hpc_ckpt_*.ckpt"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` on CPU: tensors and plain containers only, so a
    checkpoint from a stranger cannot execute code. Anything else is refused with one error."""
    path = Path(path)
    if not path.is_file():
        raise VaelabError(
            f"checkpoint {path} does not exist; pass the path of a .ckpt file "
            f"(a run keeps them in <run dir>/{CHECKPOINT_DIR}/)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
        AttributeError,
        TypeError,
    ) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise VaelabError(
            f"refused to load {path}: it is not a valid vaelab/Lightning checkpoint "
            f"or holds objects other than tensors and plain data ({first_line}); "
            "nothing in it was executed. Use a checkpoint written by vaelab-train"
        ) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise VaelabError(
            f"refused to load {path}: it holds no 'state_dict', so it is not a "
            "Lightning checkpoint; use a checkpoint written by vaelab-train"
        )
    return checkpoint


def check_compatible(checkpoint: dict[str, Any], module: nn.Module, path: str | Path) -> None:
    """Raise if the checkpoint's parameters do not fit ``module`` (another model or config)."""
    saved = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items()}
    current = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = sorted(current.keys() - saved.keys())
    unexpected = sorted(saved.keys() - current.keys())
    mismatched = [k for k in sorted(saved.keys() & current.keys()) if saved[k] != current[k]]
    if not (missing or unexpected or mismatched):
        return
    details = []
    if mismatched:
        key = mismatched[0]
        details.append(f"{key} has shape {list(saved[key])} there but {list(current[key])} here")
    if missing:
        details.append(
            f"it lacks {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
        )
    if unexpected:
        details.append(
            f"it has {unexpected[0]}, unknown here"
            + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
        )
    run_config = Path(path).resolve().parent.parent / "config.yaml"
    raise VaelabError(
        f"checkpoint {path} was written by a different model or config: {'; '.join(details)}. "
        f"Use the config it was trained with (its run dir holds it: {run_config}), e.g. the "
        "same model=, likelihood=, posterior= and model.latent_dim= overrides"
    )


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint a previous attempt of this run left: ``checkpoints/last.ckpt``
    or, after a SLURM requeue, Lightning's ``hpc_ckpt_<n>.ckpt`` in the run dir."""
    run_dir = Path(run_dir)
    candidates = [
        p
        for p in (run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT, *run_dir.glob(HPC_CHECKPOINTS))
        if p.is_file()
    ]
    return max(candidates, key=lambda p: p.stat().st_mtime_ns) if candidates else None
