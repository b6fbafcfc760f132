"""Data sets generated from known factors of variation, as the disentanglement metrics see them.

A datamodule with ground-truth factors (dSprites and its variants, an ``npz`` with a
``factors`` array) implements :class:`GroundTruthData` besides being a LightningDataModule.
Its batches are (x, factors) with factors an integer tensor [B, F] of factor indices. The
metrics (``vaelab.evaluation``) use only this protocol, so a toy implementation in a test
serves them as well as a real data set.

Implementations: :class:`~vaelab.data.dsprites.DSpritesDataModule` (and its colour and noisy
variants; the full grid, images drawn on the factors' device) and
:class:`~vaelab.data.npz.FactorNpzDataModule` (the rows of a file: ``sample_factors`` draws
rows, a combination the file lacks is a ``VaelabError``). Their ``factor_sizes`` and
``factor_names`` are also in ``datamodule.data_info()``. A class whose observations are a
function of the factors alone sets ``deterministic_observations = True``
(:func:`observations_are_deterministic`); the metrics then encode each distinct one once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class GroundTruthData(Protocol):
    """Factors → observations, with the factor grid's sizes and names."""

    #: number of values each factor takes, in factor order (dSprites: 3, 6, 40, 32, 32)
    factor_sizes: Sequence[int]
    #: a name per factor (dSprites: shape, scale, orientation, x, y)
    factor_names: Sequence[str]

    def sample_factors(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """``num`` factor index vectors [num, F] (int64), drawn uniformly from the grid
        (or from the data set's rows where the grid is not complete)."""
        ...

    def observations_from_factors(
        self, factors: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """The images [num, C, H, W] (float in [0, 1], on the factors' device) of factor
        index vectors [num, F]; ``generator`` drives any per-image randomness (a colour,
        a noise background)."""
        ...


def observations_are_deterministic(data: GroundTruthData) -> bool:
    """True where the data declare ``deterministic_observations = True``: every factor vector
    has one observation (no colour or noise drawn per image), so its code can be computed once
    and looked up. Data that do not say so count as random."""
    return bool(getattr(data, "deterministic_observations", False))


def sample_with_fixed_factor(
    data: GroundTruthData,
    num: int,
    factor: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``num`` factor vectors that share one random value of ``factor`` and vary in the rest
    (the β-VAE and FactorVAE scores' "fix one factor, vary the others")."""
    factors = data.sample_factors(num, generator)
    value = torch.randint(int(data.factor_sizes[factor]), (), generator=generator)
    factors[:, factor] = value.to(factors.device)
    return factors
