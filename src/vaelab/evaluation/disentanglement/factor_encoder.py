"""Factor vectors → codes for one evaluation, each distinct observation encoded at most once
where the data make observations a function of the factors alone.

The metrics draw millions of factor vectors from a finite grid (dSprites: 737,280 of them;
the β-VAE score alone draws 1.92 M). Where the observation of a factor vector is always the
same (:func:`~vaelab.data.ground_truth.observations_are_deterministic`), its code is too: the
encoder sees each distinct factor vector once, in batches of ``batch_size``, and every later
draw looks its code up. Elsewhere (colour or noise drawn per image) every draw is encoded, as
the definitions require. Either way the codes are those of the same representation: the
numbers do not change, only the work.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from vaelab.data.ground_truth import GroundTruthData, observations_are_deterministic
from vaelab.data.sprites import ravel
from vaelab.evaluation.disentanglement.sampling import (
    FactorCodes,
    Representation,
    encode_factors,
)
from vaelab.stage_progress import Stage

#: factor vectors looked up per step of the group scores (the encoder still sees at most
#: ``batch_size`` observations at a time)
STEP_DRAWS = 1 << 16
#: the largest factor grid whose codes are kept in one table (rows of float64 codes)
MAX_CACHED_GRID = 1 << 22


class FactorEncoder:
    """``codes(factors)`` → codes [N, D] (float64, NumPy) of the observations of ``factors``
    [N, F]; ``encoded`` counts the observations that went through the representation, and
    ``progress`` (a stage, when set) advances by each batch of them."""

    def __init__(
        self,
        data: GroundTruthData,
        representation: Representation,
        generator: torch.Generator,
        batch_size: int,
    ) -> None:
        self.data = data
        self.representation = representation
        self.generator = generator
        self.batch_size = int(batch_size)
        self.encoded = 0
        self.progress: Stage | None = None
        grid = math.prod(int(size) for size in data.factor_sizes)
        self.caches = observations_are_deterministic(data) and grid <= MAX_CACHED_GRID
        self._grid = grid
        self._table: np.ndarray | None = None  # [grid, D], filled where _known
        self._known = np.zeros(grid if self.caches else 0, dtype=bool)

    def _encode(self, factors: Tensor) -> np.ndarray:
        parts = []
        for chunk in factors.split(self.batch_size):
            parts.append(
                encode_factors(
                    self.data, self.representation, chunk, self.generator, self.batch_size
                )
            )
            self.encoded += len(chunk)
            if self.progress is not None:
                self.progress.advance(len(chunk))
        return np.concatenate(parts)

    def codes(self, factors: Tensor) -> np.ndarray:
        if not self.caches:
            return self._encode(factors)
        keys = ravel(factors.cpu(), self.data.factor_sizes).numpy()
        missing = np.flatnonzero(~self._known[keys])
        if len(missing):
            new_keys, first = np.unique(keys[missing], return_index=True)
            new_codes = self._encode(factors[torch.from_numpy(missing[first])])
            if self._table is None:
                self._table = np.empty((self._grid, new_codes.shape[1]), dtype=np.float64)
            self._table[new_keys] = new_codes
            self._known[new_keys] = True
        return self._table[keys]

    def expected_encodings(self, draws: int) -> int:
        """How many observations ``draws`` more uniform draws from the grid are expected to
        send through the representation: all of them where nothing is cached, else the
        expected number of grid points not yet encoded that they hit,
        (G − known) · (1 − (1 − 1/G)^draws)."""
        if not self.caches:
            return int(draws)
        unknown = self._grid - int(self._known.sum())
        if self._grid == 1:
            return unknown if draws else 0
        return round(unknown * -math.expm1(draws * math.log1p(-1.0 / self._grid)))

    def sample(self, num: int) -> FactorCodes:
        """``num`` uniformly drawn factor vectors and their codes."""
        factors = self.data.sample_factors(num, self.generator)
        return FactorCodes(
            codes=self.codes(factors), factors=factors.cpu().numpy().astype(np.int64)
        )


def group_steps(num_groups: int, draws_per_group: int) -> Iterator[int]:
    """Group counts of about :data:`STEP_DRAWS` factor vectors each, adding up to
    ``num_groups``."""
    step = max(1, STEP_DRAWS // draws_per_group)
    for start in range(0, num_groups, step):
        yield min(step, num_groups - start)
