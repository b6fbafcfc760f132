"""KL warm-up: β rises linearly from 0 to its final value (Bowman et al. 2016, §3.1)."""

from __future__ import annotations

from vaelab.schedules.base import Weighting


class LinearWarmup(Weighting):
    """β(step) = value · min(1, step / warmup_steps); β(0) = 0, β(N) = value, then held."""

    def __init__(self, value: float = 1.0, warmup_steps: int = 10000) -> None:
        if value < 0:
            raise ValueError(f"beta.value must be >= 0, got {value}")
        if int(warmup_steps) < 1:
            raise ValueError(f"beta.warmup_steps must be >= 1, got {warmup_steps}")
        self.value = float(value)
        self.warmup_steps = int(warmup_steps)

    def beta(self, step: int) -> float:
        return self.value * min(1.0, step / self.warmup_steps)
