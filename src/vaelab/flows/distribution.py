"""The distribution of a base Gaussian pushed through a flow (Rezende & Mohamed 2015, eq. 7)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Independent, Normal, Transform, TransformedDistribution

#: draws behind the Monte-Carlo variance of a flow posterior (a fixed-seed private generator)
VARIANCE_SAMPLES = 128


class FlowDistribution(TransformedDistribution):
    """A base N(μ, diag σ²) pushed through a flow: sampling, ``rsample`` and ``log_prob`` are
    exact (``TransformedDistribution``).

    ``mean`` is f(μ₀), the flow applied to the base mean — a central code for
    reconstructions, plots and active units, *not* E[z], which has no closed form. ``variance``
    is a Monte-Carlo estimate of Var[z_j] from :data:`VARIANCE_SAMPLES` draws of a private
    generator with a fixed seed (deterministic; the global RNG is left alone).
    """

    def __init__(self, base: Independent, transforms: list[Transform]) -> None:
        super().__init__(base, transforms, validate_args=False)

    def _push(self, z: Tensor) -> Tensor:
        for transform in self.transforms:
            z = transform(z)
        return z

    @property
    def mean(self) -> Tensor:
        return self._push(self.base_dist.mean)

    @property
    def variance(self) -> Tensor:
        base: Normal = self.base_dist.base_dist
        generator = torch.Generator(device=base.loc.device).manual_seed(0)
        noise = torch.randn(
            (VARIANCE_SAMPLES, *base.loc.shape),
            generator=generator,
            device=base.loc.device,
            dtype=base.loc.dtype,
        )
        return self._push(base.loc + base.scale * noise).var(0)
