"""vaelab on a real SLURM (slurmctld + slurmd + munged on this machine, started once per session
by :mod:`vaelab.cluster.local_slurm`): sweeps as job arrays, pre-emption and requeue, a failing
task, multi-task DDP from ``sbatch``, and Optuna trials as array tasks.

Marked ``slurm``: ``make test`` leaves them out, ``.ci/run`` installs SLURM and runs them
(``pytest -m slurm``). Waiting is polling of SLURM's own job states with a deadline.
"""

from __future__ import annotations

import io
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

import lightning as L
import pytest
import torch
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
#: SLURM states of a task that has not ended yet
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING"})


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
    # src: this checkout's vaelab; the root: this module, for the DDP probe callback
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PROJECT_ROOT / "src"), str(PROJECT_ROOT), env.get("PYTHONPATH")])
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
    names = [p.name for p in (sweep_dir / ".submitit").iterdir()]
    tasks = [name for name in names if re.fullmatch(r"\d+_\d+", name)]
    arrays = {task.split("_")[0] for task in tasks}  # an array's own folder holds its script
    return sorted(tasks + [n for n in names if n.isdigit() and n not in arrays])


def _job_states(job: str) -> list[tuple[str, str, str]]:
    """(job id, name, state) of each task of an array job, finished ones included."""
    out = _slurm("squeue", "-h", "-t", "all", "-j", job, "-o", "%i|%j|%T")
    return sorted(tuple(line.split("|")) for line in out.splitlines())


def _scontrol_job(job: str) -> dict[str, str]:
    fields = _slurm("scontrol", "-o", "show", "job", job).split()
    return dict(field.split("=", 1) for field in fields if "=" in field)


def _metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / METRICS_FILE).read_text())


@pytest.mark.usefixtures("slurm_cluster")
def test_a_sweep_becomes_one_job_array_named_after_the_task(tmp_path):
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
    assert len(tasks) == 4
    assert len(array_job) == 1
    (job,) = array_job
    # the results arrive when each task's Python returns; SLURM calls the task COMPLETED a
    # moment later, once the process has exited: wait for every task to leave RUNNING
    states = _poll(
        lambda: (
            (found := _job_states(job))
            and all(state not in ACTIVE_STATES for _, _, state in found)
            and found
        ),
        f"every task of job {job} to end",
    )
    print("squeue -t all:", *states, sep="\n  ")
    assert [(task, name, state) for task, name, state in states] == [
        (task, "digits_array", "COMPLETED") for task in tasks
    ]
    # the job completion records (sacct -c): four tasks named after the task, all COMPLETED
    completions = _slurm("sacct", "-c", "-n", "-P", "-o", "JobID,JobName,State")
    print("sacct -c:", *completions.splitlines(), sep="\n  ")
    named = [line for line in completions.splitlines() if "|digits_array|" in line]
    assert len(named) == 4
    assert all(line.endswith("|COMPLETED") for line in named)
    for job_dir, latent_dim in zip(("0", "1", "2", "3"), (2, 3, 4, 5), strict=True):
        metrics = _metrics(sweep / job_dir)
        assert math.isfinite(metrics["test/elbo"])
        assert metrics["test/elbo"] < 0
        config = yaml.safe_load((sweep / job_dir / "config.yaml").read_text())
        assert config["model"]["latent_dim"] == latent_dim
    report = subprocess.run(
        [str(VAELAB_REPORT), str(sweep)], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert report.returncode == 0, report.stderr[-2000:]
    table = (sweep / "report.md").read_text()
    assert "4 jobs: 4 finished, 0 failed" in table
    rows = re.findall(r"^\| \d+ \| \[(\d)\]\(\d/\) \| (\d) \|", table, re.MULTILINE)
    assert sorted(rows) == [("0", "2"), ("1", "3"), ("2", "4"), ("3", "5")]


@pytest.mark.usefixtures("slurm_cluster")
def test_a_request_the_cluster_cannot_hold_fails_at_submission_naming_the_key(tmp_path):
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


REQUEUE_EPOCHS = 40
#: full-batch training: every step ends an epoch, so a checkpoint at any step is at an epoch
#: boundary (Lightning cannot resume exactly from the middle of an epoch of a plain loader)
REQUEUE_RUN = [
    *TINY[:-4],
    f"trainer.max_epochs={REQUEUE_EPOCHS}",
    f"data.batch_size={DIGITS_TRAIN_SIZE}",
    "trainer.limit_train_batches=null",
    "trainer.limit_val_batches=null",
    "trainer.limit_test_batches=null",
    "trainer.deterministic=true",
    "model.latent_dim=2",
    "seed=3",
]


@pytest.mark.usefixtures("slurm_cluster")
def test_a_preempted_task_checkpoints_is_requeued_and_ends_like_an_uninterrupted_run(tmp_path):
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
            # the first attempt holds after step 3 until SLURM's signal arrives
            "+callbacks.hold._target_=tests.signal_at_step.HoldAtStepUntilSignal",
            "+callbacks.hold.step=3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=PROJECT_ROOT,
        env=_env(),
    )
    try:
        (task,) = _poll(lambda: (sweep / ".submitit").is_dir() and _submitted(sweep), "submission")
        _poll((run_dir / "holding_for_signal").is_file, "the task to reach step 3")
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
    assert 0 < int(preempted.group(1)) < REQUEUE_EPOCHS  # it stopped in the middle of training
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


