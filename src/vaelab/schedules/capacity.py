"""Controlled capacity increase (Burgess et al. 2018, eq. 8): loss = recon + γ·|KL − C|."""

from __future__ import annotations

from torch import Tensor
from typing_extensions import override

from vaelab.schedules.base import Weighting
from vaelab.schema import NonNegativeFloat, PositiveInt, checked_arguments


@checked_arguments("beta")
class CapacityPenalty(Weighting):
    """Penalty γ·|KL̄ − C(step)|, C rising linearly from 0 to ``capacity_max`` nats over
    ``capacity_steps`` steps, then held. KL̄ is the batch-mean KL (as in the paper's
    implementation), so every data point carries the same penalty and the batch mean of
    the loss is recon + γ·|KL̄ − C|. ``beta(step)`` (logged as ``beta``) is γ.
    """

    def __init__(
        self,
        gamma: NonNegativeFloat = 1000.0,
        capacity_max: NonNegativeFloat = 25.0,
        capacity_steps: PositiveInt = 100000,
    ) -> None:
        self.gamma = float(gamma)
        self.capacity_max = float(capacity_max)
        self.capacity_steps = int(capacity_steps)

    def capacity(self, step: int) -> float:
        """C(step) in nats."""
        return self.capacity_max * min(1.0, step / self.capacity_steps)

    @override
    def beta(self, step: int) -> float:
        return self.gamma

    @override
    def penalty(self, kl: Tensor, kl_per_dim: Tensor | None, step: int) -> Tensor:
        excess = (kl.mean() - self.capacity(step)).abs()
        return (self.gamma * excess).expand_as(kl)
