"""Save ``last.ckpt`` and stop cleanly when the job is about to be pre-empted (SIGUSR1)."""

from __future__ import annotations

import signal
from pathlib import Path

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from typing_extensions import override

from vaelab.checkpoints import LAST_CHECKPOINT


class PreemptionCheckpoint(L.Callback):
    """On ``signal_name`` (SIGUSR1, what SLURM sends ``--signal`` seconds before the time
    limit), finish the current step, write ``<dirpath>/last.ckpt``, and stop training; the
    next start with ``resume=auto`` continues from it.

    Under SLURM, Lightning's own SLURMEnvironment handler (checkpoint + ``scontrol requeue``)
    is left in charge and this callback stays passive.
    """

    def __init__(self, dirpath: str, signal_name: str = "SIGUSR1") -> None:
        self.dirpath = Path(dirpath)
        self.signum = getattr(signal, signal_name)
        self.preempted = False
        self._requested = False
        self._previous_handler = None

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and not SLURMEnvironment.detect():
            self._previous_handler = signal.signal(self.signum, self._request_stop)

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous_handler is not None:
            signal.signal(self.signum, self._previous_handler)
            self._previous_handler = None

    def _request_stop(self, _signum, _frame) -> None:
        self._requested = True

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if not self._requested or self.preempted:
            return
        self.preempted = True
        path = self.dirpath / LAST_CHECKPOINT
        trainer.save_checkpoint(path, weights_only=False)  # full state: optimizer, loops
        trainer.should_stop = True
        print(
            f"vaelab: received {signal.Signals(self.signum).name}: saved {path}; "
            "stopping. Relaunch the same run (resume=auto) to continue.",
            flush=True,
        )

    def state_dict(self) -> dict:
        return {}
