"""Ada-GVAE and Ada-ML-VAE: weakly supervised disentanglement from pairs of observations that
share an unknown set of factors (Locatello et al. 2020, "Weakly-Supervised Disentanglement
Without Compromises", ICML, §4).

For a pair (x₁, x₂) with diagonal Gaussian posteriors q(z|x₁), q(z|x₂), the shared latent
dimensions are estimated from δᵢ = KL(q(zᵢ|x₁) ‖ q(zᵢ|x₂)) with the adaptive threshold
τ = ½ (maxᵢ δᵢ + minᵢ δᵢ): dimension i counts as shared when δᵢ < τ (the paper's heuristic for an
unknown k; disentanglement_lib's two equal-width bins between min δ and max δ). On the shared
dimensions both views' posteriors are replaced by one aggregate a(q(zᵢ|x₁), q(zᵢ|x₂)) — the
arithmetic mean of the two Gaussians' moments for the Group-VAE (Ada-GVAE; Hosoya 2019), their
normalised product of experts for the ML-VAE (Ada-ML-VAE; Bouchacourt et al. 2018) — and each
view is trained on the β-VAE objective of its modified posterior q̃ (§4; the paper's equation
numbers were not checked against its text here, so none is quoted):

    E_q̃(z|x₁) log p(x₁|z) + E_q̃(z|x₂) log p(x₂|z) − β KL(q̃(z|x₁) ‖ p(z)) − β KL(q̃(z|x₂) ‖ p(z)).

``changed_dimensions=<k>`` replaces the threshold by the known-k rule (the k dimensions of
largest δ keep their own posteriors; §4 before the heuristic); k = the latent size averages
nothing and is the β-VAE. The batch is a datamodule's batch of pairs (data/pairs.py: the B
first views, then their B partners); data without pairs are refused in one line. Every logged
term is per observation (each view is a data point): ``recon`` = −E_q̃ log p(x|z), ``kl`` =
KL(q̃ ‖ p), ``elbo`` = −(recon + kl), a true lower bound on log p(x) of each view (any q̃ gives
one), and ``shared_dims``, the number of dimensions the pair's views share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

import torch
from torch import Tensor
from torch.distributions import Independent, Normal, kl_divergence
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.objectives.evidence import probe_latent
from vaelab.posteriors.structure import factorised_marginals, gaussian_moments
from vaelab.schedules.base import Weighting
from vaelab.schema import PositiveInt, checked_arguments

#: how the shared dimensions are chosen: the paper's adaptive threshold, or a known k
ChangedDimensions = Union[Literal["adaptive"], PositiveInt]  # noqa: UP007


@dataclass(frozen=True)
class DiagonalGaussian:
    """Means and variances [B, D] of factorised Gaussian posteriors."""

    mean: Tensor
    variance: Tensor

    def distribution(self) -> Independent:
        return Independent(Normal(self.mean, self.variance.sqrt()), 1)


@dataclass(frozen=True)
class AdaptedPosteriors:
    """q̃ of a batch of pairs' 2B views and ``shared`` [2B, D]: the dimensions replaced by
    the pair's aggregate (the same rows for both views of a pair)."""

    posterior: DiagonalGaussian
    shared: Tensor


def diagonal_gaussian(posterior) -> DiagonalGaussian | None:
    """A posterior's means and variances where it is a factorised Gaussian, else None."""
    moments = gaussian_moments(posterior)
    if moments is None or factorised_marginals(posterior) is None:
        return None
    return DiagonalGaussian(moments.mean, moments.covariance.diagonal(dim1=-2, dim2=-1))


def pair_divergence(first: DiagonalGaussian, second: DiagonalGaussian) -> Tensor:
    """δᵢ = KL(q(zᵢ|x₁) ‖ q(zᵢ|x₂)) per dimension [B, D] (closed form, torch.distributions)."""
    return kl_divergence(
        Normal(first.mean, first.variance.sqrt()), Normal(second.mean, second.variance.sqrt())
    )


def shared_by_threshold(divergence: Tensor) -> Tensor:
    """[B, D] bool: δᵢ < τ = ½ (max δ + min δ), the paper's adaptive estimate of the shared
    dimensions (a pair with all δ equal shares none)."""
    threshold = 0.5 * (divergence.amax(-1, keepdim=True) + divergence.amin(-1, keepdim=True))
    return divergence < threshold


def shared_by_count(divergence: Tensor, changed: int) -> Tensor:
    """[B, D] bool: all but the ``changed`` dimensions of largest δ (the known-k rule)."""
    rank = divergence.argsort(-1, descending=True).argsort(-1)
    return rank >= changed


