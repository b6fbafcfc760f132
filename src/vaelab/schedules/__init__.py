"""KL weightings: β schedules and KL penalties called with the global step."""

from vaelab.schedules.base import KLWeighting
from vaelab.schedules.constant import ConstantBeta

__all__ = ["ConstantBeta", "KLWeighting"]
