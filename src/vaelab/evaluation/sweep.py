"""Read the jobs of a Hydra multirun directory: overrides, metrics, errors, the optimised metric.

A job is a sub-directory with ``.hydra/overrides.yaml``. ``vaelab-train`` writes
``metrics.json`` when it finishes and ``config.yaml`` (with ``optimized_metric``) when it
starts; ``vaelab.cli`` writes ``error.txt`` when a job stops on a user error; ``vaelab-eval``
writes ``eval/metrics.json``. Overrides are parsed by Hydra's own override grammar (so lists,
null and quoted strings come back as what they are), configs are read with OmegaConf, and a
job whose files cannot be read is kept aside with the reason instead of stopping the report.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from yaml import YAMLError

from vaelab.errors import VaelabError, first_line
from vaelab.evaluation.conditional import CONDITIONAL_SCALARS, DISENTANGLEMENT_SETTINGS_KEY
from vaelab.run_files import (
    CONFIG_FILE,
    ERROR_FILE,
    EVAL_METRICS,
    HYDRA_CONFIG,
    METRICS_FILE,
    MULTIRUN_FILE,
    OVERRIDES_FILE,
)
from vaelab.stage_progress import Mode, stage

TRAIN_METRICS = METRICS_FILE
DEFAULT_METRIC = "val/elbo"
#: eval/metrics.json scalars shown in the report, as ``eval/<name>``
EVAL_SCALARS = (
    "iw_nll",
    "bits_per_dim",
    "active_units",
    "elbo",
    "exact_nll",
    *CONDITIONAL_SCALARS,
)
#: a metric whose name matches this is maximised (a bound on log p(x), a count of units used)
MAXIMISED = re.compile(r"elbo|log_?lik|active|accuracy|bound", re.IGNORECASE)

Value = Any
#: what reading a job's files can raise when they are damaged
UNREADABLE = (OSError, UnicodeDecodeError, YAMLError, OmegaConfBaseException, ValueError)


def parse_overrides(overrides: list[str]) -> dict[str, Value]:
    """Hydra's parse of a job's overrides: ``{key: typed value}`` (``[1,2]`` a list, ``null``
    None, ``'1'`` the string); deletions (``~key``) are left out."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return {o.key_or_group: o.value() for o in parsed if not o.is_delete()}


def parse_override(override: str) -> tuple[str, Value] | None:
    """``"model.latent_dim=10"`` → ("model.latent_dim", 10); deletions (``~key``) → None."""
    params = parse_overrides([override])
    return next(iter(params.items()), None)


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
    #: why some of the job's files could not be read (then it is neither ranked nor failed)
    unreadable: list[str] = field(default_factory=list)
    #: the sample sizes vaelab-eval computed the disentanglement metrics with, if it did
    disentanglement_settings: dict[str, Value] | None = None
    #: FID, precision and recall of each sampler vaelab-eval drew the job's samples with
    #: (``sampler=prior|gmm|…``): eval/metrics.json's ``samplers``
    samplers: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.error is not None and not self.unreadable


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
        finished = [job for job in self.jobs if not job.failed and not job.unreadable]
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

    @property
    def unreadable(self) -> list[SweepJob]:
        return [job for job in self.jobs if job.unreadable]


def _why(name: str | Path, err: BaseException) -> str:
    """``"<file in the job dir>: <first line of the error>"``."""
    first = first_line(err)
    return f"{Path(name).as_posix()}: {first}"


def _read_json(path: Path) -> dict:
    """A metrics file as a dict ({} if absent); raises ValueError if it is damaged."""
    if not path.is_file():
        return {}
    value = json.loads(path.read_text())
    if not isinstance(value, dict):
        raise ValueError("not a mapping of metric names to values")
    return value


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


def _read_overrides(folder: Path) -> list[str]:
    overrides = OmegaConf.load(folder / OVERRIDES_FILE)
    if not isinstance(overrides, ListConfig):
        raise ValueError("not a list of overrides")
    return [str(o) for o in overrides]


