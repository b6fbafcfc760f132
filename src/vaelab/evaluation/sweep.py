"""Read the jobs of a Hydra multirun directory: overrides, metrics, errors, the optimised metric.

A job is a sub-directory with ``.hydra/overrides.yaml``. ``vaelab-train`` writes
``metrics.json`` when it finishes and ``config.yaml`` (with ``optimized_metric``) when it
starts; ``vaelab.cli`` writes ``error.txt`` when a job stops on a user error; ``vaelab-eval``
writes ``eval/metrics.json``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from vaelab.errors import VaelabError

OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"
TRAIN_METRICS = "metrics.json"
EVAL_METRICS = Path("eval") / "metrics.json"
ERROR_FILE = "error.txt"
CONFIG_FILE = "config.yaml"
DEFAULT_METRIC = "val/elbo"
#: eval/metrics.json scalars shown in the report, as ``eval/<name>``
EVAL_SCALARS = ("iw_nll", "bits_per_dim", "active_units", "elbo", "exact_nll")
#: a metric whose name matches this is maximised (a bound on log p(x), a count of units used)
MAXIMISED = re.compile(r"elbo|log_?lik|active|accuracy|bound", re.IGNORECASE)

Value = int | float | str | bool


def parse_override(override: str) -> tuple[str, Value] | None:
    """``"model.latent_dim=10"`` → ("model.latent_dim", 10); deletions (``~key``) → None."""
    if "=" not in override or override.startswith("~"):
        return None
    key, raw = override.split("=", 1)
    key = key.lstrip("+")
    text = raw.strip()
    if text.lower() in ("true", "false"):
        return key, text.lower() == "true"
    for cast in (int, float):
        try:
            return key, cast(text)
        except ValueError:
            pass
    return key, text.strip("'\"")


@dataclass
class SweepJob:
    """One job: its overrides as params, its metrics (train + ``eval/*``) and its status."""

    name: str
    path: Path
    overrides: list[str]
    params: dict[str, Value]
    metrics: dict[str, float] = field(default_factory=dict)
    optimized_metric: str | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass
class Sweep:
    """Every job of a multirun, the parameters that vary across them and the metric to rank."""

    path: Path
    jobs: list[SweepJob]
    swept: list[str]
    metric: str
    maximize: bool

    def score(self, job: SweepJob) -> float:
        return job.metrics.get(self.metric, math.nan)

    def ranked(self) -> list[SweepJob]:
        """Finished jobs, best first; jobs without a finite score last."""
        finished = [job for job in self.jobs if not job.failed]
        sign = -1.0 if self.maximize else 1.0
        return sorted(
            finished,
            key=lambda j: (
                not math.isfinite(self.score(j)),
                sign * self.score(j) if math.isfinite(self.score(j)) else 0.0,
            ),
        )

    @property
    def failed(self) -> list[SweepJob]:
        return [job for job in self.jobs if job.failed]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _last_log_line(folder: Path) -> str | None:
    """The last line mentioning an error in the job's Hydra log, if any."""
    for log in sorted(folder.glob("*.log")):
        lines = [
            line.strip()
            for line in log.read_text(errors="replace").splitlines()
            if "error" in line.lower()
        ]
        if lines:
            return lines[-1]
    return None


def error_summary(text: str, limit: int = 400) -> str:
    """The message of an error.txt: its first paragraph (the traceback follows a blank line)."""
    summary = " ".join(text.strip().split("\n\n", 1)[0].split())
    if not summary:
        return "failed (empty error.txt)"
    return summary if len(summary) <= limit else summary[: limit - 1] + "…"


def _numeric_metrics(
    raw: dict, prefix: str = "", keys: tuple[str, ...] | None = None
) -> dict[str, float]:
    return {
        f"{prefix}{key}": float(value)
        for key, value in raw.items()
        if (keys is None or key in keys)
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    }


def read_job(folder: Path) -> SweepJob:
    """Overrides, metrics and status of one job directory."""
    overrides = [str(o) for o in (yaml.safe_load((folder / OVERRIDES_FILE).read_text()) or [])]
    params = dict(p for p in map(parse_override, overrides) if p is not None)
    job = SweepJob(name=folder.name, path=folder, overrides=overrides, params=params)
    config = folder / CONFIG_FILE
    if config.is_file():
        job.optimized_metric = (yaml.safe_load(config.read_text()) or {}).get("optimized_metric")
    train_metrics = folder / TRAIN_METRICS
    job.metrics.update(_numeric_metrics(_read_json(train_metrics)))
    job.metrics.update(_numeric_metrics(_read_json(folder / EVAL_METRICS), "eval/", EVAL_SCALARS))
    if (folder / ERROR_FILE).is_file():
        job.error = error_summary((folder / ERROR_FILE).read_text())
    elif not train_metrics.is_file():
        job.error = _last_log_line(folder) or (
            "did not finish: no metrics.json (crashed, killed or still running)"
        )
    return job


def _job_order(folder: Path) -> tuple[int, str]:
    return (int(folder.name), "") if folder.name.isdigit() else (10**9, folder.name)


def _sweeper_direction(path: Path) -> bool | None:
    """True/False if the sweep's multirun.yaml names a direction (Optuna), else None."""
    multirun = path / "multirun.yaml"
    if not multirun.is_file():
        return None
    try:
        config = yaml.safe_load(multirun.read_text()) or {}
    except yaml.YAMLError:
        return None
    direction = ((config.get("hydra") or {}).get("sweeper") or {}).get("direction")
    if isinstance(direction, list) and direction:
        direction = direction[0]
    if isinstance(direction, str) and direction.lower() in ("maximize", "minimize"):
        return direction.lower() == "maximize"
    return None


def read_sweep(path: str | Path, metric: str | None = None, maximize: bool | None = None) -> Sweep:
    """All jobs of the multirun at ``path``; the metric defaults to the jobs'
    ``optimized_metric`` (else val/elbo) and its direction to the sweeper's or the name's."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise VaelabError(
            f"{path} is not a directory; pass a multirun directory such as "
            "logs/train/multiruns/<time>"
        )
    folders = sorted((f for f in path.iterdir() if (f / OVERRIDES_FILE).is_file()), key=_job_order)
    if not folders:
        raise VaelabError(
            f"no jobs in {path}: a multirun job is a sub-directory with "
            f"{OVERRIDES_FILE}; run `vaelab-train --multirun ...` first"
        )
    jobs = [read_job(folder) for folder in folders]
    metric = metric or next(
        (j.optimized_metric for j in jobs if j.optimized_metric), DEFAULT_METRIC
    )
    if maximize is None:
        maximize = _sweeper_direction(path)
    if maximize is None:
        maximize = bool(MAXIMISED.search(metric))
    keys = list(dict.fromkeys(key for job in jobs for key in job.params))
    swept = [key for key in keys if len({repr(job.params.get(key)) for job in jobs}) > 1] or keys
    return Sweep(path=path, jobs=jobs, swept=swept, metric=metric, maximize=maximize)
