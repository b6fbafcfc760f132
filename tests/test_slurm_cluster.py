"""vaelab on a real SLURM (slurmctld + slurmd + munged on this machine, started once per session
by :mod:`vaelab.cluster.local_slurm`): sweeps as job arrays, pre-emption and requeue, a failing
task, multi-task DDP from ``sbatch``, and Optuna trials as array tasks.

Marked ``slurm``: ``make test`` leaves them out, ``.ci/run`` installs SLURM and runs them
(``pytest -m slurm``). Waiting is polling of SLURM's own job states with a deadline.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from vaelab.cluster.local_slurm import DEBIAN_PACKAGES, REQUIRED_PROGRAMS, LocalSlurm
from vaelab.paths import PROJECT_ROOT
from vaelab.train import METRICS_FILE

pytestmark = pytest.mark.slurm

VAELAB_TRAIN = Path(sys.executable).parent / "vaelab-train"
VAELAB_REPORT = Path(sys.executable).parent / "vaelab-report"
#: submit through hydra/launcher=slurm as the README shows: CPU tasks sized for a small node
ON_CLUSTER = [
    "hydra/launcher=slurm",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=10",
    "trainer=cpu",
    "data=digits",
]
#: a small quiet run on digits
TINY = [
    "print_config=false",
    "logger=csv",
    "callbacks.progress_bar=null",
    "callbacks.image_logger=null",
    "callbacks.encoding_snapshot=null",
    "callbacks.hparams_logger=null",
    "trainer.enable_model_summary=false",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
]
#: the digits training split (1797 images less 180 val and 180 test)
DIGITS_TRAIN_SIZE = 1437
JOB_DEADLINE_S = 300


def _poll(condition: Callable[[], object], what: str, deadline_s: float = JOB_DEADLINE_S):
    """Poll ``condition`` (SLURM's or the run's state) until it returns something truthy."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"gave up after {deadline_s:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def slurm_cluster():
    """A one-node cluster for the whole session; SLURM_CONF points this process (and so every
    vaelab-train it starts, and their jobs) at it."""
    missing = [p for p in REQUIRED_PROGRAMS if shutil.which(p) is None]
    if missing:
        pytest.skip(
            f"SLURM is not installed ({', '.join(missing)} missing): "
            f"apt-get install {' '.join(DEBIAN_PACKAGES)} (.ci/run does)"
        )
    if os.geteuid() != 0:
        pytest.skip("starting slurmd needs root")
    # not under pytest's tmp dir: that is private to root, and munged runs as user munge
    root = Path(tempfile.mkdtemp(prefix="vaelab-slurm-test-"))
    root.chmod(0o755)
    cluster = LocalSlurm(root / "cluster")
    cluster.start()
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    yield cluster
    cluster.stop()
    shutil.rmtree(root)
    if previous is None:
        os.environ.pop("SLURM_CONF")
    else:
        os.environ["SLURM_CONF"] = previous


def _env() -> dict[str, str]:
    """What jobs inherit: this checkout's sources first, one thread per task."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_J", "SLURM_ARRAY"))}
    env.pop("HYDRA_FULL_ERROR", None)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PROJECT_ROOT / "src"), env.get("PYTHONPATH")])
    )
    env["OMP_NUM_THREADS"] = "1"
    return env


def _vaelab_train(*args: str, timeout: float = JOB_DEADLINE_S) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VAELAB_TRAIN), *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=_env(),
        timeout=timeout,
    )


def _slurm(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def _submitted(sweep_dir: Path) -> list[str]:
    """The SLURM id of each task submitit submitted for this sweep: ``<array job>_<task>``,
    or ``<job>`` for a sweep of one job."""
    folders = (sweep_dir / ".submitit").iterdir()
    return sorted(p.name for p in folders if re.fullmatch(r"\d+_\d+|\d+", p.name))


def _job_states(job: str) -> list[tuple[str, str, str]]:
    """(job id, name, state) of each task of an array job, finished ones included."""
    out = _slurm("squeue", "-h", "-t", "all", "-j", job, "-o", "%i|%j|%T")
    return sorted(tuple(line.split("|")) for line in out.splitlines())


def _scontrol_job(job: str) -> dict[str, str]:
    fields = _slurm("scontrol", "-o", "show", "job", job).split()
    return dict(field.split("=", 1) for field in fields if "=" in field)


def _metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / METRICS_FILE).read_text())


def test_a_sweep_becomes_one_job_array_named_after_the_task(slurm_cluster, tmp_path):
    sweep = tmp_path / "array"
    done = _vaelab_train(
        "--multirun",
        *ON_CLUSTER,
        *TINY,
        "task_name=digits_array",
        f"hydra.sweep.dir={sweep}",
        "model.latent_dim=2,3,4,5",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    tasks = _submitted(sweep)
    array_job = {task.split("_")[0] for task in tasks}
    assert len(tasks) == 4 and len(array_job) == 1  # one array of four tasks
    (job,) = array_job
    states = _job_states(job)
    print("squeue -t all:", *states, sep="\n  ")
    assert [(task, name, state) for task, name, state in states] == [
        (task, "digits_array", "COMPLETED") for task in tasks
    ]
    completions = _slurm("sacct", "-c", "-n", "-o", "JobName,State,NodeList")
    assert completions.count("digits_array") >= 4
    for job_dir, latent_dim in zip(("0", "1", "2", "3"), (2, 3, 4, 5), strict=True):
        metrics = _metrics(sweep / job_dir)
        assert math.isfinite(metrics["test/elbo"]) and metrics["test/elbo"] < 0
        config = yaml.safe_load((sweep / job_dir / "config.yaml").read_text())
        assert config["model"]["latent_dim"] == latent_dim
    report = subprocess.run(
        [str(VAELAB_REPORT), str(sweep)], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert report.returncode == 0, report.stderr[-2000:]
    table = (sweep / "report.md").read_text()
    for latent_dim in (2, 3, 4, 5):
        assert f"model.latent_dim={latent_dim}" in table


def test_a_request_the_cluster_cannot_hold_fails_at_submission_naming_the_key(
    slurm_cluster, tmp_path
):
    cpus = int(_slurm("sinfo", "-h", "-o", "%c").split()[0])
    refused = _vaelab_train(
        "--multirun",
        *ON_CLUSTER,
        *TINY,
        f"hydra.sweep.dir={tmp_path / 'refused'}",
        f"hydra.launcher.cpus_per_task={cpus + 1}",
        "model.latent_dim=2,3",
    )
    assert refused.returncode == 1
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("vaelab: error: hydra.launcher.cpus_per_task=")
    assert "Traceback" not in refused.stderr
    gpus = _vaelab_train(
        "--multirun",
        *ON_CLUSTER,
        *TINY,
        f"hydra.sweep.dir={tmp_path / 'gpus'}",
        "trainer.accelerator=gpu",
        "model.latent_dim=2,3",
    )
    assert gpus.returncode == 1
    last = gpus.stderr.strip().splitlines()[-1]
    assert last.startswith("vaelab: error: hydra.launcher.gpus_per_node=1")
    assert "trainer=cpu" in last
    assert not (tmp_path / "refused" / ".submitit").exists()  # nothing was submitted


#: full-batch training: every step ends an epoch, so a checkpoint at any step is at an epoch
#: boundary (Lightning cannot resume exactly from the middle of an epoch of a plain loader)
REQUEUE_RUN = [
    *TINY[:-4],
    "trainer.max_epochs=150",
    f"data.batch_size={DIGITS_TRAIN_SIZE}",
    "trainer.limit_train_batches=null",
    "trainer.limit_val_batches=null",
    "trainer.limit_test_batches=null",
    "trainer.deterministic=true",
    "model.latent_dim=2",
    "seed=3",
]


def test_a_preempted_task_checkpoints_is_requeued_and_ends_like_an_uninterrupted_run(
    slurm_cluster, tmp_path
):
    sweep = tmp_path / "requeue"
    run_dir = sweep / "0"
    sweep_proc = subprocess.Popen(
        [
            str(VAELAB_TRAIN),
            "--multirun",
            *ON_CLUSTER,
            *REQUEUE_RUN,
            "task_name=requeue",
            f"hydra.sweep.dir={sweep}",
            "optimizer.lr=1e-3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=PROJECT_ROOT,
        env=_env(),
    )
    try:
        (task,) = _poll(lambda: (sweep / ".submitit").is_dir() and _submitted(sweep), "submission")
        _poll((run_dir / "checkpoints" / "epoch_000.ckpt").is_file, "the task's first epoch")
        timeline = {"signal": time.time()}
        # what SLURM sends --signal seconds before the time limit, at a step of our choosing
        _slurm("scancel", "--signal=USR1", task)
        _poll(lambda: _scontrol_job(task).get("Restarts") == "1", "the requeue")
        timeline["requeued"] = time.time()
        _poll(lambda: _scontrol_job(task)["JobState"] == "RUNNING", "the restart")
        timeline["restarted"] = time.time()
        # the uninterrupted reference: the same run, here, while the requeued job trains
        reference_dir = tmp_path / "reference"
        reference = _vaelab_train(
            *[o for o in ON_CLUSTER if not o.startswith("hydra")],
            *REQUEUE_RUN,
            f"hydra.run.dir={reference_dir}",
            "optimizer.lr=1e-3",
        )
        assert reference.returncode == 0, reference.stderr[-3000:]
        output, _ = sweep_proc.communicate(timeout=JOB_DEADLINE_S)
    finally:
        if sweep_proc.poll() is None:
            sweep_proc.kill()
            sweep_proc.wait()
    assert sweep_proc.returncode == 0, output[-3000:]
    timeline["finished"] = (run_dir / METRICS_FILE).stat().st_mtime
    log = next((sweep / ".submitit" / task).glob("*_log.out")).read_text()
    last = run_dir / "checkpoints" / "last.ckpt"
    # the first attempt saved a checkpoint and requeued itself; the second resumed from it
    preempted = re.search(
        rf"received SIGUSR1 at step (\d+): saved {last}; requeued SLURM job {task}", log
    )
    assert preempted, log[-3000:]
    assert 0 < int(preempted.group(1)) < 150  # it really stopped in the middle of training
    assert f"Resuming from {last}" in log
    assert _scontrol_job(task)["JobState"] == "COMPLETED"
    resumed, uninterrupted = _metrics(run_dir), _metrics(reference_dir)
    print(
        "requeue timeline (s after the signal):",
        {k: round(v - timeline["signal"], 1) for k, v in timeline.items()},
        f"preempted at step {preempted.group(1)}; test/elbo requeued {resumed['test/elbo']!r}, "
        f"uninterrupted {uninterrupted['test/elbo']!r}",
    )
    for key in ("val/elbo", "test/elbo", "test/recon", "test/kl"):
        assert resumed[key] == pytest.approx(uninterrupted[key], rel=1e-6, abs=1e-6), key
