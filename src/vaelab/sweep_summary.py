"""A Hydra callback that ends a multirun with a summary (the folder, jobs done and failed, the
best value, the commands to look at it) and, if any job failed, a non-zero exit."""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from vaelab.console import tensorboard_command
from vaelab.errors import VaelabError
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


def report_command(sweep_dir: Path) -> str:
    """``vaelab-report <sweep dir>`` that runs as printed (the venv's script if there)."""
    beside_python = Path(sys.executable).parent / "vaelab-report"
    program = str(beside_python) if beside_python.is_file() else "vaelab-report"
    return f"{shlex.quote(program)} {shlex.quote(str(sweep_dir.resolve()))}"


def summary_lines(sweep_dir: Path) -> list[str]:
    """What the sweep produced: its folder, jobs done/failed, the best job and how to look."""
    from vaelab.evaluation.sweep import read_sweep

    lines = [f"Sweep finished: {sweep_dir.resolve()}"]
    try:
        sweep = read_sweep(sweep_dir)
    except VaelabError as err:
        return [*lines, f"  {err}"]
    done = len(sweep.jobs) - len(sweep.failed)
    lines.append(f"  {len(sweep.jobs)} jobs: {done} done, {len(sweep.failed)} failed")
    ranked = [job for job in sweep.ranked() if math.isfinite(sweep.score(job))]
    if ranked:
        best = ranked[0]
        setting = " ".join(f"{key}={best.params.get(key)}" for key in sweep.swept)
        direction = "highest" if sweep.maximize else "lowest"
        lines.append(
            f"  best {sweep.metric} ({direction}): {sweep.score(best):.4g} (job {best.name}"
            + (f": {setting})" if setting else ")")
        )
    lines.append(f"  report:      {report_command(sweep_dir)}")
    lines.append(f"  TensorBoard: {tensorboard_command(sweep_dir)}")
    return lines


class SweepSummary(Callback):
    """After every job of a multirun ran, print the sweep's summary (:func:`summary_lines`),
    list the failed jobs (their errors stay in ``<job dir>/error.txt``) and exit with status 1
    if any failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        print("\n".join(summary_lines(sweep_dir)), flush=True)
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