@pytest.mark.usefixtures("slurm_cluster")
def test_a_failing_task_leaves_the_others_and_a_relaunch_reruns_only_it(tmp_path):
    sweep = tmp_path / "failing"
    # job 1 finds a damaged checkpoint, as a node crash in the middle of a write would leave
    damaged = sweep / "1" / "checkpoints" / "last.ckpt"
    damaged.parent.mkdir(parents=True)
    whole = io.BytesIO()
    torch.save({"state_dict": {"weight": torch.zeros(1000)}}, whole)
    damaged.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    args = ["--multirun", *ON_CLUSTER, *TINY, f"hydra.sweep.dir={sweep}", "model.latent_dim=2,3"]
    first = _vaelab_train(*args)
    assert first.returncode == 1
    assert "1 job(s) of the sweep" in first.stderr
    # the damaged checkpoint is set aside (*.torn) and named; nothing else is lost
    assert "job 1: " in first.stderr
    assert "is torn or unreadable" in first.stderr
    assert "test/elbo" in _metrics(sweep / "0")  # the other task finished
    first_tasks = _submitted(sweep)
    assert len(first_tasks) == 2
    report = subprocess.run(
        [str(VAELAB_REPORT), str(sweep)], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert report.returncode == 0, report.stderr[-2000:]
    assert "2 jobs: 1 finished, 1 failed" in (sweep / "report.md").read_text()

    # the damaged file was kept beside it, not deleted; the same sweep is relaunched as it is
    assert not damaged.exists()
    assert (
        damaged.with_name(damaged.name + ".torn").read_bytes()
        == (whole.getvalue()[: len(whole.getvalue()) // 2])
    )
    finished_before = (sweep / "0" / METRICS_FILE).stat().st_mtime_ns
    second = _vaelab_train(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    second_tasks = sorted(set(_submitted(sweep)) - set(first_tasks))
    assert len(second_tasks) == 2
    logs = {
        t[-1]: next((sweep / ".submitit" / t).glob("*_log.out")).read_text() for t in second_tasks
    }
    assert "already finished" in logs["0"]
    assert "already finished" not in logs["1"]
    assert (sweep / "0" / METRICS_FILE).stat().st_mtime_ns == finished_before
    assert "test/elbo" in _metrics(sweep / "1")
    assert not (sweep / "1" / "error.txt").exists()


class RankProbe(L.Callback):
    """Test probe: each rank writes its rank, world size, cluster environment and sum |θ|."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer, pl_module) -> None:
        digest = sum(p.detach().double().abs().sum().item() for p in pl_module.parameters())
        probe = {
            "world_size": trainer.world_size,
            "environment": type(trainer.strategy.cluster_environment).__name__,
            "backend": trainer.strategy._process_group_backend,
            "digest": digest,
        }
        (self.dirpath / f"rank{trainer.global_rank}.json").write_text(json.dumps(probe))


PER_RANK_BATCH = 50
#: nats: the spread of this one-process run's val ELBO over seeds 7-11 (-29.21 … -28.64)
DDP_ELBO_TOLERANCE = 0.6
DDP_COMMON = [
    *TINY[:-4],
    "trainer.max_epochs=1",
    "data=digits",
    "data.shuffle=false",
    "model.latent_dim=2",
    "seed=7",
    "test=false",
]


@pytest.mark.usefixtures("slurm_cluster")
def test_sbatch_ddp_script_runs_two_ranks_that_match_one_process(make_config, tmp_path):
    run_dir = tmp_path / "ddp"
    run_dir.mkdir()
    done = subprocess.run(
        [
            "sbatch",
            "--wait",
            "--nodes=1",
            "--ntasks-per-node=2",
            "--gpus-per-node=0",
            "--cpus-per-task=1",
            "--mem=2G",
            "--time=10",
            f"--output={tmp_path}/ddp_%j.out",
            "scripts/sbatch_ddp_multinode.sh",
            "trainer.accelerator=cpu",
            "trainer.sync_batchnorm=false",
            *DDP_COMMON,
            f"data.batch_size={PER_RANK_BATCH}",
            f"+callbacks.rank_probe._target_={__name__}.RankProbe",
            f"+callbacks.rank_probe.dirpath={run_dir}",
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**_env(), "VAELAB_PYTHON": sys.executable, "VAELAB_RUN_DIR": str(run_dir)},
        timeout=JOB_DEADLINE_S,
    )
    log = "".join(p.read_text() for p in tmp_path.glob("ddp_*.out"))
    assert done.returncode == 0, (done.stderr + log)[-3000:]
    ranks = [json.loads((run_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    for rank in ranks:  # Lightning took both ranks from SLURM and ran DDP over gloo
        assert rank["world_size"] == 2
        assert rank["environment"] == "SLURMEnvironment"
        assert rank["backend"] == "gloo"
    assert ranks[0]["digest"] == ranks[1]["digest"]  # one model: gradients were all-reduced
    ddp = _metrics(run_dir)
    single = _one_process(make_config)
    # same initial weights, same global batches; only each rank's ε ~ N(0, I) differs
    assert ddp["val/elbo"] == pytest.approx(single["val/elbo"], abs=DDP_ELBO_TOLERANCE)
    assert ddp["val/elbo"] > -35  # and it trained: after one step the ELBO is about -43


def _one_process(make_config) -> dict[str, float]:
    from vaelab.train import train

    in_make_config = ("print_config", "callbacks.progress_bar", "trainer.enable_model_summary")
    overrides = [o for o in DDP_COMMON if not o.startswith(in_make_config)]
    cfg = make_config(
        "trainer=cpu", *overrides, f"data.batch_size={2 * PER_RANK_BATCH}", name="single"
    )
    return train(cfg)


@pytest.mark.usefixtures("slurm_cluster")
def test_optuna_trials_run_as_array_tasks_and_a_relaunch_continues_the_study(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search = [
        "hparams_search=optuna",
        *ON_CLUSTER,
        *TINY,
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=digits_study",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
    ]
    first = _vaelab_train(*search, "hydra.sweeper.n_trials=4", f"hydra.sweep.dir={tmp_path / 'a'}")
    assert first.returncode == 0, first.stderr[-3000:]
    arrays = {task.split("_")[0] for task in _submitted(tmp_path / "a")}
    assert len(_submitted(tmp_path / "a")) == 4
    assert len(arrays) == 2
    study = optuna.load_study(study_name="digits_study", storage=storage)
    before = [(t.number, t.params, t.value) for t in study.trials]
    assert len(before) == 4
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    job_values = sorted(_metrics(tmp_path / "a" / str(n))["val/elbo"] for n in range(4))
    assert sorted(v for _, _, v in before) == pytest.approx(job_values)

    again = _vaelab_train(*search, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path / 'b'}")
    assert again.returncode == 0, again.stderr[-3000:]
    study = optuna.load_study(study_name="digits_study", storage=storage)
    after = [(t.number, t.params, t.value) for t in study.trials]
    assert after[:4] == before
    assert [n for n, _, _ in after] == list(range(6))
    best = yaml.safe_load((tmp_path / "b" / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(v for _, _, v in after))
