"""Constant β: the ELBO at β = 1, the β-VAE of Higgins et al. (2017) otherwise."""

from __future__ import annotations

from typing import Annotated

from typing_extensions import override

from vaelab.schedules.base import Weighting
from vaelab.schema import Range, checked_arguments


@checked_arguments("beta")
class ConstantBeta(Weighting):
    """β(step) = value for every step."""

    def __init__(self, value: Annotated[float, Range(ge=0)] = 1.0) -> None:
        self.value = float(value)

    @override
    def beta(self, step: int) -> float:
        return self.value

    @property
    def is_identity(self) -> bool:
        return self.value == 1.0
