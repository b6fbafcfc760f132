"""Runs survive interruption: exact resume, SIGUSR1 pre-emption, atomic checkpoints, and
sweeps that skip finished jobs, resume interrupted ones and isolate failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import DETERMINISTIC, compose_config
from vaelab.evaluation.learning_curves import tensorboard_dir
from vaelab.paths import PROJECT_ROOT
from vaelab.train import METRICS_FILE, train

TINY = ["trainer.limit_train_batches=15", "trainer.limit_val_batches=3", "trainer.test=false"]


def _beta_by_step(run_dir: Path) -> dict[int, float]:
    events = EventAccumulator(str(tensorboard_dir(run_dir)))
    events.Reload()
    return {e.step: e.value for e in events.Scalars("beta")}


def test_resume_after_two_epochs_reproduces_four_straight_epochs(mnist_data_dir, tmp_path):
    data = f"paths.data_dir={mnist_data_dir}"
    straight = train(
        compose_config([*DETERMINISTIC, data, "trainer.max_epochs=4"], tmp_path / "straight")
    )
    train(compose_config([*DETERMINISTIC, data, "trainer.max_epochs=2"], tmp_path / "first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert last.is_file()
    # a new Hydra run dir; the checkpoint brings the run back to its own folder
    resumed = train(
        compose_config(
            [*DETERMINISTIC, data, "trainer.max_epochs=4", f"ckpt_path={last}"], tmp_path / "second"
        )
    )
    assert resumed["val/elbo"] == pytest.approx(straight["val/elbo"], abs=1e-6, rel=0)
    assert straight["val/elbo"] > -400  # it did learn something
    assert not list((tmp_path / "second").glob("events.out.tfevents.*"))
    betas_straight = _beta_by_step(tmp_path / "straight")
    betas_resumed = _beta_by_step(tmp_path / "first")  # the same TensorBoard folder, continued
    assert len(betas_straight) == 12  # 60 steps, one point every 5
    assert betas_resumed == pytest.approx(betas_straight)


def test_interrupted_checkpoint_write_leaves_the_previous_one_intact(tmp_path, monkeypatch):
    """vaelab's checkpoint IO writes a temp file beside the target and renames it over."""
    from tests.test_reliability import failing_writes
    from vaelab.checkpoints import AtomicCheckpointIO

    path = tmp_path / "last.ckpt"
    checkpoint_io = AtomicCheckpointIO()
    checkpoint_io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 1}, path)
    # what a kill during the write looks like to Python
    failing_writes(monkeypatch, 2000, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        checkpoint_io.save_checkpoint(
            {"state_dict": {"w": torch.zeros(1000)}, "global_step": 2}, path
        )
    monkeypatch.undo()
    reloaded = torch.load(path, weights_only=True)
    assert reloaded["global_step"] == 1
    assert torch.equal(reloaded["state_dict"]["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temp file left


def _cli_env() -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


CLI_FAST = ["print_config=false", "callbacks.progress_bar=null", "data.download=false"]
SIGNAL_CALLBACK = "+callbacks.signal_at_step._target_=tests.signal_at_step.SignalAtStep"


@pytest.mark.slow
def test_sigusr1_saves_a_checkpoint_and_exits_cleanly_then_resumes(mnist_data_dir, tmp_path):
    run_dir = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "vaelab.train",
        *CLI_FAST,
        f"paths.data_dir={mnist_data_dir}",
        f"hydra.run.dir={run_dir}",
        "trainer.limit_train_batches=30",
        "trainer.limit_val_batches=2",
    ]
    # SIGUSR1 after step 40 (epoch 1, batch 10): the pre-emption handler saves at step 41
    first = subprocess.run(
        [*args, "trainer.max_epochs=1000", SIGNAL_CALLBACK, "+callbacks.signal_at_step.step=40"],
        capture_output=True,
        text=True,
        env=_cli_env(),
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert "received SIGUSR1" in first.stdout
    last = run_dir / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    assert state["global_step"] == 41
    assert state["epoch"] == 1
    assert not (run_dir / METRICS_FILE).exists()  # unfinished runs are not reported as done
    # the requeued job (same run dir, resume=auto by default) continues from last.ckpt
    again = subprocess.run(
        [*args, "trainer.max_epochs=3", "trainer.limit_test_batches=2"],
        capture_output=True,
        text=True,
        env=_cli_env(),
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Resuming from {last}" in again.stdout
    assert "test/elbo" in json.loads((run_dir / METRICS_FILE).read_text())
    # it continued from step 41 (a run started over would end at 3 × 30 = 90 steps)
    assert 41 < torch.load(last, weights_only=True)["global_step"] < 90


@pytest.mark.slow
def test_relaunched_sweep_skips_finished_resumes_interrupted_and_isolates_failure(
    mnist_data_dir, tmp_path
):
    sweep = tmp_path / "sweep"
    args = [
        sys.executable,
        "-m",
        "vaelab.train",
        "--multirun",
        *CLI_FAST,
        f"paths.data_dir={mnist_data_dir}",
        f"hydra.sweep.dir={sweep}",
        "optimizer.lr=1e-3,-1.0,2e-3",
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=40",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2",
    ]
    # the whole sweep dies (SIGKILL to its process group) at step 45 of job 2, which has
    # saved last.ckpt at the end of epoch 0 (step 40)
    killer = [
        SIGNAL_CALLBACK,
        "+callbacks.signal_at_step.step=45",
        "+callbacks.signal_at_step.signal_name=SIGKILL",
        "+callbacks.signal_at_step.to=group",
        "+callbacks.signal_at_step.only_in='2'",
    ]
    killed = subprocess.run(
        [*args, *killer],
        capture_output=True,
        text=True,
        env=_cli_env(),
        cwd=PROJECT_ROOT,
        start_new_session=True,
        timeout=400,
    )
    assert killed.returncode == -9, killed.stderr[-3000:]
    interrupted_ckpt = sweep / "2" / "checkpoints" / "last.ckpt"
    assert torch.load(interrupted_ckpt, weights_only=True)["global_step"] == 40
    assert (sweep / "0" / METRICS_FILE).is_file()
    assert (sweep / "1" / "error.txt").is_file()
    assert interrupted_ckpt.is_file()
    assert not (sweep / "2" / METRICS_FILE).exists()
    finished_before = (sweep / "0" / METRICS_FILE).stat().st_mtime_ns

    again = subprocess.run(
        args, capture_output=True, text=True, env=_cli_env(), cwd=PROJECT_ROOT, timeout=400
    )
    assert again.returncode == 1, again.stderr[-3000:]
    assert (sweep / "0" / METRICS_FILE).stat().st_mtime_ns == finished_before  # skipped
    assert "already finished" in again.stdout
    assert f"Resuming from {interrupted_ckpt}" in again.stdout
    assert "test/elbo" in json.loads((sweep / "2" / METRICS_FILE).read_text())
    error = (sweep / "1" / "error.txt").read_text()
    assert "optimizer.lr=-1.0 must be a number > 0" in error
    assert "1 job(s) of the sweep" in again.stderr
    assert "job 1: invalid config" in again.stderr


def test_resume_auto_picks_the_newest_of_last_and_slurm_hpc_checkpoints(tmp_path):
    from vaelab.checkpoints import last_checkpoint

    assert last_checkpoint(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.write_bytes(b"epoch end")
    assert last_checkpoint(tmp_path) == last
    hpc = tmp_path / "hpc_ckpt_1.ckpt"  # written later by Lightning's SIGUSR1 handler
    hpc.write_bytes(b"requeue")
    os.utime(hpc, ns=(last.stat().st_mtime_ns + 10**9,) * 2)
    assert last_checkpoint(tmp_path) == hpc
