"""A test callback that sends a signal at a chosen training step: interruption tests stop a
run at an exact point instead of sleeping and hoping.

Add it from the command line:
``+callbacks.signal._target_=tests.signal_at_step.SignalAtStep +callbacks.signal.step=5``.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Literal

import lightning as L
from typing_extensions import override

#: written into the run dir when the signal was sent
SENT_MARKER = ".signal_at_step_sent"


class SignalAtStep(L.Callback):
    """After optimizer step ``step``, send ``signal_name`` to this process (``to="process"``)
    or to its whole process group (``to="group"``: a sweep and all its jobs). With ``only_in``,
    only a run whose directory is named so (a sweep's job number) sends it. It is sent once per
    run dir (a marker file there says it was): a relaunch that takes the run's config, this
    callback included, runs on past the step."""

    def __init__(
        self,
        step: int,
        signal_name: str = "SIGUSR1",
        to: Literal["process", "group"] = "process",
        only_in: str | None = None,
    ) -> None:
        self.step = step
        self.signum = getattr(signal, signal_name)
        self.to = to
        self.only_in = only_in
        self.sent = False

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if self.sent or trainer.global_step != self.step:
            return
        run_dir = Path(trainer.default_root_dir)
        if self.only_in is not None and run_dir.name != self.only_in:
            return
        marker = run_dir / SENT_MARKER
        if marker.exists():
            return
        marker.write_text(signal.Signals(self.signum).name)
        self.sent = True
        print(f"signal_at_step: sending {signal.Signals(self.signum).name}", flush=True)
        if self.to == "group":
            os.killpg(os.getpgid(0), self.signum)
        else:
            os.kill(os.getpid(), self.signum)


class HoldAtStepUntilSignal(L.Callback):
    """After optimizer step ``step``, write ``<run dir>/<marker>`` and hold training until
    ``signal_name`` arrives (at most ``timeout_s``), then hand it on to the handler that was
    installed before (vaelab's pre-emption callback): a test can send the signal from outside
    (SLURM's ``scancel --signal``) at a step it chose, however fast the run is."""

    def __init__(
        self,
        step: int,
        signal_name: str = "SIGUSR1",
        marker: str = "holding_for_signal",
        timeout_s: float = 300.0,
    ) -> None:
        self.step = step
        self.signum = getattr(signal, signal_name)
        self.marker = marker
        self.timeout_s = timeout_s
        self.arrived = threading.Event()
        self.done = False

    @override
    def on_train_start(self, trainer: L.Trainer, *args) -> None:
        previous = signal.getsignal(self.signum)

        def note_then_forward(signum, frame) -> None:
            self.arrived.set()
            if callable(previous):
                previous(signum, frame)

        signal.signal(self.signum, note_then_forward)

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if self.done or trainer.global_step != self.step:
            return
        self.done = True
        Path(trainer.default_root_dir, self.marker).write_text(str(os.getpid()))
        # the signal's handler runs in this (main) thread and sets the event: the wait ends
        self.arrived.wait(self.timeout_s)


# -- for the tests that run ``python -m vaelab.train`` with this callback --------------------------
def signalled_run_env() -> dict:
    """The environment of a signalled subprocess run: unbuffered, Hydra's short errors."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


#: the overrides of a quiet subprocess run, and the one that adds this callback
SIGNALLED_RUN_FAST = ["print_config=false", "callbacks.progress_bar=null", "data.download=false"]
SIGNAL_CALLBACK = "+callbacks.signal_at_step._target_=tests.signal_at_step.SignalAtStep"
