"""A toy :class:`~vaelab.data.ground_truth.GroundTruthData` and representations of it with
known disentanglement, and the table of metrics on them (used by
tests/test_evaluation_disentanglement.py and scripts/metric_timing.py).

An observation carries its factors: pixel k < F holds factor k's index scaled to [0, 1]; the
``noise_pixels`` after them hold uniform noise. A representation is then a fixed function of
the pixels: the factors themselves, a rotation of them, a copy, or the noise alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vaelab.evaluation.disentanglement import (
    DisentanglementSettings,
    compute_disentanglement,
)

#: scales a uniform [0, 1] pixel to unit variance, the scale of a VAE's codes
UNIT_VARIANCE = 12**0.5


class FactorPixels:
    """Factor grid ``factor_sizes``; observations [N, 1, 1, F + noise_pixels]."""

    def __init__(self, factor_sizes: Sequence[int], noise_pixels: int = 2) -> None:
        self.factor_sizes = list(factor_sizes)
        self.factor_names = [f"factor_{k}" for k in range(len(factor_sizes))]
        self.noise_pixels = noise_pixels

    @property
    def deterministic_observations(self) -> bool:
        """Without noise pixels an observation is a function of its factors."""
        return self.noise_pixels == 0

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def sample_factors(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.stack(
            [torch.randint(size, (num,), generator=generator) for size in self.factor_sizes], 1
        )

    def observations_from_factors(
        self, factors: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        scale = torch.tensor(self.factor_sizes, dtype=torch.float32) - 1
        values = factors.float() / scale.clamp_min(1)
        noise = torch.rand(len(factors), self.noise_pixels, generator=generator)
        return torch.cat([values, noise], 1).view(len(factors), 1, 1, -1)


def factors_and_noise(data: FactorPixels):
    """The factors themselves, plus the noise pixels as extra codes: as good as it gets."""
    del data
    return lambda x: (x.flatten(1) - 0.5) * UNIT_VARIANCE


def rotated(data: FactorPixels, seed: int = 0):
    """A fixed random rotation of the (centred) factors: every code mixes every factor."""
    generator = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(
        torch.randn(data.num_factors, data.num_factors, generator=generator)
    )
    return lambda x: (x.flatten(1)[:, : data.num_factors] - 0.5) * UNIT_VARIANCE @ rotation


def duplicated(data: FactorPixels, copy_scale: float = 0.5):
    """Factor 0 in two codes (the second a scaled copy), the other factors once each."""

    def encode(x: Tensor) -> Tensor:
        factors = (x.flatten(1)[:, : data.num_factors] - 0.5) * UNIT_VARIANCE
        return torch.cat([factors, copy_scale * factors[:, :1]], 1)

    return encode


def noise_only(data: FactorPixels):
    """Codes that carry no information about the factors."""
    return lambda x: (x.flatten(1)[:, data.num_factors :] - 0.5) * UNIT_VARIANCE


#: the synthetic table of docs/experiments.md ("What papers report: metrics"); the slow test
#: uses half of it (the gradient-boosted trees of DCI take most of the time)
TABLE_SETTINGS = DisentanglementSettings(
    num_train=2000, num_eval=1000, group_size=64, num_variance_estimate=2000
)


TABLE_FACTORS = (3, 6, 10, 8)


def synthetic_table(settings: DisentanglementSettings = TABLE_SETTINGS) -> dict[str, dict]:
    data = FactorPixels(TABLE_FACTORS, noise_pixels=2)
    cases = {
        "factors+noise": factors_and_noise(data),
        "rotation": rotated(data),
        "duplicated": duplicated(data),
        "noise": noise_only(data),
    }
    return {
        name: compute_disentanglement(data, representation, settings)
        for name, representation in cases.items()
    }
