"""Affine-coupling (RealNVP-style) flow posterior (Dinh et al. 2017, eqs. 4–6 and 9)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from torch import Tensor
from torch.distributions import Transform

from vaelab.flows.coupling import AffineCouplingStack
from vaelab.posteriors.flow_posterior import FlowPosterior
from vaelab.schema import PositiveInt, Range, checked_arguments


@checked_arguments("model.posterior")
class AffineCouplingPosterior(FlowPosterior):
    """q_K(z|x): N(μ, diag σ²) pushed through K affine coupling layers with alternating masks,
    y = b ⊙ z + (1 − b) ⊙ (z ⊙ exp(s) + t), (s, t) = NN_k(b ⊙ z, h) (Dinh et al. 2017, eq. 9),
    log |det| = Σ (1 − b) ⊙ s (eq. 6). The encoder outputs (μ, log σ², h); h, of size
    ``context_dim``, conditions every layer's network on the data point like IAF's context
    (Kingma et al. 2016); ``context_dim=0`` shares one flow among all data points. The
    networks' output layers start at zero: the flow starts as the identity.
    """

    def __init__(
        self,
        num_flows: Annotated[int, Range(ge=1)] = 4,
        hidden_dims: Sequence[PositiveInt] = (128, 128),
        context_dim: Annotated[int, Range(ge=0)] = 50,
    ) -> None:
        super().__init__(num_flows)
        self.hidden_dims = tuple(int(width) for width in hidden_dims)
        self.context_dim = int(context_dim)

    # the interface: the context's size does not depend on the latent's
    def num_flow_inputs(self, latent_dim: int) -> int:  # noqa: ARG002
        return self.context_dim

    def build(self, latent_dim: int) -> None:
        self.flow = AffineCouplingStack(
            latent_dim, self.num_flows, self.hidden_dims, self.context_dim
        )

    def transforms(self, flow_inputs: Tensor) -> list[Transform]:
        return self.flow.transforms(flow_inputs if self.context_dim else None)
