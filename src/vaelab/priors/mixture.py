"""A learned mixture-of-Gaussians prior (e.g. Dilokthanakul et al. 2016; Tomczak & Welling
2018, §3 use it as a baseline to the VampPrior)."""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn
from torch.distributions import (
    Categorical,
    Distribution,
    Independent,
    MixtureSameFamily,
    Normal,
)
from torch.nn import functional as F

from vaelab.priors.base import Encoder, Prior
from vaelab.schema import Range, checked_arguments


@checked_arguments("model.prior")
class MixturePrior(Prior):
    """p(z) = Σ_k π_k N(z; μ_k, diag σ_k²) with learned π (softmax of logits), μ and σ
    (softplus, floored at ``min_scale``). Means start at ``init_spread`` · N(0, I) so the
    components are distinct, scales at 1. KL(q || p) has no closed form: the ELBO uses a
    Monte-Carlo KL (chosen automatically)."""

    def __init__(
        self,
        num_components: Annotated[int, Range(ge=1)] = 10,
        init_spread: Annotated[float, Range(gt=0)] = 1.0,
        min_scale: Annotated[float, Range(ge=0)] = 1e-3,
    ) -> None:
        super().__init__()
        self.num_components = int(num_components)
        self.init_spread = float(init_spread)
        self.min_scale = float(min_scale)

    def setup(self, latent_dim: int, input_shape: tuple[int, ...], encode: Encoder) -> None:
        super().setup(latent_dim, input_shape, encode)
        shape = (self.num_components, self.latent_dim)
        self.means = nn.Parameter(self.init_spread * torch.randn(shape))
        # softplus(0.5413) = 1: every component starts with unit scales
        self.raw_scales = nn.Parameter(torch.full(shape, 0.5413))
        self.logits = nn.Parameter(torch.zeros(self.num_components))

    def distribution(self) -> Distribution:
        scales = F.softplus(self.raw_scales.float()) + self.min_scale
        components = Independent(
            Normal(self.means.float(), scales, validate_args=False), 1, validate_args=False
        )
        return MixtureSameFamily(
            Categorical(logits=self.logits.float(), validate_args=False),
            components,
            validate_args=False,
        )
