"""Training throughput: Lightning's ThroughputMonitor, counting the images of vaelab's batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ThroughputMonitor

#: the per-process images/s that ThroughputMonitor logs during training
METRIC = "train/device/samples_per_sec"
#: the images seen so far, logged beside it
IMAGES_SEEN = "train/samples"


def images_in_batch(batch: Any) -> int:
    """The number of images in an ``(x, y)`` batch (``len(batch)`` would count the pair)."""
    return len(batch[0])


class TrainThroughput(ThroughputMonitor):
    """Lightning's :class:`~lightning.pytorch.callbacks.ThroughputMonitor` for (x, y) batches.

    Every ``trainer.log_every_n_steps`` steps it logs ``train/device/samples_per_sec``: the
    images/s of this process over the last ``window_size − 1`` training batches (validation
    excluded; on CUDA the device is synchronised after every batch), and ``train/samples``,
    the images seen. Add it with
    ``+callbacks.throughput._target_=vaelab.callbacks.throughput.TrainThroughput``; the
    rates go to the run's loggers (not to metrics.json): :func:`logged_rate` reads the last one.
    """

    def __init__(self, window_size: int = 100) -> None:
        super().__init__(batch_size_fn=images_in_batch, window_size=window_size)


def logged_scalars(run_dir: Path, tag: str) -> list[float]:
    """Every value of ``tag`` in the TensorBoard event files under ``run_dir``, in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = []
    for path in sorted(Path(run_dir).rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(path))
        accumulator.Reload()
        if tag in accumulator.Tags().get("scalars", []):
            events.extend(accumulator.Scalars(tag))
    return [event.value for event in sorted(events, key=lambda event: event.step)]


def logged_rate(run_dir: Path) -> float | None:
    """The last training images/s that :class:`TrainThroughput` logged to TensorBoard under
    ``run_dir``, or None if none was logged (the window never filled)."""
    rates = logged_scalars(run_dir, METRIC)
    return rates[-1] if rates else None
