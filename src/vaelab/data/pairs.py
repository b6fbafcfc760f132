"""Pairs of observations that share all but k factors: the weak supervision of Locatello et al.
2020, "Weakly-Supervised Disentanglement Without Compromises" (ICML): their pair model redraws
the factors of a set S of size k (x₂ = g(f(z, z̃, S))); their experiments take k = 1, or k = Rnd
drawn uniformly from 1 … d − 1 per pair (disentanglement_lib's ``simple_dynamics``, k = −1).
Section and equation numbers are not quoted: they were not checked against the paper here.

:func:`sample_pairs` works on any :class:`~vaelab.data.ground_truth.GroundTruthData` (only its
``factor_sizes``): each first factor vector gets a partner in which exactly k factors, chosen
uniformly, take another value, uniformly among the factor's other values. (disentanglement_lib's
reference redraws the chosen factors from all their values, so its pairs differ in *at most* k;
here they differ in exactly k, so that "k factors changed" is a fact of every pair.)

A factor datamodule with ``changed_factors`` set (``data.changed_factors=1`` or ``random``)
emits batches of pairs: x is [2B, C, H, W], the B first views then their B partners in the same
order, the factors [2B, F] likewise; its ``data_info()["pairs"]`` is that setting (None: single
observations). An objective that needs pairs reads it there and splits the batch in halves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union

import torch
from torch import Tensor

from vaelab.errors import VaelabError
from vaelab.schema import PositiveInt

#: how many factors the two views of a pair differ in: a fixed k, or ``random`` (k uniform in
#: 1 … F' − 1 per pair, F' the factors that take more than one value; Locatello et al.'s Rnd)
ChangedFactors = Union[PositiveInt, Literal["random"]]  # noqa: UP007
RANDOM = "random"


@dataclass(frozen=True)
class FactorPairs:
    """``first`` and ``second`` factor vectors [B, F] (int64) and ``changed`` [B, F] (bool):
    the factors in which they differ."""

    first: Tensor
    second: Tensor
    changed: Tensor

    @property
    def num_changed(self) -> Tensor:
        """k of each pair [B]."""
        return self.changed.sum(-1)


def changeable_factors(factor_sizes: Sequence[int]) -> Tensor:
    """[F] bool: the factors that take more than one value (only these can change)."""
    return torch.tensor([int(size) > 1 for size in factor_sizes])


def check_changed_factors(changed: ChangedFactors, factor_sizes: Sequence[int]) -> None:
    """Refuse a k that the grid cannot give (one line naming the data's factors)."""
    num = int(changeable_factors(factor_sizes).sum())
    if changed == RANDOM:
        if num < 2:
            raise VaelabError(
                f"data.changed_factors=random draws k from 1 … {num - 1}, but only {num} "
                "factor(s) of this data set take more than one value; set data.changed_factors=1"
            )
        return
    if isinstance(changed, bool) or not isinstance(changed, int) or not 1 <= changed <= num:
        raise VaelabError(
            f"data.changed_factors={changed!r}: a pair can differ in 1 … {num} factors of this "
            "data set (or `random`); choose one of those"
        )


def sample_pairs(
    factor_sizes: Sequence[int],
    first: Tensor,
    changed: ChangedFactors,
    generator: torch.Generator | None = None,
) -> FactorPairs:
    """Partners of the factor vectors ``first`` [B, F]: each differs from its first in exactly
    k factors (``changed``: k, or ``random``), drawn with ``generator`` on the CPU (the global
    RNG when None), returned on ``first``'s device."""
    check_changed_factors(changed, factor_sizes)
    batch, num_factors = first.shape
    sizes = torch.tensor([int(s) for s in factor_sizes], dtype=torch.int64)
    changeable = changeable_factors(factor_sizes)
    if changed == RANDOM:
        upper = int(changeable.sum()) - 1  # k uniform in 1 … F' − 1
        k = torch.randint(1, upper + 1, (batch, 1), generator=generator)
    else:
        k = torch.full((batch, 1), int(changed), dtype=torch.int64)
    # a uniform random order of the changeable factors per pair; its first k change
    noise = torch.rand(batch, num_factors, generator=generator)
    noise[:, ~changeable] = float("inf")
    rank = noise.argsort(-1).argsort(-1)
    mask = rank < k
    # another value of each changed factor: old + U{1 … size − 1}, modulo its size
    steps = 1 + (torch.rand(batch, num_factors, generator=generator) * (sizes - 1)).long()
    source = first.detach().cpu()
    second = torch.where(mask, (source + steps) % sizes, source)
    return FactorPairs(first=first, second=second.to(first.device), changed=mask.to(first.device))
