"""``vaelab.load_sweep``: the jobs of a sweep as runs, its failures and ``vaelab-report``'s
table of it."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from vaelab.api.run import Run, load
from vaelab.cli import run_reporting_errors
from vaelab.errors import VaelabError
from vaelab.evaluation import sweep as sweep_files
from vaelab.report import finished_table


class Sweep:
    """A sweep's folder read as ``vaelab-report`` reads it: a ``vaelab-train -m`` multirun, or
    the folder of a loop over :func:`vaelab.train` with one job folder per call.

    >>> sweep = vaelab.load_sweep("logs/train/multiruns/2026-12-07_20-00-00")
    >>> sweep.table()[0]                 # the best job: {"rank": 1, "job": "2", ...}
    >>> sweep.jobs["2"].sample(16)       # a finished job as a Run
    >>> sweep.failed                     # {"1": "invalid config: ..."}
    """

    def __init__(self, read: sweep_files.Sweep, device: str | torch.device = "cpu") -> None:
        self._read = read
        self._device = device

    @property
    def path(self) -> Path:
        return self._read.path

    @property
    def metric(self) -> str:
        """The metric the jobs are ranked by (their ``optimized_metric``, else val/elbo)."""
        return self._read.metric

    @property
    def maximize(self) -> bool:
        return self._read.maximize

    @property
    def swept(self) -> list[str]:
        """The config keys whose values differ between jobs."""
        return list(self._read.swept)

    @functools.cached_property
    def jobs(self) -> dict[str, Run]:
        """The finished jobs, best first, as runs (loaded on first use)."""
        return {job.name: load(job.path, self._device) for job in self._read.ranked()}

    @property
    def failed(self) -> dict[str, str]:
        """The failed jobs and their errors (the first paragraph of their ``error.txt``)."""
        return {job.name: str(job.error) for job in self._read.failed}

    @property
    def unreadable(self) -> dict[str, list[str]]:
        """Jobs whose files could not be read, and why (neither finished nor failed)."""
        return {job.name: list(job.unreadable) for job in self._read.unreadable}

    def table(self) -> list[dict[str, Any]]:
        """``vaelab-report``'s table of finished jobs, best first, one plain dict per job:
        ``rank``, ``job``, the swept keys, the ranking metric and the other metrics."""
        return finished_table(self._read)

    def to_pandas(self) -> Any:
        """:meth:`table` as a pandas DataFrame (``pip install 'vaelab[notebook]'``)."""
        try:
            import pandas
        except ImportError as err:
            raise VaelabError(
                "Sweep.to_pandas needs pandas: pip install 'vaelab[notebook]' (or pandas); "
                "Sweep.table() gives the same rows as plain dicts"
            ) from err
        return pandas.DataFrame(self.table())

    def __repr__(self) -> str:
        return (
            f"Sweep({str(self.path)!r}, {len(self._read.jobs)} jobs, "
            f"{len(self._read.failed)} failed, ranked by {self.metric})"
        )


def load_sweep(
    path: str | Path,
    metric: str | None = None,
    maximize: bool | None = None,
    device: str | torch.device = "cpu",
) -> Sweep:
    """The sweep at ``path``, its jobs ranked by ``metric`` (default: their
    ``optimized_metric``) as ``vaelab-report`` ranks them; its runs are loaded on ``device``
    when first used."""
    read = run_reporting_errors(
        lambda: sweep_files.read_sweep(path, metric, maximize), raise_errors=True
    )
    return Sweep(read, device)
