"""KL weightings: β schedules and KL penalties called with the global step."""

from vaelab.schedules.base import Weighting
from vaelab.schedules.capacity import CapacityPenalty
from vaelab.schedules.constant import ConstantBeta
from vaelab.schedules.cyclical import CyclicalBeta
from vaelab.schedules.free_bits import FreeBits
from vaelab.schedules.linear_warmup import LinearWarmup

__all__ = [
    "CapacityPenalty",
    "ConstantBeta",
    "CyclicalBeta",
    "FreeBits",
    "LinearWarmup",
    "Weighting",
]
