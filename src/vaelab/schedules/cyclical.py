"""Cyclical β annealing (Fu et al. 2019, eq. 6)."""

from __future__ import annotations

from typing import Annotated

from vaelab.schedules.base import Weighting
from vaelab.schema import NonNegativeFloat, PositiveInt, Range, checked_arguments


@checked_arguments("beta")
class CyclicalBeta(Weighting):
    """M cycles of T/M steps; within a cycle, with τ = (step mod (T/M)) / (T/M):
    β = value · τ/R while τ < R (a linear ramp from 0 over the fraction R of the cycle),
    then β = value. Each cycle starts again at β = 0; after T steps the pattern repeats.
    """

    def __init__(
        self,
        value: NonNegativeFloat = 1.0,
        total_steps: PositiveInt = 100000,
        num_cycles: PositiveInt = 4,
        ramp_fraction: Annotated[float, Range(gt=0, le=1)] = 0.5,
    ) -> None:
        if int(total_steps) < int(num_cycles):
            raise ValueError(
                f"beta needs num_cycles <= total_steps, got num_cycles="
                f"{num_cycles}, total_steps={total_steps}"
            )
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
