"""What the flow samplers (``maf``, ``iaf``) share: a stack of autoregressive affine steps
(vaelab's MADE, ``flows/made.py``, inside the IAF step of ``flows/iaf.py``) over standardised
codes, trained by maximum likelihood on the training codes with Adam."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import (
    AffineTransform,
    Independent,
    Normal,
    Transform,
    TransformedDistribution,
)

from vaelab.flows.iaf import InverseAutoregressiveTransform
from vaelab.flows.made import MADE
from vaelab.priors.base import drawing_with
from vaelab.samplers.base import FitSummary, Sampler, TrainingCodes, codes_in_batches


class FlowDensitySampler(Sampler):
    """q_ex(z) = N(0, I) pushed through ``num_flows`` autoregressive steps (alternating order)
    and the codes' per-dimension standardisation. A subclass says in which direction the
    steps' networks read (:meth:`step_transforms`)."""

    def __init__(
        self,
        num_flows: int = 5,
        hidden_dims: Sequence[int] = (128, 128),
        epochs: int = 20,
        batch_size: int = 256,
        lr: float = 1e-3,
    ) -> None:
        super().__init__()
        self.num_flows = int(num_flows)
        self.hidden_dims = tuple(int(width) for width in hidden_dims)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)

    def settings(self) -> dict[str, Any]:
        return {
            "num_flows": self.num_flows,
            "hidden_dims": list(self.hidden_dims),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
        }

    def build(self, latent_dim: int) -> None:
        super().build(latent_dim)
        self.networks = nn.ModuleList(
            MADE(self.latent_dim, self.hidden_dims, 0, reverse=bool(step % 2))
            for step in range(self.num_flows)
        )
        self.register_buffer("code_mean", torch.zeros(self.latent_dim))
        self.register_buffer("code_scale", torch.ones(self.latent_dim))

    def autoregressive_steps(self) -> list[InverseAutoregressiveTransform]:
        """One affine step per network: x ↦ m(x) + exp(s(x)) ⊙ x, with m and s reading x."""
        return [
            InverseAutoregressiveTransform(network, None, gated=False, gate_bias=0.0)
            for network in self.networks
        ]

    def step_transforms(self) -> list[Transform]:
        """The steps in the generative direction (noise → standardised code)."""
        raise NotImplementedError

    def distribution(self) -> TransformedDistribution:
        base = Independent(
            Normal(torch.zeros_like(self.code_mean), torch.ones_like(self.code_scale)), 1
        )
        unstandardise = AffineTransform(self.code_mean, self.code_scale, event_dim=1)
        return TransformedDistribution(base, [*self.step_transforms(), unstandardise])

    def log_prob(self, z: Tensor) -> Tensor:
        return self.distribution().log_prob(z.float().to(self.code_mean.device))

    @torch.no_grad()
    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        with drawing_with(generator):
            return self.distribution().sample((int(num),))

    def fit(self, codes: TrainingCodes, generator: torch.Generator) -> FitSummary:
        with drawing_with(generator):  # the networks' initialisation
            self.build(codes.latent_dim)
        mean, scale = codes.standardisation()
        self.code_mean.copy_(mean)
        self.code_scale.copy_(scale)
        optimizer = torch.optim.Adam(self.networks.parameters(), lr=self.lr)
        data = codes.mean.float()
        steps = 0
        for _ in range(self.epochs):
            for batch in codes_in_batches(data, self.batch_size, generator):
                loss = -self.log_prob(batch).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
        with torch.no_grad():
            mean_log_likelihood = float(
                torch.cat([self.log_prob(chunk) for chunk in data.split(4096)]).mean()
            )
        return FitSummary(train_log_likelihood=mean_log_likelihood, steps=steps)
