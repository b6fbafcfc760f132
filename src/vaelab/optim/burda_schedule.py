"""The learning-rate schedule of Burda, Grosse & Salakhutdinov (2015, §5): for i = 0 … 7,
train 3^i epochs at lr = lr₀ · 10^(−i/7) (3280 epochs in all)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR


@dataclass
class BurdaStages:
    """Epoch → lr factor: stage i lasts ``growth``^i epochs at factor 10^(−i/decade_stages);
    after the last stage the last factor is kept. A callable object (not a lambda), so its
    settings are saved with the scheduler's state."""

    num_stages: int = 8
    growth: int = 3
    decade_stages: int = 7

    def __post_init__(self) -> None:
        if self.num_stages < 1 or self.growth < 1 or self.decade_stages <= 0:
            raise ValueError(
                f"burda schedule: num_stages >= 1, growth >= 1 and decade_stages "
                f"> 0 required, got {self.num_stages}, {self.growth}, "
                f"{self.decade_stages}"
            )

    @property
    def total_epochs(self) -> int:
        """Σ_i growth^i epochs (3280 for the paper's 8 stages of 3^i)."""
        return sum(self.growth**i for i in range(self.num_stages))

    def stage(self, epoch: int) -> int:
        """The stage i that epoch (counted from 0) belongs to."""
        end = 0
        for i in range(self.num_stages):
            end += self.growth**i
            if epoch < end:
                return i
        return self.num_stages - 1

    def __call__(self, epoch: int) -> float:
        return 10.0 ** (-self.stage(epoch) / self.decade_stages)


def burda_schedule(
    optimizer: torch.optim.Optimizer, num_stages: int = 8, growth: int = 3, decade_stages: int = 7
) -> LambdaLR:
    """A LambdaLR stepped once per epoch (VAEModule's ``interval: epoch``) whose lr is the
    optimiser's initial lr times :class:`BurdaStages`."""
    return LambdaLR(optimizer, BurdaStages(num_stages, growth, decade_stages))
