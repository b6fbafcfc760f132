"""Controlled capacity increase (Burgess et al. 2018, eq. 8): loss = recon + γ·|KL − C|."""

from __future__ import annotations

from torch import Tensor
from typing_extensions import override

from vaelab.schedules.base import Weighting


class CapacityPenalty(Weighting):
    """Penalty γ·|KL̄ − C(step)|, C rising linearly from 0 to ``capacity_max`` nats over
    ``capacity_steps`` steps, then held. KL̄ is the batch-mean KL (as in the paper's
    implementation), so every data point carries the same penalty and the batch mean of
    the loss is recon + γ·|KL̄ − C|. ``beta(step)`` (logged as ``beta``) is γ.
    """

    def __init__(
        self, gamma: float = 1000.0, capacity_max: float = 25.0, capacity_steps: int = 100000
    ) -> None:
        if gamma < 0 or capacity_max < 0:
            raise ValueError(
                f"beta.gamma and beta.capacity_max must be >= 0, got gamma="
                f"{gamma}, capacity_max={capacity_max}"
            )
        if int(capacity_steps) < 1:
            raise ValueError(f"beta.capacity_steps must be >= 1, got {capacity_steps}")
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
