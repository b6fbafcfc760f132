"""Safe checkpoints: never unpickle code, refuse checkpoints of another model, write them
atomically in their own directory, and resume past a torn one."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from vaelab.atomic_io import DiskFullError, atomic_write_bytes
from vaelab.errors import VaelabError, first_line
from vaelab.run_files import (
    CHECKPOINT_DIR,
    CHECKPOINT_SUFFIX,
    CONFIG_FILE,
    HPC_CHECKPOINTS,
    LAST_CHECKPOINT,
    TORN_SUFFIX,
)

__all__ = [
    "CHECKPOINT_DIR",
    "HPC_CHECKPOINTS",
    "LAST_CHECKPOINT",
    "AtomicCheckpointIO",
    "ResumePoint",
    "TrainingProgress",
    "best_checkpoint",
    "check_compatible",
    "checkpoint_to_continue",
    "last_checkpoint",
    "load_checkpoint",
    "resume_point",
]


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
    # the weights-only unpickler raises whatever arbitrary bytes provoke (UnpicklingError,
    # KeyError, IndexError, EOFError, ...): every one of them means "not a checkpoint"
    except Exception as err:
        raise VaelabError(
            f"refused to load {path}: it is not a valid vaelab/Lightning checkpoint "
            f"or holds objects other than tensors and plain data ({first_line(err)}); "
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
    run_config = Path(path).resolve().parent.parent / CONFIG_FILE
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


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a run continues from, and the unreadable ones skipped to reach it."""

    checkpoint: Path | None
    torn: tuple[Path, ...] = ()

    def report(self) -> str:
        """One line on what was skipped and what is used instead ("" if nothing was torn)."""
        if not self.torn:
            return ""
        names = ", ".join(str(p) for p in self.torn)
        used = (
            f"resuming from the last good checkpoint {self.checkpoint}"
            if self.checkpoint
            else "no good checkpoint is left"
        )
        return (
            f"vaelab: warning: {names} is torn or unreadable (a kill or a full disk while it "
            f"was written by an older vaelab); kept it as *{TORN_SUFFIX} and {used}"
        )


def _readable(path: Path) -> bool:
    try:
        load_checkpoint(path)
    except VaelabError:
        return False
    return True


def resume_point(run_dir: str | Path) -> ResumePoint:
    """What ``resume=auto`` continues from: the newest checkpoint of the run dir that loads.

    The newest (``last.ckpt`` or a SLURM ``hpc_ckpt_<n>.ckpt``) is tried first; a torn or
    unreadable one is renamed ``<name>.torn`` (so nothing reads it again, and nothing is
    deleted) and the next newest ``checkpoints/*.ckpt`` that loads is used. Raises if
    checkpoints exist but none loads."""
    run_dir = Path(run_dir)
    newest = last_checkpoint(run_dir)
    if newest is None:
        return ResumePoint(None)
    if _readable(newest):
        return ResumePoint(newest)
    torn = [newest]
    others = sorted(
        (p for p in (run_dir / CHECKPOINT_DIR).glob(f"*{CHECKPOINT_SUFFIX}") if p != newest),
        key=lambda p: p.stat().st_mtime_ns,
        reverse=True,
    )
    good = None
    for candidate in others:
        if _readable(candidate):
            good = candidate
            break
        torn.append(candidate)
    for path in torn:
        path.replace(path.with_name(path.name + TORN_SUFFIX))
    point = ResumePoint(good, tuple(torn))
    if good is None:
        raise VaelabError(
            f"{point.report().removeprefix('vaelab: warning: ')}, so this run cannot resume; "
            "start it again with resume=never (its other files are kept), or pass "
            "ckpt_path=<a good .ckpt>"
        )
    return point


