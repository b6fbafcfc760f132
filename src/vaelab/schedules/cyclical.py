"""Cyclical β annealing (Fu et al. 2019, eq. 6)."""

from __future__ import annotations

from vaelab.schedules.base import Weighting


class CyclicalBeta(Weighting):
    """M cycles of T/M steps; within a cycle, with τ = (step mod (T/M)) / (T/M):
    β = value · τ/R while τ < R (a linear ramp from 0 over the fraction R of the cycle),
    then β = value. Each cycle starts again at β = 0; after T steps the pattern repeats.
    """

    def __init__(
        self,
        value: float = 1.0,
        total_steps: int = 100000,
        num_cycles: int = 4,
        ramp_fraction: float = 0.5,
    ) -> None:
        if value < 0:
            raise ValueError(f"beta.value must be >= 0, got {value}")
        if int(num_cycles) < 1 or int(total_steps) < int(num_cycles):
            raise ValueError(
                f"beta needs 1 <= num_cycles <= total_steps, got num_cycles="
                f"{num_cycles}, total_steps={total_steps}"
            )
        if not 0.0 < ramp_fraction <= 1.0:
            raise ValueError(f"beta.ramp_fraction must lie in (0, 1], got {ramp_fraction}")
        self.value = float(value)
        self.total_steps = int(total_steps)
        self.num_cycles = int(num_cycles)
        self.ramp_fraction = float(ramp_fraction)

    @property
    def cycle_steps(self) -> float:
        return self.total_steps / self.num_cycles

    def beta(self, step: int) -> float:
        tau = (step % self.cycle_steps) / self.cycle_steps
        return self.value * min(1.0, tau / self.ramp_fraction)
