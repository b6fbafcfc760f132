"""Free bits (Kingma et al. 2016, eq. 15): each latent dimension's KL is floored at λ."""

from __future__ import annotations

from torch import Tensor
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.schedules.base import Weighting
from vaelab.schema import NonNegativeFloat, checked_arguments


@checked_arguments("beta")
class FreeBits(Weighting):
    """Penalty Σ_j max(λ, KL̄_j) with KL̄_j the batch mean of dimension j's KL, so there is
    no pressure on a dimension while it carries fewer than λ nats. Needs per-dimension KL,
    i.e. a factorising posterior. ``beta(step)`` (logged as ``beta``) is 1.
    """

    def __init__(self, free_nats: NonNegativeFloat = 0.5) -> None:
        self.free_nats = float(free_nats)

    @override
    def beta(self, step: int) -> float:
        return 1.0

    @override
    def penalty(self, kl: Tensor, kl_per_dim: Tensor | None, step: int) -> Tensor:
        if kl_per_dim is None:
            raise VaelabError(
                "beta=free_bits needs the KL of each latent dimension, which a "
                "non-factorising posterior (posterior=full_covariance or a flow: planar, "
                "iaf, affine_coupling), prior (mixture, vamp, flow) or a hierarchy of "
                "stochastic layers (model=hierarchical_mlp, ladder_mlp) does not have; use "
                "posterior=diagonal with prior=standard_normal and a one-layer model, or "
                "another beta schedule"
            )
        floored = kl_per_dim.mean(0).clamp(min=self.free_nats).sum()
        return floored.expand_as(kl)
