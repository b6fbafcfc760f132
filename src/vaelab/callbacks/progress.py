"""Progress that reads well where it lands: a Rich bar in a terminal, plain lines elsewhere.

A SLURM log or ``> file`` cannot redraw a bar: Lightning's bars write nothing for a whole run
and then one line cut at 80 columns. :func:`progress_bar` picks :class:`LineProgressBar` there
(one line every ``every_n_steps`` steps and one per epoch: train loss, val ELBO, it/s, ETA;
in a run that ``trainer.max_steps`` ends, steps, rate and ETA are the run's optimizer steps)
and :class:`LossRichProgressBar` in a terminal (Rich's bar with the last train loss).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar
from typing_extensions import override

from vaelab.schema import PositiveInt, checked_arguments

#: scalars shown by both bars when the run logged them
TRAIN_LOSS = "train/loss"
#: its epoch mean (per data point), shown at the end of an epoch
TRAIN_LOSS_EPOCH = "train/loss_epoch"
VAL_ELBO = "val/elbo"
VAL_LOSS = "val/loss"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _scalar(metrics: Mapping, name: str) -> float | None:
    value = metrics.get(name)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def bounding_steps(trainer: L.Trainer) -> int | None:
    """``trainer.max_steps`` when it ends the run before ``max_epochs`` does (a step-based
    run), else None."""
    max_steps = trainer.max_steps
    if max_steps is None or max_steps < 0:
        return None
    max_epochs = trainer.max_epochs
    if max_epochs is None or max_epochs < 0:
        return max_steps
    batches = trainer.num_training_batches
    steps_per_epoch = batches / max(trainer.accumulate_grad_batches, 1)
    bounded = not math.isfinite(batches) or max_steps < max_epochs * steps_per_epoch
    return max_steps if bounded else None


class LineProgressBar(ProgressBar):
    """Plain-text progress for logs: a line every ``every_n_steps`` training steps and one at
    the end of every epoch, flushed at once (SLURM buffers output otherwise)::

        epoch 2/10  step 100/550  train/loss 152.31  41.2 it/s  epoch ETA 0:11
        epoch 2/10  done in 0:14  train/loss_epoch 149.87  val/elbo -148.02  39.8 it/s  ETA 1:52

    When ``trainer.max_steps`` ends the run (a step-based run), the step, rate and ETA are
    the run's optimizer steps::

        epoch 1  step 100/3000  train/loss 152.31  1.1 it/s  ETA 43:56

    The rates count the batches (steps) actually run since the last line, the end-of-epoch
    line shows the epoch mean of the training loss (``train/loss_epoch``). ``clock``: the
    time source (tests give a fake one).
    """

    def __init__(
        self, every_n_steps: int = 100, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.clock = clock
        self._enabled = True
        self._epoch_started = 0.0
        self._epoch_batches = 0
        self._epoch_first_step = 0
        self._window_started = 0.0
        self._window_batches = 0
        self._window_first_step = 0
        self._epoch_seconds: list[float] = []

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _print(self, text: str) -> None:
        if self._enabled:
            print(text, flush=True)

    def _epoch_label(self, trainer: L.Trainer) -> str:
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        if bounding_steps(trainer) is not None:
            total = None  # the steps end the run: the epoch count is not its length
        return f"epoch {trainer.current_epoch + 1}" + (f"/{total}" if total else "")

    @override
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_started = self._window_started = self.clock()
        self._epoch_batches = self._window_batches = 0
        self._epoch_first_step = self._window_first_step = trainer.global_step

    @override
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._window_batches += 1
        self._epoch_batches += 1
        done = batch_idx + 1
        total = trainer.num_training_batches
        max_steps = bounding_steps(trainer)
        if max_steps is not None:
            step = trainer.global_step  # after this batch's optimizer step
            if step % self.every_n_steps or step >= max_steps or step == self._window_first_step:
                return
        elif done % self.every_n_steps or done == total:
            return
        now = self.clock()
        seconds = max(now - self._window_started, 1e-9)
        loss = _scalar(trainer.callback_metrics, TRAIN_LOSS)
        if max_steps is not None:
            rate = (trainer.global_step - self._window_first_step) / seconds
            progress = f"step {trainer.global_step}/{max_steps}"
            eta = f"ETA {_duration((max_steps - trainer.global_step) / rate if rate else math.nan)}"
        else:
            rate = self._window_batches / seconds
            progress = f"step {done}/{total}" if math.isfinite(total) else f"step {done}"
            remaining = (total - done) / rate if math.isfinite(total) else math.nan
            eta = f"epoch ETA {_duration(remaining)}"
        self._window_started, self._window_batches = now, 0
        self._window_first_step = trainer.global_step
        self._print(
            f"{self._epoch_label(trainer)}  {progress}  {TRAIN_LOSS} {_number(loss)}  "
            f"{rate:.1f} it/s  {eta}"
        )

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = self.clock() - self._epoch_started
        self._epoch_seconds.append(seconds)
        metrics = trainer.callback_metrics
        max_steps = bounding_steps(trainer)
        if max_steps is not None:
            rate = (trainer.global_step - self._epoch_first_step) / max(seconds, 1e-9)
        else:
            rate = self._epoch_batches / max(seconds, 1e-9)
        loss_name = (
            TRAIN_LOSS_EPOCH if _scalar(metrics, TRAIN_LOSS_EPOCH) is not None else TRAIN_LOSS
        )
        parts = [
            f"{self._epoch_label(trainer)}  done in {_duration(seconds)}",
            f"{loss_name} {_number(_scalar(metrics, loss_name))}",
        ]
        if _scalar(metrics, VAL_ELBO) is not None:
            parts.append(f"{VAL_ELBO} {_number(_scalar(metrics, VAL_ELBO))}")
        elif _scalar(metrics, VAL_LOSS) is not None:
            parts.append(f"{VAL_LOSS} {_number(_scalar(metrics, VAL_LOSS))}")
        parts.append(f"{rate:.1f} it/s")
        if max_steps is not None:
            steps_left = max(max_steps - trainer.global_step, 0)
            parts.append(f"ETA {_duration(steps_left / rate if rate else math.nan)}")
        elif trainer.max_epochs and trainer.max_epochs > 0:
            epochs_left = trainer.max_epochs - trainer.current_epoch - 1
            recent = self._epoch_seconds[-3:]
            parts.append(f"ETA {_duration(epochs_left * sum(recent) / len(recent))}")
        self._print("  ".join(parts))

    @override
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = {
            name: value
            for name, value in trainer.callback_metrics.items()
            if name.startswith("test/")
        }
        shown = "  ".join(f"{name} {_number(_scalar(metrics, name))}" for name in sorted(metrics))
        self._print(f"test  {shown}")


class LossRichProgressBar(RichProgressBar):
    """Rich's bar, with the last logged train loss next to the progress-bar metrics."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        loss = _scalar(trainer.callback_metrics, TRAIN_LOSS)
        if loss is not None:
            metrics = {TRAIN_LOSS: f"{loss:.2f}", **metrics}
        return metrics


@checked_arguments("callbacks.progress_bar")
def progress_bar(every_n_steps: PositiveInt = 100, force: str | None = None) -> ProgressBar:
    """The progress bar for where stdout goes: a Rich bar on a terminal, plain lines in a
    file or a SLURM log. ``force``: ``rich`` or ``lines`` to choose."""
    choice = force or ("rich" if sys.stdout.isatty() else "lines")
    if choice not in ("rich", "lines"):
        raise ValueError(f"progress_bar force must be rich, lines or null, got {force!r}")
    return LossRichProgressBar() if choice == "rich" else LineProgressBar(every_n_steps)