@checked_arguments("objective")
class AdaptiveGroupObjective(Objective):
    """The pair objective of the module doc with the aggregate :meth:`aggregate`; Ada-GVAE and
    Ada-ML-VAE differ only there. The KL is closed form (a diagonal Gaussian q̃ against a
    factorised prior, ``prior.kl_per_dimension``), weighted by ``beta=`` like the β-VAE's."""

    bound_name = "elbo"
    term_names = ("recon", "kl", "shared_dims")
    option_name = "ada_gvae"

    def __init__(self, changed_dimensions: ChangedDimensions = "adaptive") -> None:
        super().__init__()
        self.changed_dimensions = changed_dimensions

    @property
    def option(self) -> str:
        return f"objective={self.option_name}"

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        if "input_shape" in data_info and data_info.get("pairs") is None:
            raise VaelabError(
                f"{self.option} trains on pairs of observations that share factors, but these "
                "data give single observations: use a factor data set with pairs, e.g. "
                "data=dsprites data.changed_factors=random (or experiment=weak_dsprites)"
            )
        structure = model.latent_structure
        if not structure.is_flat or not structure.encoded_posterior:
            raise VaelabError(
                f"{self.option} averages dimensions of one flat latent q(z|x); "
                f"{type(model).__name__}'s latent is not one (use a VAE with posterior=diagonal)"
            )
        probe = probe_latent(model)
        if diagonal_gaussian(probe.posterior) is None:
            raise VaelabError(
                f"{self.option} aggregates factorised Gaussian posteriors; the posterior "
                f"{type(probe.posterior).__name__} is not one: use posterior=diagonal"
            )
        if factorised_marginals(probe.prior) is None:
            raise VaelabError(
                f"{self.option} needs a prior that factorises over the latent dimensions; "
                f"{type(probe.prior).__name__} does not: use prior=standard_normal"
            )
        latent_dim = int(probe.posterior.event_shape[-1])
        if self.changed_dimensions != "adaptive" and self.changed_dimensions > latent_dim:
            raise VaelabError(
                f"objective.changed_dimensions={self.changed_dimensions} exceeds the latent "
                f"size {latent_dim}; choose 1 … {latent_dim} or adaptive"
            )

    @override
    def resolved_choices(self) -> dict[str, Any]:
        return {"kl_estimator": "analytic"}

    def aggregate(self, first: DiagonalGaussian, second: DiagonalGaussian) -> DiagonalGaussian:
        """a(q(zᵢ|x₁), q(zᵢ|x₂)) for every dimension [B, D]."""
        raise NotImplementedError

    def shared_dimensions(self, first: DiagonalGaussian, second: DiagonalGaussian) -> Tensor:
        """[B, D] bool: the dimensions the pair's views share."""
        divergence = pair_divergence(first, second)
        if self.changed_dimensions == "adaptive":
            return shared_by_threshold(divergence)
        return shared_by_count(divergence, int(self.changed_dimensions))

    def adapted_posteriors(self, posterior) -> AdaptedPosteriors:
        """q̃ of the 2B views [2B, D]: each view's own posterior, with the shared dimensions
        replaced by the pair's aggregate."""
        gaussian = diagonal_gaussian(posterior)
        half = len(gaussian.mean) // 2
        first = DiagonalGaussian(gaussian.mean[:half], gaussian.variance[:half])
        second = DiagonalGaussian(gaussian.mean[half:], gaussian.variance[half:])
        shared = self.shared_dimensions(first, second).repeat(2, 1)
        both = self.aggregate(first, second)
        adapted = DiagonalGaussian(
            torch.where(shared, both.mean.repeat(2, 1), gaussian.mean),
            torch.where(shared, both.variance.repeat(2, 1), gaussian.variance),
        )
        return AdaptedPosteriors(posterior=adapted, shared=shared)

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
        if len(x) % 2:
            raise VaelabError(
                f"{self.option} reads a batch as B first views then their B partners, but got "
                f"{len(x)} observations; use data with pairs (data.changed_factors=…)"
            )
        posterior = model.encode(x, y)
        adapted = self.adapted_posteriors(posterior)
        q = adapted.posterior.distribution()
        z = q.rsample()
        recon = -model.decode(z, y).log_prob(x)
        kl_per_dim = model.prior.kl_per_dimension(q.base_dist, y)
        kl = kl_per_dim.sum(-1)
        penalty = kl if weighting.is_identity else weighting.penalty(kl, kl_per_dim, step)
        return ObjectiveOutput(
            loss=recon + penalty,
            bound=-(recon + kl),
            terms={"recon": recon, "kl": kl, "shared_dims": adapted.shared.sum(-1).to(kl.dtype)},
            per_dimension={"kl": kl_per_dim},
        )


class AdaGVAE(AdaptiveGroupObjective):
    """Ada-GVAE (Locatello et al. 2020, §4 with the Group-VAE's aggregate, Hosoya 2019): the
    shared dimensions take the average of the two Gaussians, mean ½(μ₁ + μ₂) and variance
    ½(σ₁² + σ₂²) (disentanglement_lib's ``GroupVAEArgmax``)."""

    option_name = "ada_gvae"

    @override
    def aggregate(self, first: DiagonalGaussian, second: DiagonalGaussian) -> DiagonalGaussian:
        return DiagonalGaussian(
            0.5 * (first.mean + second.mean), 0.5 * (first.variance + second.variance)
        )


class AdaMLVAE(AdaptiveGroupObjective):
    """Ada-ML-VAE (Locatello et al. 2020, §4 with the ML-VAE's aggregate, Bouchacourt et al.
    2018): the product of the two Gaussians' experts, each to the power ½ and normalised —
    precision ½(1/σ₁² + 1/σ₂²), mean the precision-weighted ½(μ₁/σ₁² + μ₂/σ₂²)·σ̃²
    (disentanglement_lib's ``MLVaeArgmax``); identical views keep their posterior."""

    option_name = "ada_ml_vae"

    @override
    def aggregate(self, first: DiagonalGaussian, second: DiagonalGaussian) -> DiagonalGaussian:
        variance = 2 * first.variance * second.variance / (first.variance + second.variance)
        mean = 0.5 * (first.mean / first.variance + second.mean / second.variance) * variance
        return DiagonalGaussian(mean, variance)
