"""Training throughput in images per second, measured over a window of training steps."""

from __future__ import annotations

import time

import lightning as L
import torch

METRIC = "perf/train_images_per_s"


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued kernels, so a host clock measures finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class TrainThroughput(L.Callback):
    """Times ``timed_steps`` training batches after the first ``warmup_steps`` of the run
    (allocator warm-up, compilation and first-batch effects excluded) and logs their
    images/s per process as ``perf/train_images_per_s``.

    The device is synchronised only at the two ends of the window, so asynchronous
    execution inside it is measured as it runs. If the epoch ends first, the window closes
    before validation starts. Add it with
    ``+callbacks.throughput._target_=vaelab.callbacks.throughput.TrainThroughput``.
    """

    def __init__(self, warmup_steps: int = 20, timed_steps: int = 200) -> None:
        if warmup_steps < 0 or timed_steps < 1:
            raise ValueError(
                f"need warmup_steps >= 0 and timed_steps >= 1, got {warmup_steps} and {timed_steps}"
            )
        self.warmup_steps = int(warmup_steps)
        self.timed_steps = int(timed_steps)
        self._seen = 0
        self._images = 0
        self._start: float | None = None
        self._end: float | None = None

    @property
    def images_per_second(self) -> float | None:
        """Throughput of the timed window, or None before the window has closed."""
        if self._start is None or self._end is None or self._end <= self._start:
            return None
        return self._images / (self._end - self._start)

    def _timing(self) -> bool:
        return self._start is not None and self._end is None

    def _close(self, pl_module: L.LightningModule) -> None:
        synchronize(pl_module.device)
        self._end = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._seen == self.warmup_steps and self._start is None:
            synchronize(pl_module.device)
            self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._seen += 1
        if self._timing():
            self._images += len(batch[0])
            if self._seen == self.warmup_steps + self.timed_steps:
                self._close(pl_module)

    def on_validation_start(self, trainer, pl_module) -> None:
        if self._timing():  # validation inside fit: stop the clock before it
            self._close(pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._timing():
            self._close(pl_module)
        rate = self.images_per_second
        if rate is not None:
            pl_module.log(METRIC, rate, on_step=False, on_epoch=True)
