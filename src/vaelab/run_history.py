"""Extending a finished run keeps what it had finished with, beside the new results.

Before a finished run (one whose ``metrics.json`` exists) trains on (``resume=force`` with a
larger ``trainer.max_epochs``/``max_steps``), :func:`keep_finished_run` sets aside, under the
number of epochs it had trained (``<n>``):

- its checkpoints, hard-linked (copied where links are impossible) into
  ``checkpoints/finished_<n>/``: Lightning may later delete or replace ``epoch_*.ckpt`` and
  ``last.ckpt``, the kept ones stay;
- ``metrics.json`` as ``metrics.<n>.json``, ``eval/`` as ``eval.<n>/`` (vaelab-eval's results
  describe the old model), ``config.yaml`` copied to ``config.<n>.yaml``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from vaelab.run_files import (
    CHECKPOINT_DIR,
    CHECKPOINT_SUFFIX,
    CONFIG_FILE,
    EVAL_DIR,
    METRICS_FILE,
)

#: ``checkpoints/finished_<epochs>/``
FINISHED_CHECKPOINTS = "finished_{epochs}"


def _numbered(name: str, epochs: int) -> str:
    """``metrics.json`` → ``metrics.2.json``; ``eval`` → ``eval.2``."""
    stem, dot, suffix = name.partition(".")
    return f"{stem}.{epochs}{dot}{suffix}" if dot else f"{name}.{epochs}"


def _free(path: Path) -> Path:
    """``path``, or ``path-1``, ``path-2``, … if it is taken (a run extended twice from the
    same epoch with resume=force)."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@dataclass(frozen=True)
class KeptRun:
    """Where a finished run's files were set aside."""

    checkpoints: Path
    metrics: Path | None
    eval_dir: Path | None
    config: Path | None

    def describe(self) -> str:
        kept = [str(self.checkpoints)]
        kept += [str(p) for p in (self.metrics, self.eval_dir, self.config) if p is not None]
        return ", ".join(kept)


def keep_finished_run(run_dir: str | Path, epochs: int) -> KeptRun:
    """Set the finished run's checkpoints, metrics, eval results and config aside (see the
    module's docstring); returns where they went."""
    run_dir = Path(run_dir)
    folder = run_dir / CHECKPOINT_DIR
    kept_checkpoints = _free(folder / FINISHED_CHECKPOINTS.format(epochs=epochs))
    kept_checkpoints.mkdir(parents=True)
    for checkpoint in sorted(folder.glob(f"*{CHECKPOINT_SUFFIX}")):
        _link_or_copy(checkpoint, kept_checkpoints / checkpoint.name)
    metrics = eval_dir = config = None
    if (run_dir / METRICS_FILE).is_file():
        metrics = _free(run_dir / _numbered(METRICS_FILE, epochs))
        (run_dir / METRICS_FILE).replace(metrics)
    if (run_dir / EVAL_DIR).is_dir():
        eval_dir = _free(run_dir / _numbered(EVAL_DIR, epochs))
        (run_dir / EVAL_DIR).replace(eval_dir)
    if (run_dir / CONFIG_FILE).is_file():
        config = _free(run_dir / _numbered(CONFIG_FILE, epochs))
        shutil.copy2(run_dir / CONFIG_FILE, config)
    return KeptRun(kept_checkpoints, metrics, eval_dir, config)
