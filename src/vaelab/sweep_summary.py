"""A Hydra callback that ends a multirun with a summary of failed jobs and a non-zero exit."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from vaelab.run_files import ERROR_FILE


def failed_jobs(sweep_dir: Path) -> dict[str, str]:
    """Job dir name → first line of its ``error.txt``, for every job that failed."""
    failures = {}
    for error in sorted(sweep_dir.glob(f"*/{ERROR_FILE}")):
        try:
            text = error.read_text(errors="replace").strip()
        except OSError as err:
            text = f"(its {ERROR_FILE} is unreadable: {err.strerror})"
        failures[error.parent.name] = text.splitlines()[0] if text else "unknown error"
    return failures


class SweepSummary(Callback):
    """After every job of a multirun ran, list the failed ones (their errors stay in
    ``<job dir>/error.txt``) and exit with status 1 if any failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        failures = failed_jobs(sweep_dir)
        if not failures:
            return
        print(
            f"vaelab: {len(failures)} job(s) of the sweep in {sweep_dir} failed:", file=sys.stderr
        )
        for job, message in failures.items():
            print(f"  job {job}: {message}", file=sys.stderr)
        print(
            "The other jobs finished; relaunch the same sweep (same hydra.sweep.dir) to "
            "rerun only the failed and unfinished ones.",
            file=sys.stderr,
        )
        raise SystemExit(1)
