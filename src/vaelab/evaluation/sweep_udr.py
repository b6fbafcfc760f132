"""UDR over a sweep's trained models, for ``vaelab-report``: each finished job's run is loaded
(its checkpoint, weights only), every model encodes one shared sample of observations — the
first points of the test split of the data set they all trained on — and each job gets its
UDR_L and UDR_S (:mod:`vaelab.evaluation.udr`) against the jobs of its setting trained from
other seeds (Duan et al. 2020, the method's pairing: models of one hyperparameter setting).
UDR reads no labels or factors, so it scores sweeps on any data set.

A sweep whose jobs trained on different data or have codes of different sizes cannot be
compared this way and is refused in one line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import OmegaConf

from vaelab.errors import VaelabError
from vaelab.evaluation.checkpoint import (
    CheckpointLocation,
    LoadedRun,
    load_run,
    load_run_config,
    locate_checkpoint,
)
from vaelab.evaluation.encodings import prepare_batch, split_loader
from vaelab.evaluation.sweep import Sweep, SweepJob
from vaelab.evaluation.udr import KL_THRESHOLD, SIMILARITIES, ModelCodes, encode_for_udr, udr_scores
from vaelab.stage_progress import Mode, stage

#: the scores' names in report.md, udr.json and the figures
UDR_NAMES = tuple(SIMILARITIES)
#: observations in the shared sample unless the report is told otherwise
DEFAULT_POINTS = 1000
#: the split the shared sample comes from
SPLIT = "test"
#: the swept parameter that names a model's seed (jobs differing only in it are compared)
SEED_PARAMETER = "seed"
#: data settings that change how batches are served, not which observations they hold
LOADER_KEYS = frozenset(
    {
        "batch_size",
        "eval_batch_size",
        "num_workers",
        "pin_memory",
        "persistent_workers",
        "on_device",
        "shuffle",
        "download",
    }
)


@dataclass
class SweepUDR:
    """Each job's scores by name (``{"udr_lasso": …, "udr_spearman": …}``; jobs alone in their
    setting have none), the groups of jobs compared, each job's informative latents, the size
    and split of the shared sample, and each similarity's UDR_ij with rows and columns in the
    order of ``jobs``."""

    jobs: list[str]
    scores: dict[str, dict[str, float]]
    groups: list[list[str]]
    informative: dict[str, int]
    num_points: int
    split: str = SPLIT
    kl_threshold: float = KL_THRESHOLD
    pairwise: dict[str, list[list[float | None]]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """A plain mapping for udr.json (NaN written as null)."""
        return {
            "jobs": self.jobs,
            "scores": self.scores,
            "groups": self.groups,
            "informative_latents": self.informative,
            "num_points": self.num_points,
            "split": self.split,
            "kl_threshold": self.kl_threshold,
            "pairwise": self.pairwise,
        }


def jobs_with_checkpoints(sweep: Sweep) -> list[tuple[SweepJob, CheckpointLocation]]:
    """The finished jobs whose run dir holds a checkpoint and config.yaml, in ranking order."""
    found = []
    for job in sweep.ranked():
        try:
            found.append((job, locate_checkpoint(job.path)))
        except VaelabError:
            continue
    return found


def seed_groups(jobs: Sequence[SweepJob], swept: Sequence[str]) -> list[list[int]]:
    """Indices of the jobs that share every swept parameter but the seed, in order."""
    settings = [p for p in swept if p != SEED_PARAMETER]
    groups: dict[str, list[int]] = {}
    for index, job in enumerate(jobs):
        key = repr([job.params.get(p) for p in settings])
        groups.setdefault(key, []).append(index)
    return list(groups.values())


def _data_settings(location: CheckpointLocation) -> dict[str, Any]:
    data = OmegaConf.to_container(load_run_config(location.config).data, resolve=True)
    return {k: v for k, v in data.items() if k not in LOADER_KEYS}


def check_same_data(jobs: Sequence[SweepJob], locations: Sequence[CheckpointLocation]) -> None:
    """Refuse jobs whose data settings (all but the loaders') differ, naming the first key."""
    first = _data_settings(locations[0])
    for job, location in zip(jobs[1:], locations[1:], strict=True):
        other = _data_settings(location)
        differing = sorted(k for k in first.keys() | other.keys() if first.get(k) != other.get(k))
        if differing:
            key = differing[0]
            raise VaelabError(
                f"UDR compares models trained on one data set, but job {job.name} has "
                f"data.{key}={other.get(key)!r} and job {jobs[0].name} {first.get(key)!r}; "
                "report each data set's sweep on its own (vaelab-report --udr off skips UDR)"
            )


def check_same_latent_size(jobs: Sequence[SweepJob], runs: Sequence[LoadedRun]) -> None:
    """Refuse models whose codes differ in size, naming two of them."""
    sizes = [run.module.model.latent_structure.code_dim for run in runs]
    for job, size in zip(jobs, sizes, strict=True):
        if size != sizes[0]:
            raise VaelabError(
                f"UDR compares models of one latent size, but job {job.name} has {size} latent "
                f"dimensions and job {jobs[0].name} {sizes[0]}; report each latent size's "
                "sweep on its own (vaelab-report --udr off skips UDR)"
            )


@torch.no_grad()
def _encode_sample(
    runs: Sequence[LoadedRun], num_points: int, device: torch.device, progress: Mode | None
) -> list[ModelCodes]:
    """Every model's codes of the first ``num_points`` test observations, served (and scaled)
    by the first job's datamodule."""
    datamodule = runs[0].datamodule
    datamodule.setup("test")
    batches = []
    collected = 0
    for batch in split_loader(datamodule, SPLIT):
        x, y = prepare_batch(datamodule, batch, device)
        batches.append((x[: num_points - collected], y[: num_points - collected]))
        collected += len(batches[-1][0])
        if collected >= num_points:
            break
    if collected == 0:
        raise VaelabError(f"the {SPLIT} split is empty; UDR has no observations to encode")
    encoded = []
    with stage("UDR: encoding the shared sample", len(runs), "models", mode=progress) as bar:
        for run in bar.track(runs):
            model = run.module.model
            reads_labels = model.conditions_on is not None  # others ignore y (or factors)
            parts = [encode_for_udr(model, x, y if reads_labels else None) for x, y in batches]
            encoded.append(
                ModelCodes(
                    codes=torch.cat([p.codes for p in parts]),
                    kl_per_dimension=sum(p.kl_per_dimension * len(p.codes) for p in parts)
                    / collected,
                )
            )
    return encoded


def sweep_udr(
    sweep: Sweep,
    num_points: int = DEFAULT_POINTS,
    device: torch.device | None = None,
    progress: Mode | None = None,
) -> SweepUDR:
    """UDR_L and UDR_S of every finished job of ``sweep`` that has a checkpoint, among the jobs
    of its setting (the swept parameters but the seed); refused in one line when fewer than
    two jobs can be loaded, when their data or latent sizes differ, or when no setting has
    two seeds."""
    if num_points < 2:
        raise VaelabError(f"UDR needs at least 2 shared observations, got {num_points}")
    device = device or torch.device("cpu")
    found = jobs_with_checkpoints(sweep)
    if len(found) < 2:
        raise VaelabError(
            f"UDR compares trained models, but {len(found)} finished job(s) of {sweep.path} "
            "have a checkpoint; it needs at least 2"
        )
    jobs = [job for job, _ in found]
    locations = [location for _, location in found]
    check_same_data(jobs, locations)
    data_dir = os.environ.get("VAELAB_DATA_DIR")
    runs = [
        load_run(location, device, {"data_dir": data_dir}, setup_data=False)
        for location in locations
    ]
    check_same_latent_size(jobs, runs)
    groups = [group for group in seed_groups(jobs, sweep.swept) if len(group) > 1]
    if not groups:
        raise VaelabError(
            "UDR compares each model with models of its setting trained from other seeds "
            "(Duan et al. 2020), and no setting of this sweep has two; sweep seed=0,1,… "
            "beside the other parameters"
        )
    codes = _encode_sample(runs, num_points, device, progress)
    scores: dict[str, dict[str, float]] = {}
    pairwise: dict[str, list[list[float | None]]] = {}
    for name, similarity in SIMILARITIES.items():
        result = udr_scores(codes, similarity, groups, progress=progress)
        for job, value in zip(jobs, result.model_scores, strict=True):
            if value == value:  # not NaN: the job has partners
                scores.setdefault(job.name, {})[name] = float(value)
        pairwise[name] = [[None if v != v else float(v) for v in row] for row in result.pairwise]
    return SweepUDR(
        jobs=[job.name for job in jobs],
        scores=scores,
        groups=[[jobs[i].name for i in group] for group in groups],
        informative={
            job.name: int(count) for job, count in zip(jobs, result.informative, strict=True)
        },
        num_points=len(codes[0].codes),
        pairwise=pairwise,
    )