def checkpoint_to_continue(path: str | Path, key: str = "ckpt_path") -> Path:
    """The checkpoint file ``key=<path>`` means: a ``.ckpt`` file as it is; a run dir (or its
    ``checkpoints/`` folder) gives its newest checkpoint that loads (``last.ckpt``, or a SLURM
    ``hpc_ckpt_<n>.ckpt``). Says precisely what is missing otherwise."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise VaelabError(
            f"{key}={path} does not exist; pass a run directory (logs/<task>/runs/<time>) or "
            f"one of its {CHECKPOINT_DIR}/*{CHECKPOINT_SUFFIX} files"
        )
    if path.is_file():
        return path
    run_dir = path.parent if path.name == CHECKPOINT_DIR else path
    checkpoint = resume_point(run_dir).checkpoint
    if checkpoint is not None:
        return checkpoint
    folder = run_dir / CHECKPOINT_DIR
    others = sorted(p.name for p in folder.glob(f"*{CHECKPOINT_SUFFIX}")) if folder.is_dir() else []
    if others:
        choices = ", ".join(str(folder / name) for name in others)
        missing = f"its {CHECKPOINT_DIR}/ folder has no {LAST_CHECKPOINT}; pass one of {choices}"
    elif folder.is_dir():
        missing = f"its {CHECKPOINT_DIR}/ folder holds no {CHECKPOINT_SUFFIX} file"
    elif (run_dir / CONFIG_FILE).is_file():
        missing = (
            f"it holds {CONFIG_FILE} but no {CHECKPOINT_DIR}/ folder (the run stopped before its "
            "first checkpoint); start it again with the same command"
        )
    else:
        missing = (
            f"it is not a vaelab-train run directory (no {CONFIG_FILE}, no {CHECKPOINT_DIR}/); "
            "pass a run directory or a .ckpt file"
        )
    raise VaelabError(f"{key}={path} is a folder with no checkpoint to continue from: {missing}")


def best_checkpoint(checkpoint: dict[str, Any], fallback: Path) -> Path:
    """The best checkpoint ModelCheckpoint recorded in ``checkpoint`` (looked up beside
    ``fallback`` if the run dir moved), else ``fallback``."""
    for name, state in checkpoint.get("callbacks", {}).items():
        if name.startswith("ModelCheckpoint") and state.get("best_model_path"):
            recorded = Path(state["best_model_path"])
            for candidate in (recorded, fallback.parent / recorded.name):
                if candidate.is_file():
                    return candidate
    return fallback


@dataclass(frozen=True)
class TrainingProgress:
    """How far the training a checkpoint holds went: epochs finished and optimizer steps."""

    epochs: int
    steps: int

    @classmethod
    def of(cls, checkpoint: dict[str, Any]) -> TrainingProgress:
        epoch_progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {})
        processed = epoch_progress.get("current", {}).get("processed")
        epochs = int(processed) if processed is not None else int(checkpoint.get("epoch", -1)) + 1
        return cls(epochs, int(checkpoint.get("global_step", 0)))

    def reached(self, max_epochs: int | None, max_steps: int | None) -> bool:
        """True if a trainer with these limits has nothing left to train."""
        if max_steps is not None and max_steps > 0 and self.steps >= max_steps:
            return True
        return max_epochs is not None and max_epochs > 0 and self.epochs >= max_epochs


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, but written through a temp file in the checkpoint's own
    directory, fsynced and renamed over the target (:mod:`vaelab.atomic_io`): a kill or a full
    disk never leaves a torn ``last.ckpt`` and never destroys the previous one. A full disk
    stops the run with a :class:`~vaelab.atomic_io.DiskFullError` naming the bytes needed
    and the checkpoint to resume from."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):  # a remote filesystem (fsspec URL): Lightning's own path
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(
                f"`{type(self).__name__}.save_checkpoint` takes no storage_options, got "
                f"{storage_options!r}"
            )
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        path = Path(path)
        try:
            atomic_write_bytes(path, buffer.getbuffer())
        except DiskFullError as err:
            last_good = last_checkpoint(path.parent.parent) or next(
                iter(sorted(path.parent.glob(f"*{CHECKPOINT_SUFFIX}"))), None
            )
            note = f"; resume later from {last_good} (resume=auto does it)" if last_good else ""
            raise DiskFullError(err.path, err.needed, err.free, note) from err.__cause__
