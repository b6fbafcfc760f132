"""A learned flow prior: N(0, I) pushed through affine coupling layers (RealNVP, Dinh et al.
2017, eqs. 4–6 and 9). Chen et al. 2017 ("Variational Lossy Autoencoder") learn a VAE's
prior with an autoregressive flow; coupling layers give the same kind of prior with both
directions in one pass."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributions import Distribution, Independent, Normal

from vaelab.flows.coupling import AffineCouplingStack
from vaelab.flows.distribution import FlowDistribution
from vaelab.priors.base import Encoder, Prior
from vaelab.schema import PositiveInt, checked_arguments


@checked_arguments("model.prior")
class FlowPrior(Prior):
    """p(z) = N(0, I) pushed through K affine coupling layers with alternating masks:
    log p(z) = log N(f⁻¹(z); 0, I) + log |det ∂f⁻¹/∂z|; both sampling and the density cost
    one network pass per layer. The layers' output weights start at zero, so the prior
    starts as N(0, I) exactly. KL(q || p) has no closed form: the ELBO uses a Monte-Carlo
    KL (chosen automatically)."""

    def __init__(
        self,
        num_flows: PositiveInt = 4,
        hidden_dims: Sequence[PositiveInt] = (128, 128),
    ) -> None:
        super().__init__()
        self.num_flows = int(num_flows)
        self.hidden_dims = tuple(int(width) for width in hidden_dims)

    def setup(self, latent_dim: int, input_shape: tuple[int, ...], encode: Encoder) -> None:
        super().setup(latent_dim, input_shape, encode)
        self.flow = AffineCouplingStack(
            self.latent_dim, self.num_flows, self.hidden_dims, context_dim=0
        )
        self.register_buffer("loc", torch.zeros(self.latent_dim), persistent=False)

    def distribution(self) -> Distribution:
        base = Independent(
            Normal(self.loc, torch.ones_like(self.loc), validate_args=False),
            1,
            validate_args=False,
        )
        return FlowDistribution(base, self.flow.transforms(None))
