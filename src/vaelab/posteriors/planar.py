"""Planar-flow posterior (Rezende & Mohamed 2015, §4.1 and eq. 13)."""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor, nn
from torch.distributions import Transform

from vaelab.flows.planar import PlanarTransform
from vaelab.posteriors.flow_posterior import FlowPosterior
from vaelab.schema import Range, checked_arguments


@checked_arguments("model.posterior")
class PlanarFlowPosterior(FlowPosterior):
    """q_K(z|x): N(μ, diag σ²) pushed through K planar maps z ↦ z + û tanh(wᵀz + b), so
    log q_K(z_K) = log q₀(z₀) − Σ_k log |1 + û_kᵀψ_k(z_{k−1})| (Rezende & Mohamed 2015, eq. 13).

    ``amortized=true``: the encoder outputs every flow's (u, w, b) for its data point,
    K(2D + 1) numbers after (μ, log σ²); a zero output is the identity flow.
    ``amortized=false``: one (u, w, b) per flow shared by all data points, learned parameters
    starting at u = b = 0 (the identity) and w ~ N(0, ``init_std``²) (w ≠ 0 so that u gets a
    gradient).
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
        return self.num_flows * (2 * latent_dim + 1) if self.amortized else 0

    def build(self, latent_dim: int) -> None:
        if self.amortized:
            return
        shape = (self.num_flows, latent_dim)
        self.u = nn.Parameter(torch.zeros(shape))
        self.w = nn.Parameter(self.init_std * torch.randn(shape))
        self.b = nn.Parameter(torch.zeros(self.num_flows))

    def flow_parameters(self, flow_inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(u, w, b): [K, ..., D], [K, ..., D], [K, ...] (``...`` = the batch if amortised)."""
        if not self.amortized:
            return self.u.float(), self.w.float(), self.b.float()
        dim = self.latent_dim
        per_flow = flow_inputs.unflatten(-1, (self.num_flows, 2 * dim + 1)).movedim(-2, 0)
        return per_flow[..., :dim], per_flow[..., dim : 2 * dim], per_flow[..., 2 * dim]

    def transforms(self, flow_inputs: Tensor) -> list[Transform]:
        u, w, b = self.flow_parameters(flow_inputs)
        return [PlanarTransform(u[k], w[k], b[k]) for k in range(self.num_flows)]
