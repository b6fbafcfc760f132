"""KL warm-up: β rises linearly from 0 to its final value (Bowman et al. 2016, §3.1)."""

from __future__ import annotations

from vaelab.schedules.base import Weighting
from vaelab.schema import NonNegativeFloat, PositiveInt, checked_arguments


@checked_arguments("beta")
class LinearWarmup(Weighting):
    """β(step) = value · min(1, step / warmup_steps); β(0) = 0, β(N) = value, then held."""

    def __init__(self, value: NonNegativeFloat = 1.0, warmup_steps: PositiveInt = 10000) -> None:
        self.value = float(value)
        self.warmup_steps = int(warmup_steps)

    def beta(self, step: int) -> float:
        return self.value * min(1.0, step / self.warmup_steps)
