"""The sliced-Wasserstein autoencoder (Kolouri, Pope, Martin & Rohde 2019, "Sliced-Wasserstein
Autoencoder: An Embarrassingly Simple Generative Model", ICLR)."""

from __future__ import annotations

import torch
from torch import Tensor

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.code_matching import CodeMatchingObjective
from vaelab.objectives.evidence import KLEstimator
from vaelab.schema import NonNegativeFloat, PositiveFloat, PositiveInt, checked_arguments


def random_directions(
    num: int, dim: int, like: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """``num`` directions θ_l drawn uniformly on the unit sphere S^(dim−1): [num, dim]."""
    normal = torch.randn(num, dim, generator=generator, device=like.device, dtype=like.dtype)
    return normal / normal.norm(dim=1, keepdim=True)


def sliced_wasserstein(samples: Tensor, reference: Tensor, directions: Tensor, p: float) -> Tensor:
    """SW_p^p between the empirical distributions of ``samples`` [M, D] and ``reference``
    [M, D] along ``directions`` [L, D]: (1/L) Σ_l (1/M) Σ_m |θ_l·x_(m) − θ_l·y_(m)|^p, the
    projections sorted (Kolouri et al. 2019, eq. 10 for SW_c, its Monte-Carlo estimate with
    sorted one-dimensional samples as in Algorithm 1: in one dimension the optimal transport
    plan matches order statistics). Zero for identical samples; for one-dimensional
    Gaussians N(m₁, s₁²), N(m₂, s₂²) and p = 2 it tends to (m₁ − m₂)² + (s₁ − s₂)²."""
    if samples.shape != reference.shape:
        raise VaelabError(
            f"the sliced Wasserstein distance compares as many codes as prior draws, got "
            f"{tuple(samples.shape)} and {tuple(reference.shape)}"
        )
    projected = torch.sort(samples @ directions.T, dim=0).values  # [M, L]
    projected_reference = torch.sort(reference @ directions.T, dim=0).values
    return (projected - projected_reference).abs().pow(p).mean()


@checked_arguments("objective")
class SWAE(CodeMatchingObjective):
    """SWAE (Kolouri et al. 2019, eq. 14 and Algorithm 1): minimise
    E[c(x, ψ(φ(x)))] + λ·SW_p^p(q(z), p(z)), the cost c = −log p(x|z) of the model's
    likelihood (or the reconstruction loss in its place) and the sliced distance between the
    batch's codes and as many prior draws along ``num_projections`` = L fresh random
    directions per step (:func:`sliced_wasserstein`; the paper's p = 2 and L = 50 on MNIST).
    ``deterministic_encoder: true`` is the paper's encoder φ (see
    :class:`~vaelab.objectives.code_matching.CodeMatchingObjective` for what is logged)."""

    option_name = "swae"
    divergence_name = "sliced_wasserstein"
    weighting_reason = "λ weights the sliced Wasserstein distance, β does not"

    def __init__(
        self,
        lambda_: NonNegativeFloat = 100.0,
        num_projections: PositiveInt = 50,
        p: PositiveFloat = 2.0,
        deterministic_encoder: bool = True,
        kl: KLEstimator = "auto",
    ) -> None:
        super().__init__(lambda_, deterministic_encoder, kl)
        self.num_projections = int(num_projections)
        self.p = float(p)

    def divergence(self, model: LatentVariableModel, z: Tensor) -> Tensor:
        """SW_p^p between the codes z [B, D] and B prior draws, along fresh directions."""
        prior_codes = model.prior.sample(z.shape[0]).to(z.dtype)
        directions = random_directions(self.num_projections, z.shape[-1], z)
        return sliced_wasserstein(z, prior_codes, directions, self.p)
