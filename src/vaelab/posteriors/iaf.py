"""Inverse autoregressive flow posterior (Kingma et al. 2016, §4 and Algorithm 1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from torch import Tensor, nn
from torch.distributions import Transform

from vaelab.errors import VaelabError
from vaelab.flows.iaf import InverseAutoregressiveTransform
from vaelab.flows.made import MADE
from vaelab.posteriors.flow_posterior import FlowPosterior
from vaelab.schema import PositiveInt, Range, checked_arguments


@checked_arguments("model.posterior")
class IAFPosterior(FlowPosterior):
    """q_T(z|x): the encoder outputs (μ, log σ², h); z₀ = μ + σ ⊙ ε, then T steps
    z_t = IAF_t(z_{t−1}; h), each a MADE of (z_{t−1}, h) (Kingma et al. 2016, Algorithm 1),
    with the variable order reversed from one step to the next (their §4), and
    log q(z_T|x) = log q₀(z₀) − Σ_t Σ_i log σ_{t,i} (their eq. 11).

    ``context_dim`` is the size of h (0: no context; the steps are then the same for every
    data point). ``update``: ``affine`` (eq. 10; exactly the identity at the MADEs'
    zero-initialised output) or ``gated`` (Algorithm 1's update, σ = sigmoid(s + gate_bias)).
    """

    def __init__(
        self,
        num_flows: Annotated[int, Range(ge=1)] = 2,
        hidden_dims: Sequence[PositiveInt] = (320, 320),
        context_dim: Annotated[int, Range(ge=0)] = 50,
        update: Literal["affine", "gated"] = "affine",
        gate_bias: float = 2.0,
    ) -> None:
        super().__init__(num_flows)
        if not hidden_dims:  # a MADE needs a hidden layer
            raise VaelabError("model.posterior.hidden_dims must list at least one width, got []")
        self.hidden_dims = tuple(int(width) for width in hidden_dims)
        self.context_dim = int(context_dim)
        self.update = update
        self.gate_bias = float(gate_bias)

    # the interface: the context's size does not depend on the latent's
    def num_flow_inputs(self, latent_dim: int) -> int:  # noqa: ARG002
        return self.context_dim

    def build(self, latent_dim: int) -> None:
        self.steps = nn.ModuleList(
            MADE(latent_dim, self.hidden_dims, self.context_dim, reverse=step % 2 == 1)
            for step in range(self.num_flows)
        )

    def transforms(self, flow_inputs: Tensor) -> list[Transform]:
        context = flow_inputs if self.context_dim else None
        return [
            InverseAutoregressiveTransform(
                network, context, gated=self.update == "gated", gate_bias=self.gate_bias
            )
            for network in self.steps
        ]
