"""Save ``last.ckpt`` when the job is about to be pre-empted (SIGUSR1); under SLURM, requeue it."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from typing_extensions import override

from vaelab.checkpoints import LAST_CHECKPOINT

#: a pre-emption signal that came before fitting started (see :func:`hold_early_signal`)
_early_signal = {"received": False}


def hold_early_signal(signal_name: str = "SIGUSR1") -> None:
    """Until :class:`PreemptionCheckpoint` takes over at the start of fitting, note the signal
    instead of dying of it (its default action); the checkpoint then happens after the first
    step. The SLURM launcher calls this first thing in each task."""

    def note(_signum, _frame) -> None:
        _early_signal["received"] = True

    signal.signal(getattr(signal, signal_name), note)


def slurm_job_to_requeue() -> str | None:
    """This SLURM batch job's id as ``scontrol requeue`` takes it (``<array id>_<task>`` for an
    array task); None outside a SLURM batch job."""
    if not (SLURMEnvironment.detect() and "SLURM_JOB_ID" in os.environ):
        return None
    if "SLURM_ARRAY_JOB_ID" in os.environ:
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ["SLURM_JOB_ID"]


class PreemptionCheckpoint(L.Callback):
    """On ``signal_name`` (SIGUSR1, what SLURM sends ``--signal`` seconds before the time
    limit), finish the current step, write ``<dirpath>/last.ckpt`` (full state), and stop;
    the next start with ``resume=auto`` continues from it. At an epoch's last step it waits
    for the epoch's validation and stops at the epoch end: a run resumed there repeats an
    uninterrupted one exactly (resuming mid-epoch, Lightning restarts the epoch's loader).

    Outside SLURM training stops cleanly (relaunch to continue). In a SLURM batch job, rank 0
    runs ``scontrol requeue`` and every rank exits without a result, so SLURM restarts the job
    in the same run dir. Under DDP the ranks agree on the step to stop at. Holding SIGUSR1
    keeps Lightning's own SLURM handler, which checkpoints in the middle of a step, out.
    """

    def __init__(self, dirpath: str, signal_name: str = "SIGUSR1") -> None:
        self.dirpath = Path(dirpath)
        self.signum = getattr(signal, signal_name)
        self.preempted = False
        self._requested = False
        self._at_epoch_end = False
        self._previous_handler = None

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._previous_handler = signal.signal(self.signum, self._request_stop)
            self._requested = self._requested or _early_signal["received"]

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous_handler is not None:
            signal.signal(self.signum, self._previous_handler)
            self._previous_handler = None

    def _request_stop(self, _signum, _frame) -> None:
        self._requested = True

    @override
    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.preempted or self._at_epoch_end:
            return
        if not trainer.strategy.reduce_boolean_decision(self._requested, all=False):
            return
        if batch_idx + 1 >= trainer.num_training_batches:
            # the epoch's last step: stop after its validation, where resuming is exact
            self._at_epoch_end = True
            return
        self._preempt(trainer)

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._at_epoch_end and not self.preempted:
            self._preempt(trainer)

    def _preempt(self, trainer: L.Trainer) -> None:
        self.preempted = True
        path = self.dirpath / LAST_CHECKPOINT
        trainer.save_checkpoint(path, weights_only=False)  # full state: optimizer, loops
        name = signal.Signals(self.signum).name
        job = slurm_job_to_requeue()
        if job is None:
            trainer.should_stop = True
            print(
                f"vaelab: received {name}: saved {path}; stopping. Relaunch the same run "
                "(resume=auto) to continue.",
                flush=True,
            )
            return
        if trainer.is_global_zero:
            subprocess.run(["scontrol", "requeue", job], check=True, timeout=60)
        print(
            f"vaelab: received {name} at step {trainer.global_step}: saved {path}; requeued "
            f"SLURM job {job}, which continues from it",
            flush=True,
        )
        # no return value: submitit writes no result, so the sweep waits for the requeued job
        raise SystemExit(0)

    def state_dict(self) -> dict:
        return {}
