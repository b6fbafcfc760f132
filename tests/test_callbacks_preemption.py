"""vaelab.callbacks.preemption: SIGUSR1 (SLURM's pre-emption warning) saves a checkpoint and exits
cleanly, the requeued run resumes from it, and a signal that arrives before fitting is kept for
the first step."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.signal_at_step import SIGNAL_CALLBACK, SIGNALLED_RUN_FAST, signalled_run_env
from vaelab.paths import PROJECT_ROOT
from vaelab.train import METRICS_FILE


@pytest.mark.slow
def test_sigusr1_saves_a_checkpoint_and_exits_cleanly_then_resumes(mnist_data_dir, tmp_path):
    run_dir = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "vaelab.train",
        *SIGNALLED_RUN_FAST,
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
        env=signalled_run_env(),
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
        env=signalled_run_env(),
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Resuming from {last}" in again.stdout
    assert "test/elbo" in json.loads((run_dir / METRICS_FILE).read_text())
    # it continued from step 41 (a run started over would end at 3 × 30 = 90 steps)
    assert 41 < torch.load(last, weights_only=True)["global_step"] < 90


def test_a_sigusr1_before_fitting_is_kept_for_the_first_step(tmp_path):
    """What a SLURM task does between start-up and fit: the signal is noted, not fatal."""
    import signal

    from vaelab.callbacks import preemption

    before = signal.getsignal(signal.SIGUSR1)
    try:
        preemption.hold_early_signal()
        os.kill(os.getpid(), signal.SIGUSR1)  # arrives while the task still imports and loads
        callback = preemption.PreemptionCheckpoint(str(tmp_path))
        callback.setup(trainer=None, pl_module=None, stage="fit")
        assert callback._requested  # the first step's end saves last.ckpt and stops
        callback.teardown(trainer=None, pl_module=None, stage="fit")
    finally:
        signal.signal(signal.SIGUSR1, before)
        preemption._early_signal["received"] = False
