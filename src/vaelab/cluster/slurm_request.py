"""What a SLURM job asks for, checked against what the cluster has (``sinfo``), so that a
request no node can hold fails before submission with one error naming the hydra.launcher key.
Used by the ``hydra/launcher=slurm`` launcher (:mod:`hydra_plugins.vaelab_slurm_launcher`)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

from omegaconf import DictConfig

from vaelab.errors import VaelabError

MB_PER_GB = 1024


def gpus_per_node_for(trainer: DictConfig) -> int | None:
    """GPUs to request per node: none for a CPU trainer, else one per device (task)."""
    if str(trainer.get("accelerator", "auto")) == "cpu":
        return None
    devices = trainer.get("devices", 1)
    if not isinstance(devices, int):
        raise VaelabError(
            f"trainer.devices={devices} cannot size a SLURM job; set trainer.devices to the "
            "number of GPUs per node (or hydra.launcher.gpus_per_node and tasks_per_node)"
        )
    return devices


@dataclass
class Partition:
    """What ``sinfo`` says about one partition: its largest node and its node count."""

    name: str
    is_default: bool = False
    cpus: int = 0
    memory_mb: int = 0
    nodes: int = 0
    gpus: int = 0
    gres: list[str] = field(default_factory=list)


def _gpu_count(gres: str) -> int:
    """GPUs in a node's gres string such as ``gpu:a100:4(S:0-1)``; 0 for ``(null)``."""
    count = 0
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu":
            count += int(parts[-1]) if parts[-1].isdigit() else 1
    return count


#: how long a controller has to answer ``scontrol ping`` (seconds)
PING_TIMEOUT_S = 30


def _no_controller(command: str, answer: str) -> VaelabError:
    said = next((line.strip() for line in answer.splitlines() if line.strip()), "no answer")
    return VaelabError(
        f"no SLURM controller answers on this machine ({command}: {said}); hydra/launcher=slurm "
        "needs a running cluster: run on a cluster's login node, start a local one (python -m "
        "vaelab.cluster.local_slurm start), or use hydra/launcher=local"
    )


def check_controller() -> None:
    """Raise a VaelabError unless a SLURM controller answers ``scontrol ping`` (or, without
    scontrol, ``sinfo``): checked before anything is submitted, so a missing cluster is not
    blamed on the launcher's keys. Without either command, :data:`NO_SLURM`."""
    if shutil.which("scontrol") is not None:
        command = ["scontrol", "ping"]
    elif shutil.which("sinfo") is not None:
        command = ["sinfo", "-h", "-o", "%P"]
    else:
        raise NO_SLURM
    shown = " ".join(command)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PING_TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        raise _no_controller(shown, f"no answer in {PING_TIMEOUT_S} s") from err
    answer = f"{done.stdout}\n{done.stderr}"
    down = command[1] == "ping" and (" is DOWN" in answer or " is UP" not in answer)
    if done.returncode != 0 or down:
        raise _no_controller(shown, done.stderr if done.stderr.strip() else done.stdout)


def cluster_partitions() -> dict[str, Partition] | None:
    """The cluster's partitions from ``sinfo``; None if sinfo is missing or fails."""
    if shutil.which("sinfo") is None:
        return None
    done = subprocess.run(
        ["sinfo", "-h", "-o", "%P|%c|%m|%D|%G"], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        return None
    partitions: dict[str, Partition] = {}
    for line in done.stdout.splitlines():
        name, cpus, memory, nodes, gres = line.split("|")
        part = partitions.setdefault(
            name.rstrip("*"), Partition(name.rstrip("*"), name.endswith("*"))
        )
        part.cpus = max(part.cpus, int(cpus.rstrip("+")))
        part.memory_mb = max(part.memory_mb, int(memory.rstrip("+")))
        part.nodes += int(nodes)
        part.gpus = max(part.gpus, _gpu_count(gres))
    return partitions


def check_request(params: dict, partitions: dict[str, Partition]) -> None:
    """Raise a VaelabError naming the hydra.launcher key when no node of the target partition
    can hold one task's request."""
    names = ", ".join(sorted(partitions)) or "none"
    if params.get("partition"):
        part = partitions.get(params["partition"])
        if part is None:
            raise VaelabError(
                f"hydra.launcher.partition={params['partition']}: this cluster has no such "
                f"partition; use one of: {names}"
            )
    else:
        part = next((p for p in partitions.values() if p.is_default), None)
        if part is None:
            raise VaelabError(
                f"this cluster has no default partition: set "
                f"hydra.launcher.partition to one of: {names}"
            )
    where = f"partition {part.name}"
    gpus = params.get("gpus_per_node") or 0
    if gpus > part.gpus:
        fix = (
            "use trainer=cpu (it requests no GPUs) or set hydra.launcher.gpus_per_node=0"
            if part.gpus == 0
            else f"lower trainer.devices (hydra.launcher.gpus_per_node follows it) to ≤ {part.gpus}"
        )
        raise VaelabError(
            f"hydra.launcher.gpus_per_node={gpus} asks for {gpus} GPU(s) per node but {where} "
            f"has {part.gpus or 'no'} GPUs per node; {fix}"
        )
    nodes = params.get("nodes") or 1
    if nodes > part.nodes:
        raise VaelabError(
            f"hydra.launcher.nodes={nodes} (from trainer.num_nodes) but {where} has "
            f"{part.nodes} node(s); lower trainer.num_nodes"
        )
    tasks = params.get("tasks_per_node") or 1
    cpus = (params.get("cpus_per_task") or 1) * tasks
    if cpus > part.cpus:
        raise VaelabError(
            f"hydra.launcher.cpus_per_task={params.get('cpus_per_task')} × {tasks} task(s) per "
            f"node needs {cpus} CPUs per node but {where}'s nodes have {part.cpus}; lower "
            "hydra.launcher.cpus_per_task"
        )
    mem_gb = params.get("mem_gb")
    if mem_gb is not None and mem_gb * MB_PER_GB > part.memory_mb:
        raise VaelabError(
            f"hydra.launcher.mem_gb={mem_gb} but {where}'s nodes have "
            f"{part.memory_mb / MB_PER_GB:.1f} GB; lower hydra.launcher.mem_gb"
        )


def explain_refusal(sbatch_stderr: str) -> VaelabError | None:
    """The error for ``sbatch`` refusing a submission; None if ``sbatch`` said nothing."""
    refusal = next((line for line in sbatch_stderr.splitlines() if "sbatch: error" in line), None)
    if refusal is None:
        return None
    return VaelabError(
        f"SLURM refused the job array ({refusal.strip()}); change the hydra.launcher key it "
        "names (partition, account, qos, timeout_min, mem_gb, cpus_per_task, gpus_per_node)"
    )


NO_SLURM = VaelabError(
    "hydra/launcher=slurm needs SLURM's srun and sbatch on this machine; run on a cluster's "
    "login node, try it on a local cluster (python -m vaelab.cluster.local_slurm start), or "
    "use hydra/launcher=local"
)
