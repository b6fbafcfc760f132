"""Runs survive interruption: exact resume, SIGUSR1 pre-emption, atomic checkpoints, and
sweeps that skip finished jobs, resume interrupted ones and isolate failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import FAST, compose_config
from vaelab.evaluation.learning_curves import tensorboard_dir
from vaelab.paths import PROJECT_ROOT
from vaelab.train import METRICS_FILE, train

TINY = ["trainer.limit_train_batches=15", "trainer.limit_val_batches=3", "trainer.test=false"]
DETERMINISTIC = [
    *FAST,
    "trainer.deterministic=true",
    "trainer.limit_train_batches=15",
    "trainer.limit_val_batches=3",
    "trainer.log_every_n_steps=5",
    "test=false",
    "beta=linear_warmup",
    "beta.warmup_steps=40",
    "data.binarize=dynamic",
]


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
    """Lightning writes checkpoints through an fsspec transaction (temp file + rename)."""
    import fsspec.implementations.local as local

    path = tmp_path / "last.ckpt"
    io = TorchCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 1}, path)
    real_write = local.LocalFileOpener.write

    def killed_mid_write(self, data):
        real_write(self, bytes(data)[: len(data) // 2])
        raise KeyboardInterrupt  # what a kill during the write looks like to Python

    monkeypatch.setattr(local.LocalFileOpener, "write", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "global_step": 2}, path)
    monkeypatch.undo()
    reloaded = torch.load(path, weights_only=True)
    assert reloaded["global_step"] == 1
    assert torch.equal(reloaded["state_dict"]["w"], torch.ones(3))


def _cli_env() -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


CLI_FAST = ["print_config=false", "callbacks.progress_bar=null", "data.download=false"]


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
        "trainer.max_epochs=1000",
        "trainer.limit_val_batches=2",
    ]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_cli_env(),
        cwd=PROJECT_ROOT,
    )
    output = []
    deadline = time.monotonic() + 180
    for line in proc.stdout:  # wait until fitting has started (handlers are installed)
        output.append(line)
        if "Total params" in line or time.monotonic() > deadline:
            break
    time.sleep(2.0)
    proc.send_signal(signal.SIGUSR1)
    rest, _ = proc.communicate(timeout=120)
    log = "".join(output) + rest
    assert proc.returncode == 0, log[-3000:]
    assert "received SIGUSR1" in log
    last = run_dir / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    assert state["global_step"] > 0 and state["epoch"] < 1000
    assert not (run_dir / METRICS_FILE).exists()  # unfinished runs are not reported as done
    # the requeued job (same run dir, resume=auto by default) continues from last.ckpt
    again = subprocess.run(
        [
            *args[:-2],
            f"trainer.max_epochs={state['epoch'] + 2}",
            "trainer.limit_val_batches=2",
            "trainer.limit_test_batches=2",
        ],
        capture_output=True,
        text=True,
        env=_cli_env(),
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Resuming from {last}" in again.stdout
    assert "test/elbo" in json.loads((run_dir / METRICS_FILE).read_text())


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
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_cli_env(),
        cwd=PROJECT_ROOT,
        start_new_session=True,
    )
    interrupted_ckpt = sweep / "2" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not interrupted_ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole sweep dies while job 2 trains
    proc.wait()
    assert (sweep / "0" / METRICS_FILE).is_file()
    assert (sweep / "1" / "error.txt").is_file()
    assert interrupted_ckpt.is_file() and not (sweep / "2" / METRICS_FILE).exists()
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
    assert "optimizer.lr=-1.0 must be > 0" in error
    assert "1 job(s) of the sweep" in again.stderr and "job 1: invalid config" in again.stderr


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
