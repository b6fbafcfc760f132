"""torch threads follow the CPUs the process has: affinity, cgroup quota, SLURM, workers."""

from __future__ import annotations

import os

import pytest
import torch

from vaelab import threads
from vaelab.errors import VaelabError


@pytest.fixture
def machine(monkeypatch):
    """A 64-core machine on which this process may use the CPUs given to ``set``."""

    class Machine:
        def set(self, affinity: int, quota: float | None = None) -> None:
            monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(affinity)))
            monkeypatch.setattr(threads, "_read_cgroup_quota", lambda: quota)

    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    return Machine()


def test_threads_follow_patched_affinity(machine):
    machine.set(affinity=3)
    plan = threads.plan_threads("auto", environ={})
    assert plan.threads == 3
    assert "affinity 3" in plan.reason


def test_slurm_cpus_per_task_limits_threads(machine):
    machine.set(affinity=16)
    assert threads.plan_threads("auto", environ={"SLURM_CPUS_PER_TASK": "4"}).threads == 4


def test_fractional_cgroup_quota_rounds_up(machine):
    machine.set(affinity=16, quota=2.5)
    assert threads.plan_threads("auto", environ={}).threads == 3


def test_ddp_processes_share_and_workers_take_the_rest(machine):
    machine.set(affinity=8)
    plan = threads.plan_threads("auto", processes_per_node=2, dataloader_workers=1, environ={})
    assert plan.threads == 3  # 8 CPUs / 2 processes = 4, one left to the worker
    # srun gave each task its own CPUs: no sharing
    srun = {"SLURM_STEP_ID": "0", "SLURM_CPUS_PER_TASK": "4"}
    assert threads.plan_threads("auto", processes_per_node=2, environ=srun).threads == 4


def test_explicit_setting_and_omp_num_threads_win(machine):
    machine.set(affinity=8)
    assert threads.plan_threads(2, environ={}).threads == 2
    assert threads.plan_threads("auto", environ={"OMP_NUM_THREADS": "5"}).threads == 5
    with pytest.raises(VaelabError, match="threads must be"):
        threads.plan_threads("many", environ={})


def test_cgroup_quota_files(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert threads._read_cgroup_quota(cpu_max, tmp_path / "a", tmp_path / "b") == 1.5
    cpu_max.write_text("max 100000\n")
    assert threads._read_cgroup_quota(cpu_max, tmp_path / "a", tmp_path / "b") is None


def test_configure_sets_torch_and_prints_once(machine, monkeypatch, capsys):
    machine.set(affinity=2)
    for variable in ("OMP_NUM_THREADS", threads.REASON_VARIABLE):
        monkeypatch.setenv(variable, "")  # restored after the test, whatever configure sets
        monkeypatch.delenv(variable)
    monkeypatch.setattr(threads, "_announced", [])
    before = torch.get_num_threads()
    try:
        threads.configure_threads("auto")
        assert torch.get_num_threads() == 2
        assert os.environ["OMP_NUM_THREADS"] == "2"
        threads.configure_threads("auto")  # the next job of a sweep in the same process
        assert capsys.readouterr().out.count("torch uses 2 thread") == 1
    finally:
        torch.set_num_threads(before)


def test_processes_per_node_from_trainer_config():
    assert threads.training_processes_per_node({"devices": 4, "strategy": "ddp"}) == 4
    ddp_cpu = {"devices": 2, "strategy": {"_target_": "lightning.pytorch.strategies.DDPStrategy"}}
    assert threads.training_processes_per_node(ddp_cpu) == 2
    assert threads.training_processes_per_node({"devices": 1}) == 1
    assert threads.training_processes_per_node({"devices": "auto", "strategy": "ddp"}) == 1
