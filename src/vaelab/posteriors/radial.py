"""Radial-flow posterior (Rezende & Mohamed 2015, §4.1 and eq. 14)."""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor, nn
from torch.distributions import Transform

from vaelab.flows.radial import RadialTransform
from vaelab.posteriors.flow_posterior import FlowPosterior
from vaelab.schema import Range, checked_arguments


@checked_arguments("model.posterior")
class RadialFlowPosterior(FlowPosterior):
    """q_K(z|x): N(μ, diag σ²) pushed through K radial maps z ↦ z + β h(α, r)(z − z₀)
    (Rezende & Mohamed 2015, eq. 14), log q_K(z_K) = log q₀(z₀) − Σ_k log |det ∂f_k/∂z|.
    β ≥ −α (invertibility) holds for every parameter value (:class:`RadialTransform`).

    ``amortized=true``: the encoder outputs every flow's (z₀, raw α, raw β) for its data point,
    K(D + 2) numbers after (μ, log σ²); a zero output is the identity flow.
    ``amortized=false``: one (z₀, raw α, raw β) per flow shared by all data points, learned,
    starting at raw α = raw β = 0 (the identity) and z₀ ~ N(0, ``init_std``²).
    """

    def __init__(
        self,
        num_flows: Annotated[int, Range(ge=1)] = 10,
        amortized: bool = True,
        init_std: Annotated[float, Range(ge=0)] = 0.01,
    ) -> None:
        super().__init__(num_flows)
        self.amortized = bool(amortized)
        self.init_std = float(init_std)

    def num_flow_inputs(self, latent_dim: int) -> int:
        return self.num_flows * (latent_dim + 2) if self.amortized else 0

    def build(self, latent_dim: int) -> None:
        if self.amortized:
            return
        self.center = nn.Parameter(self.init_std * torch.randn(self.num_flows, latent_dim))
        self.raw_alpha = nn.Parameter(torch.zeros(self.num_flows))
        self.raw_beta = nn.Parameter(torch.zeros(self.num_flows))

    def flow_parameters(self, flow_inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(z₀, raw α, raw β): [K, ..., D], [K, ...], [K, ...] (``...`` = the batch if
        amortised)."""
        if not self.amortized:
            return self.center.float(), self.raw_alpha.float(), self.raw_beta.float()
        dim = self.latent_dim
        per_flow = flow_inputs.unflatten(-1, (self.num_flows, dim + 2)).movedim(-2, 0)
        return per_flow[..., :dim], per_flow[..., dim], per_flow[..., dim + 1]

    def transforms(self, flow_inputs: Tensor) -> list[Transform]:
        center, raw_alpha, raw_beta = self.flow_parameters(flow_inputs)
        return [
            RadialTransform(center[k], raw_alpha[k], raw_beta[k]) for k in range(self.num_flows)
        ]