def _optimized_metric(folder: Path) -> str | None:
    """The job's ``optimized_metric``: from the resolved config.yaml vaelab-train wrote, else
    from Hydra's copy of the job config (written even when the job failed at once)."""
    for name in (CONFIG_FILE, HYDRA_CONFIG):
        path = folder / name
        if path.is_file():
            config = OmegaConf.load(path)
            if isinstance(config, DictConfig):
                value = OmegaConf.select(
                    config, "optimized_metric", throw_on_resolution_failure=False
                )
                return str(value) if value else None
    return None


def read_job(folder: Path) -> SweepJob:
    """Overrides, metrics and status of one job directory; a damaged file does not raise but
    is named in ``job.unreadable``."""
    job = SweepJob(name=folder.name, path=folder, overrides=[], params={})
    try:
        job.overrides = _read_overrides(folder)
        job.params = parse_overrides(job.overrides)
    except (*UNREADABLE, HydraException) as err:
        job.unreadable.append(_why(OVERRIDES_FILE, err))
    try:
        job.optimized_metric = _optimized_metric(folder)
    except UNREADABLE as err:
        job.unreadable.append(_why(CONFIG_FILE, err))
    train_metrics = folder / TRAIN_METRICS
    for path, prefix, keys in (
        (train_metrics, "", None),
        (folder / EVAL_METRICS, "eval/", EVAL_SCALARS),
    ):
        try:
            raw = _read_json(path)
            job.metrics.update(_numeric_metrics(raw, prefix, keys))
            settings = raw.get(DISENTANGLEMENT_SETTINGS_KEY)
            if path == folder / EVAL_METRICS and isinstance(settings, dict):
                job.disentanglement_settings = settings
            if path == folder / EVAL_METRICS and isinstance(raw.get("samplers"), dict):
                job.samplers = {
                    str(name): _numeric_metrics(scores, "", None)
                    for name, scores in raw["samplers"].items()
                    if isinstance(scores, dict)
                }
        except UNREADABLE as err:
            job.unreadable.append(
                f"{path.relative_to(folder)}: {_why(path, err).split(': ', 1)[1]}"
            )
    try:
        if (folder / ERROR_FILE).is_file():
            job.error = error_summary((folder / ERROR_FILE).read_text(errors="replace"))
        elif not train_metrics.is_file():
            job.error = _last_log_line(folder) or (
                "did not finish: no metrics.json (crashed, killed or still running)"
            )
    except OSError as err:
        job.unreadable.append(_why(ERROR_FILE, err))
    return job


def _job_order(folder: Path) -> tuple[int, str]:
    return (int(folder.name), "") if folder.name.isdigit() else (10**9, folder.name)


def _sweeper_direction(path: Path) -> bool | None:
    """True/False if the sweep's multirun.yaml names a direction (Optuna), else None."""
    multirun = path / MULTIRUN_FILE
    if not multirun.is_file():
        return None
    try:
        config = OmegaConf.load(multirun)
        direction = OmegaConf.select(
            config, "hydra.sweeper.direction", throw_on_resolution_failure=False
        )
    except UNREADABLE:
        return None
    if isinstance(direction, ListConfig):
        direction = list(direction)
    if isinstance(direction, list) and direction:
        direction = direction[0]
    if isinstance(direction, str) and direction.lower() in ("maximize", "minimize"):
        return direction.lower() == "maximize"
    return None


def read_sweep(
    path: str | Path,
    metric: str | None = None,
    maximize: bool | None = None,
    progress: Mode | None = "silent",
) -> Sweep:
    """All jobs of the multirun at ``path``; the metric defaults to the jobs'
    ``optimized_metric`` (else val/elbo) and its direction to the sweeper's or the name's.
    ``progress``: the :mod:`vaelab.stage_progress` mode of the read (None: by the terminal)."""
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
    with stage("reading the sweep", len(folders), "jobs", mode=progress) as bar:
        jobs = list(bar.track(map(read_job, folders)))
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
