"""Interface of a training objective and its named per-data-point outputs."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from vaelab.schedules.base import KLWeighting
from vaelab.vae import VAE


@dataclass
class ObjectiveOutput:
    """Per-data-point terms, each of shape [B], in nats.

    ``bound`` is the β = 1 lower bound on log p(x) the objective estimates (the ELBO,
    or the IWAE bound); ``recon`` = −E_q[log p(x|z)] and ``kl`` = KL(q(z|x) || p(z)).
    """

    recon: Tensor
    kl: Tensor
    bound: Tensor
    kl_per_dim: Tensor | None = None  # [B, D] when the posterior factorises


class Objective:
    """Computes :class:`ObjectiveOutput` for a batch and the loss to minimise."""

    def __call__(self, vae: VAE, x: Tensor) -> ObjectiveOutput:
        raise NotImplementedError

    def loss(self, out: ObjectiveOutput, weighting: KLWeighting, step: int) -> Tensor:
        """Per-data-point loss [B]: recon + weighted KL (−ELBO when β = 1)."""
        return out.recon + weighting.penalty(out.kl, out.kl_per_dim, step)
