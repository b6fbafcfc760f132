"""How many CPU threads torch may use: the CPUs this process actually has, not the machine's.

torch's default follows the CPU affinity mask only: in a container with a CPU quota, or under
``SLURM_CPUS_PER_TASK`` without CPU binding, it starts a thread per core of the node, more
threads than the job has CPUs, and training runs many times slower (docs/benchmarks.md: 10–13×
on a busy 2-core machine). The CPUs available to this process are the smallest of

- its scheduler affinity (``os.sched_getaffinity``: ``taskset``, SLURM's CPU binding),
- the cgroup CPU quota (``/sys/fs/cgroup/cpu.max``, v1: ``cpu.cfs_quota_us / cpu.cfs_period_us``),
- ``SLURM_CPUS_PER_TASK``,

and they are shared among the training processes of the node and the DataLoader workers.
The top-level config key ``threads`` chooses: ``auto`` (the above; ``OMP_NUM_THREADS`` wins
when set) or a number.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from vaelab.errors import VaelabError

CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
#: why the threads were chosen, passed on with OMP_NUM_THREADS to processes started later
REASON_VARIABLE = "VAELAB_THREADS_REASON"
_announced: list[str] = []


@dataclass
class CpuLimits:
    """Each limit on the CPUs of this process; None where that limit is not set."""

    affinity: int | None
    cgroup_quota: float | None
    slurm_cpus_per_task: int | None

    @property
    def available(self) -> int:
        """The smallest of the limits (a fractional quota rounds up), at least 1."""
        limits = [self.affinity, self.slurm_cpus_per_task]
        if self.cgroup_quota is not None:
            limits.append(math.ceil(self.cgroup_quota))
        known = [limit for limit in limits if limit is not None]
        return max(1, min(known)) if known else max(1, os.cpu_count() or 1)

    def describe(self) -> str:
        parts = [
            f"affinity {self.affinity}" if self.affinity is not None else "affinity unknown",
            f"cgroup quota {self.cgroup_quota:g}"
            if self.cgroup_quota is not None
            else "no cgroup quota",
        ]
        if self.slurm_cpus_per_task is not None:
            parts.append(f"SLURM_CPUS_PER_TASK {self.slurm_cpus_per_task}")
        return ", ".join(parts)


@dataclass
class ThreadPlan:
    """The decision: torch intra-op threads for this process, and why."""

    threads: int
    cpus_available: int
    processes_per_node: int
    dataloader_workers: int
    reason: str

    def message(self) -> str:
        return (
            f"vaelab: torch uses {self.threads} thread(s) per process ({self.reason}); "
            f"{self.processes_per_node} training process(es) on this node, "
            f"{self.dataloader_workers} DataLoader worker(s) each. Override: threads=N"
        )


def _read_cgroup_quota(
    cpu_max: Path = CGROUP_V2_CPU_MAX,
    v1_quota: Path = CGROUP_V1_QUOTA,
    v1_period: Path = CGROUP_V1_PERIOD,
) -> float | None:
    """CPUs granted by the cgroup quota (quota / period), None without a quota."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(v1_quota.read_text())
        period_us = int(v1_period.read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def _positive_int(text: str | None) -> int | None:
    try:
        value = int(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None


def cpu_limits(environ: dict[str, str] | None = None) -> CpuLimits:
    """Read every limit on this process's CPUs."""
    environ = os.environ if environ is None else environ
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        affinity = None
    return CpuLimits(
        affinity=affinity,
        cgroup_quota=_read_cgroup_quota(),
        slurm_cpus_per_task=_positive_int(environ.get("SLURM_CPUS_PER_TASK")),
    )


def plan_threads(
    setting: int | str | None,
    processes_per_node: int = 1,
    dataloader_workers: int = 0,
    environ: dict[str, str] | None = None,
) -> ThreadPlan:
    """torch threads for ``setting``: ``auto`` (or None) derives them from the CPU limits,
    shared among ``processes_per_node`` processes, each leaving a CPU per DataLoader worker;
    a positive number is taken as is."""
    environ = os.environ if environ is None else environ
    setting = "auto" if setting is None else setting
    if str(setting) != "auto":
        threads = _positive_int(str(setting))
        if threads is None:
            raise VaelabError(f"threads must be 'auto' or a positive integer, got {setting!r}")
        return ThreadPlan(threads, threads, processes_per_node, dataloader_workers, "threads=N")
    limits = cpu_limits(environ)
    available = limits.available
    from_env = _positive_int(environ.get("OMP_NUM_THREADS"))
    if from_env is not None:
        reason = environ.get(REASON_VARIABLE) or "OMP_NUM_THREADS is set"
        return ThreadPlan(from_env, available, processes_per_node, dataloader_workers, reason)
    # srun starts each task with its own CPUs; only processes a launcher forks share them
    sharing = 1 if "SLURM_STEP_ID" in environ else max(1, processes_per_node)
    per_process = max(1, available // sharing)
    threads = max(1, per_process - max(0, dataloader_workers))
    reason = f"{available} CPU(s) available: {limits.describe()}"
    return ThreadPlan(threads, available, sharing, dataloader_workers, reason)


def configure_threads(
    setting: int | str | None,
    processes_per_node: int = 1,
    dataloader_workers: int = 0,
    quiet: bool = False,
) -> ThreadPlan:
    """Apply :func:`plan_threads` to torch and to ``OMP_NUM_THREADS`` (so processes started
    later, e.g. DDP ranks, and Lightning's own thread setting follow it); print it once per
    process tree (not again for each job of a sweep or each DDP rank)."""
    plan = plan_threads(setting, processes_per_node, dataloader_workers)
    torch.set_num_threads(plan.threads)
    os.environ["OMP_NUM_THREADS"] = str(plan.threads)
    os.environ[REASON_VARIABLE] = plan.reason
    first_rank = os.environ.get("LOCAL_RANK", "0") == "0"
    if not quiet and first_rank and plan.message() not in _announced:
        print(plan.message())
        _announced.append(plan.message())
    return plan


def training_processes_per_node(trainer_cfg) -> int:
    """Training processes a DDP launcher forks on this node (``trainer.devices`` when it is a
    number and the strategy is DDP), else 1."""
    if trainer_cfg is None:
        return 1
    devices = trainer_cfg.get("devices", 1)
    strategy = trainer_cfg.get("strategy", None)
    strategy_name = str(
        strategy.get("_target_", "") if hasattr(strategy, "get") else strategy or ""
    ).lower()
    if isinstance(devices, int) and devices > 1 and "ddp" in strategy_name:
        return devices
    return 1
