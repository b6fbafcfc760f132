"""Per-stage epoch averages of per-data-point quantities, logged like VAEModule's metrics."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
from torch import Tensor, nn
from torchmetrics import MeanMetric

EVAL_STAGES = ("val", "test")


class EpochMeans(nn.Module):
    """One :class:`~torchmetrics.MeanMetric` per (stage, name), so ``<stage>/<name>`` is the
    mean over every data point of the split, not a mean of batch means."""

    def __init__(self, names: Sequence[str], stages: Sequence[str] = EVAL_STAGES) -> None:
        super().__init__()
        self.names = tuple(names)
        self.metrics = nn.ModuleDict(
            {f"{stage}_{name}": MeanMetric() for stage in stages for name in self.names}
        )

    def log(
        self,
        module: L.LightningModule,
        stage: str,
        values: dict[str, Tensor],
        prog_bar: str | None = None,
    ) -> None:
        """Update and log ``<stage>/<name>`` for every per-data-point tensor in ``values``."""
        for name, per_point in values.items():
            metric = self.metrics[f"{stage}_{name}"]
            metric.update(per_point.detach())
            module.log(
                f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=(name == prog_bar)
            )
