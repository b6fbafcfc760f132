"""DIP-VAE-I and DIP-VAE-II (Kumar, Sattigeri & Balakrishnan 2018, "Variational Inference of
Disentangled Latent Concepts from Unlabeled Observations", ICLR)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torch.distributions import Distribution
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.evidence import EvidenceTerms, KLEstimator, LatentProbe
from vaelab.objectives.regularised import (
    Regularised,
    RegularisedELBO,
    batch_constant,
    distribution_name,
)
from vaelab.posteriors.structure import gaussian_moments, is_standard_normal
from vaelab.schedules.base import Weighting
from vaelab.schema import NonNegativeFloat, checked_arguments

Variant = Literal["i", "ii"]


def code_covariance(posterior: Distribution, variant: Variant) -> Tensor:
    """The [D, D] covariance DIP-VAE matches to the identity, over a batch's q(z|x):
    DIP-VAE-I: Cov_p(x)[μ(x)] of the encoder means (Kumar et al. 2018, eq. 6);
    DIP-VAE-II: Cov_q(z)[z] = E_p(x)[Σ(x)] + Cov_p(x)[μ(x)] of the aggregate posterior
    (their eq. 7), both with the batch as p(x) (population covariance, no Bessel term)."""
    moments = gaussian_moments(posterior)
    if moments is None:
        raise VaelabError(
            f"DIP-VAE needs the mean and covariance of q(z|x) in closed form; "
            f"{type(posterior).__name__} is not Gaussian: use posterior=diagonal or "
            "posterior=full_covariance"
        )
    means = moments.mean
    covariance = torch.cov(means.T, correction=0).reshape(means.shape[-1], means.shape[-1])
    if variant == "ii":
        covariance = covariance + moments.covariance.mean(0)
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


@checked_arguments("objective")
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
        lambda_off_diagonal: NonNegativeFloat = 10.0,
        lambda_diagonal: NonNegativeFloat = 100.0,
        kl: KLEstimator = "auto",
    ) -> None:
        super().__init__(kl)
        self.variant = variant
        self.option_name = f"dip_vae_{variant}"
        self.lambda_off_diagonal = float(lambda_off_diagonal)
        self.lambda_diagonal = float(lambda_diagonal)

    @override
    def check_latent(self, probe: LatentProbe) -> None:
        if gaussian_moments(probe.posterior) is None:
            raise VaelabError(
                f"{self.option} matches the covariance of the encoder's Gaussian moments; the "
                f"posterior {distribution_name(probe.posterior)} is not Gaussian: use "
                "posterior=diagonal or posterior=full_covariance"
            )
        if not is_standard_normal(probe.prior):
            raise VaelabError(
                f"{self.option} matches the codes' covariance to the identity of p(z) = "
                f"N(0, I); {distribution_name(probe.prior)} is another prior: use "
                "prior=standard_normal"
            )

    @override
    def regularise(
        self,
        model: LatentVariableModel,
        evidence: EvidenceTerms,
        weighting: Weighting,
        step: int,
        split: str,
    ) -> Regularised:
        penalty = covariance_penalty(code_covariance(evidence.samples.posterior, self.variant))
        regulariser = (
            self.lambda_off_diagonal * penalty.off_diagonal
            + self.lambda_diagonal * penalty.diagonal
        )
        batch_size = evidence.recon.shape[0]
        return Regularised(
            loss=evidence.recon
            + weighting.penalty(evidence.kl, evidence.kl_per_dim, step)
            + batch_constant(regulariser, batch_size),
            terms={
                "covariance_off_diagonal": batch_constant(penalty.off_diagonal, batch_size),
                "covariance_diagonal": batch_constant(penalty.diagonal, batch_size),
            },
        )
