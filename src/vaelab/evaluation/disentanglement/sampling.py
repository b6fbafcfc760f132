"""Factors → observations → codes: the samples every disentanglement metric is computed on.

The representation is a function of observations [N, C, H, W] to codes [N, D]; for a VAE
it is the mean of q(z|x), as in disentanglement_lib (``representation_function`` = the
encoder mean).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vaelab.data.ground_truth import GroundTruthData

#: observations [N, C, H, W] → codes [N, D]
Representation = Callable[[Tensor], Tensor]


@dataclass
class FactorCodes:
    """``codes`` [N, D] (float64) of observations generated from ``factors`` [N, F] (int64)."""

    codes: np.ndarray
    factors: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)


@torch.no_grad()
def encode_factors(
    data: GroundTruthData,
    representation: Representation,
    factors: Tensor,
    generator: torch.Generator,
    batch_size: int,
) -> np.ndarray:
    """Codes [N, D] (float64, NumPy) of the observations of ``factors`` [N, F], encoded
    ``batch_size`` at a time."""
    parts = []
    for chunk in factors.split(batch_size):
        observations = data.observations_from_factors(chunk, generator)
        parts.append(representation(observations).detach().double().cpu())
    return torch.cat(parts).numpy()


def sample_factor_codes(
    data: GroundTruthData,
    representation: Representation,
    num: int,
    generator: torch.Generator,
    batch_size: int,
) -> FactorCodes:
    """``num`` random factor vectors and the codes of their observations."""
    factors = data.sample_factors(num, generator)
    codes = encode_factors(data, representation, factors, generator, batch_size)
    return FactorCodes(codes=codes, factors=factors.cpu().numpy().astype(np.int64))


def fix_one_factor(factors: Tensor, fixed: Tensor, source: Tensor) -> Tensor:
    """Groups of factor vectors [G, B, F] in which factor ``fixed[g]`` takes the value it has
    in ``source`` [G, B, F] (the β-VAE and FactorVAE scores' "fix one factor, vary the
    others", for many groups at once)."""
    groups = torch.arange(len(factors), device=factors.device)
    fixed = fixed.to(factors.device)
    out = factors.clone()
    out[groups, :, fixed] = source[groups, :, fixed]
    return out
