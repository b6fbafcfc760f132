"""DIP-VAE-I and DIP-VAE-II (Kumar, Sattigeri & Balakrishnan 2018, "Variational Inference of
Disentangled Latent Concepts from Unlabeled Observations", ICLR)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from torch import Tensor
from torch.distributions import Distribution
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import ObjectiveOutput
from vaelab.objectives.elbo import KLEstimator, probe_posterior_and_prior
from vaelab.objectives.regularised import (
    RegularisedELBO,
    batch_constant,
    is_standard_normal,
    posterior_covariance,
)
from vaelab.schedules.base import Weighting
from vaelab.schema import Range

Variant = Literal["i", "ii"]
VARIANTS = ("i", "ii")


def code_covariance(posterior: Distribution, variant: Variant) -> Tensor:
    """The [D, D] covariance DIP-VAE matches to the identity, over a batch's q(z|x):
    DIP-VAE-I: Cov_p(x)[μ(x)] of the encoder means (Kumar et al. 2018, eq. 6);
    DIP-VAE-II: Cov_q(z)[z] = E_p(x)[Σ(x)] + Cov_p(x)[μ(x)] of the aggregate posterior
    (their eq. 7), both with the batch as p(x) (population covariance, no Bessel term)."""
    means = posterior.mean
    covariance = torch.cov(means.T, correction=0).reshape(means.shape[-1], means.shape[-1])
    if variant == "ii":
        covariance = covariance + posterior_covariance(posterior).mean(0)
    return covariance


@dataclass
class CovariancePenalty:
    """Σ_{i≠j} C_ij² and Σ_i (C_ii − 1)² of a code covariance C."""

    off_diagonal: Tensor
    diagonal: Tensor


def covariance_penalty(covariance: Tensor) -> CovariancePenalty:
    diagonal = covariance.diagonal()
    return CovariancePenalty(
        off_diagonal=covariance.square().sum() - diagonal.square().sum(),
        diagonal=(diagonal - 1).square().sum(),
    )


class DIPVAE(RegularisedELBO):
    """DIP-VAE: ELBO − λ_od Σ_{i≠j} [C]_ij² − λ_d Σ_i ([C]_ii − 1)² (Kumar et al. 2018,
    eqs. 6-7), C the covariance of the encoder means (``variant: i``) or of the aggregate
    posterior q(z) (``variant: ii``) over the batch, matched to p(z) = N(0, I)'s identity.

    The two sums are logged unweighted as ``covariance_off_diagonal`` and
    ``covariance_diagonal`` (batch-level, squared covariances, not nats); the ``beta=``
    group weights the ELBO's KL as in a β-VAE (β = 1: the paper's objective). The prior must
    be N(0, I).
    """

    term_names = ("recon", "kl", "covariance_off_diagonal", "covariance_diagonal")

    def __init__(
        self,
        variant: Variant = "i",
        lambda_off_diagonal: Annotated[float, Range(ge=0)] = 10.0,
        lambda_diagonal: Annotated[float, Range(ge=0)] = 100.0,
        kl: KLEstimator = "auto",
    ) -> None:
        super().__init__(kl)
        if variant not in VARIANTS:
            raise VaelabError(
                f"objective.variant must be i (covariance of the encoder means) or ii "
                f"(covariance of the aggregate posterior), got {variant!r}"
            )
        if lambda_off_diagonal < 0 or lambda_diagonal < 0:
            raise VaelabError(
                "objective.lambda_off_diagonal and objective.lambda_diagonal must be >= 0, got "
                f"{lambda_off_diagonal} and {lambda_diagonal}"
            )
        self.variant = variant
        self.option_name = f"dip_vae_{variant}"
        self.lambda_off_diagonal = float(lambda_off_diagonal)
        self.lambda_diagonal = float(lambda_diagonal)

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        super().setup(model, weighting, data_info)
        _, prior = probe_posterior_and_prior(model)
        if not is_standard_normal(prior):
            raise VaelabError(
                f"objective={self.option_name} matches the codes' covariance to the identity "
                f"of p(z) = N(0, I); {type(model.prior).__name__} is another prior: use "
                "prior=standard_normal"
            )

    @override
    def forward(
        self,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        weighting: Weighting,
        step: int,
    ) -> ObjectiveOutput:
        encoded = self.encode_batch(model, x, y)
        penalty = covariance_penalty(code_covariance(encoded.posterior, self.variant))
        regulariser = (
            self.lambda_off_diagonal * penalty.off_diagonal
            + self.lambda_diagonal * penalty.diagonal
        )
        batch_size = encoded.recon.shape[0]
        return ObjectiveOutput(
            loss=encoded.recon
            + weighting.penalty(encoded.kl, encoded.kl_per_dim, step)
            + batch_constant(regulariser, batch_size),
            bound=encoded.elbo,
            terms={
                "recon": encoded.recon,
                "kl": encoded.kl,
                "covariance_off_diagonal": batch_constant(penalty.off_diagonal, batch_size),
                "covariance_diagonal": batch_constant(penalty.diagonal, batch_size),
            },
            per_dimension={"kl": encoded.kl_per_dim} if encoded.kl_per_dim is not None else {},
        )
