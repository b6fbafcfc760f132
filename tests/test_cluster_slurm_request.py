"""vaelab.cluster.slurm_request: a SLURM request no node can hold is refused naming the
hydra.launcher key; GPUs follow the trainer; an sbatch refusal becomes one error naming its
reason."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from vaelab.cluster.slurm_request import (
    Partition,
    _gpu_count,
    check_controller,
    check_request,
    explain_refusal,
    gpus_per_node_for,
)
from vaelab.errors import VaelabError

SMALL_NODE = {"debug": Partition("debug", is_default=True, cpus=2, memory_mb=4096, nodes=1)}
FITS = {"partition": None, "nodes": 1, "tasks_per_node": 1, "cpus_per_task": 2, "mem_gb": 4}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"gpus_per_node": 1}, "hydra.launcher.gpus_per_node=1"),
        ({"cpus_per_task": 3}, "hydra.launcher.cpus_per_task=3"),
        ({"tasks_per_node": 2}, "hydra.launcher.cpus_per_task=2 × 2 task(s)"),
        ({"mem_gb": 5}, "hydra.launcher.mem_gb=5"),
        ({"nodes": 2}, "hydra.launcher.nodes=2"),
        ({"partition": "gpu"}, "hydra.launcher.partition=gpu"),
    ],
)
def test_a_request_no_node_can_hold_names_the_launcher_key(change, named):
    check_request(FITS, SMALL_NODE)  # what fits passes
    with pytest.raises(VaelabError) as refused:
        check_request({**FITS, **change}, SMALL_NODE)
    assert str(refused.value).startswith(named)
    if "gpus_per_node" in change:
        assert "use trainer=cpu" in str(refused.value)


def test_gpus_follow_the_trainer_and_gres_strings_count_gpus():
    assert gpus_per_node_for(OmegaConf.create({"accelerator": "cpu", "devices": 2})) is None
    assert gpus_per_node_for(OmegaConf.create({"accelerator": "gpu", "devices": 4})) == 4
    assert [_gpu_count(g) for g in ("(null)", "gpu:4", "gpu:a100:8(S:0-1)", "gpu:2,mps:100")] == [
        0,
        4,
        8,
        2,
    ]


def test_an_sbatch_refusal_becomes_one_error_naming_its_reason():
    stderr = (
        "sbatch: error: Batch job submission failed: Invalid account or account/partition "
        "combination specified"
    )
    error = explain_refusal(f"Command failed\n{stderr}")
    assert isinstance(error, VaelabError)
    assert "Invalid account" in str(error)
    assert "hydra.launcher key" in str(error)
    assert explain_refusal("Traceback ... ValueError: a job's own failure") is None


def _fake_commands(folder, monkeypatch, **scripts: str) -> None:
    """Make PATH hold only shell scripts named like SLURM's commands (a real SLURM on this
    machine stays out of reach); ``sbatch`` is always there and leaves a marker if run."""
    folder.mkdir()
    scripts.setdefault("sbatch", f": > {folder}/sbatch_ran; echo 'Submitted batch job 1'")
    for name, body in scripts.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))


DNS_FAILURE = "echo 'scontrol: error: resolve_ctls_from_dns_srv: res_nsearch error' >&2; exit 1"


@pytest.mark.parametrize(
    ("scripts", "said"),
    [
        ({"scontrol": DNS_FAILURE}, "scontrol ping: scontrol: error: resolve_ctls_from_dns_srv"),
        ({"scontrol": "echo 'Slurmctld(primary) at head is DOWN'"}, "is DOWN"),
        ({"sinfo": "echo 'sinfo: error: Unable to contact slurm controller' >&2; exit 1"}, "sinfo"),
    ],
)
def test_a_cluster_without_a_controller_is_said_before_anything_is_submitted(
    tmp_path, monkeypatch, scripts, said
):
    from hydra_plugins.vaelab_slurm_launcher.slurm_launcher import VaelabSlurmLauncher

    _fake_commands(tmp_path / "bin", monkeypatch, **scripts)
    launcher = VaelabSlurmLauncher.__new__(VaelabSlurmLauncher)
    launcher.params = dict(FITS)
    with pytest.raises(VaelabError) as refused:
        launcher._checked_launch([["seed=1"]], 0)
    message = str(refused.value)
    assert message.startswith("no SLURM controller answers on this machine")
    assert said in message
    assert "hydra/launcher=local" in message
    assert "partition" not in message  # the launcher's keys are not blamed
    assert not (tmp_path / "bin" / "sbatch_ran").exists()


def test_a_controller_that_answers_passes_and_no_slurm_at_all_is_said_as_such(
    tmp_path, monkeypatch
):
    _fake_commands(tmp_path / "up", monkeypatch, scontrol="echo 'Slurmctld(primary) at h is UP'")
    check_controller()
    _fake_commands(tmp_path / "none", monkeypatch, sbatch="exit 1")
    (tmp_path / "none" / "sbatch").unlink()
    with pytest.raises(VaelabError, match="needs SLURM's srun and sbatch"):
        check_controller()
