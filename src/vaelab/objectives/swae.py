"""The sliced-Wasserstein autoencoder (Kolouri, Pope, Martin & Rohde 2019, "Sliced-Wasserstein
Autoencoder: An Embarrassingly Simple Generative Model", ICLR)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import ObjectiveOutput
from vaelab.objectives.evidence import KLEstimator, LatentProbe
from vaelab.objectives.regularised import RegularisedELBO, batch_constant, distribution_name
from vaelab.objectives.wae_mmd import has_mean
from vaelab.schedules.base import Weighting
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
class SWAE(RegularisedELBO):
    """SWAE (Kolouri et al. 2019, eq. 14 and Algorithm 1): minimise
    E[c(x, ψ(φ(x)))] + λ·SW_p^p(q(z), p(z)), the cost c = −log p(x|z) of the model's
    likelihood (or the reconstruction loss in its place) and the sliced distance between the
    batch's codes and as many prior draws along ``num_projections`` = L fresh random
    directions per step (:func:`sliced_wasserstein`; the paper's p = 2 and L = 50 on MNIST).

    ``deterministic_encoder: true`` (the paper's encoder φ) codes each x as the mean of q(z|x):
    there is no ELBO then, nothing is logged as ``elbo`` and checkpoints watch ``val/loss``;
    the logged terms are ``recon`` and ``sliced_wasserstein`` (SW_p^p of the batch). With a
    stochastic encoder the code is one draw of q(z|x) and that draw's ELBO and KL are logged as
    terms, never trained on. λ replaces β: only ``beta=constant beta.value=1.0`` is accepted.
    """

    option_name = "swae"

    def __init__(
        self,
        lambda_: NonNegativeFloat = 100.0,
        num_projections: PositiveInt = 50,
        p: PositiveFloat = 2.0,
        deterministic_encoder: bool = True,
        kl: KLEstimator = "auto",
    ) -> None:
        super().__init__(kl)
        self.lambda_ = float(lambda_)
        self.num_projections = int(num_projections)
        self.p = float(p)
        self.deterministic_encoder = bool(deterministic_encoder)
        # instance attributes: what is logged depends on the encoder
        self.bound_name = None
        self.term_names = (
            ("recon", "sliced_wasserstein")
            if deterministic_encoder
            else ("recon", "sliced_wasserstein", "elbo", "kl")
        )

    @override
    def check_latent(self, probe: LatentProbe) -> None:
        if self.deterministic_encoder and not has_mean(probe.posterior):
            raise VaelabError(
                f"{self.option} objective.deterministic_encoder=true codes each x by the mean "
                f"of q(z|x); {distribution_name(probe.posterior)} has none in closed form: use "
                "objective.deterministic_encoder=false or posterior=diagonal"
            )

    @override
    def check_weighting(self, weighting: Weighting) -> None:
        self.refuse_weighting(weighting, "λ weights the sliced Wasserstein distance, β does not")

    @override
    def resolved_choices(self) -> dict[str, Any]:
        return {} if self.deterministic_encoder else super().resolved_choices()

    def distance(self, model: LatentVariableModel, z: Tensor) -> Tensor:
        """SW_p^p between the codes z [B, D] and B prior draws, along fresh directions."""
        prior_codes = model.prior.sample(z.shape[0]).to(z.dtype)
        directions = random_directions(self.num_projections, z.shape[-1], z)
        return sliced_wasserstein(z, prior_codes, directions, self.p)

    @override
    def forward(
        self,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        weighting: Weighting,
        step: int,
        split: str = "train",
    ) -> ObjectiveOutput:
        if self.deterministic_encoder:  # no ELBO: the code is the mean of q(z|x)
            z = model.encode(x, y).mean
            recon = -model.decode(z, y).log_prob(x)
            terms = {"recon": recon}
        else:
            evidence = self.evidence(model, x, y)
            z, recon = evidence.samples.z, evidence.recon
            terms = {"recon": recon, "elbo": evidence.elbo, "kl": evidence.kl}
        distance = batch_constant(self.distance(model, z), recon.shape[0])
        return ObjectiveOutput(
            loss=recon + self.lambda_ * distance,
            bound=None,
            terms={**terms, "sliced_wasserstein": distance},
        )
