"""δ(z − code): the "posterior" of a deterministic encoder (seed 003: an autoencoder is a VAE
whose q(z|x) is a delta distribution), so baselines answer ``encode(x).mean`` like a VAE."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints


class PointMass(Distribution):
    """All mass at ``code`` [..., K]: mean = code, variance = 0, every sample = code."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, code: Tensor) -> None:
        self.code = code
        super().__init__(
            batch_shape=code.shape[:-1], event_shape=code.shape[-1:], validate_args=False
        )

    @property
    def mean(self) -> Tensor:
        return self.code

    @property
    def variance(self) -> Tensor:
        return torch.zeros_like(self.code)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        return self.code.expand(*sample_shape, *self.code.shape)
