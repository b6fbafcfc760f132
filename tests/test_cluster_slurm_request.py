"""vaelab.cluster.slurm_request: a SLURM request no node can hold is refused naming the
hydra.launcher key; GPUs follow the trainer; an sbatch refusal becomes one error naming its
reason."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from vaelab.cluster.slurm_request import (
    Partition,
    _gpu_count,
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
