"""β-TCVAE (Chen, Li, Grosse & Duvenaud 2018, "Isolating Sources of Disentanglement in VAEs")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

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
    distribution_name,
    is_plain_weighting,
)
from vaelab.posteriors.structure import dimension_marginals, factorised_marginals
from vaelab.schedules.base import Weighting
from vaelab.schema import NonNegativeFloat, checked_arguments

AggregateEstimator = Literal["stratified", "weighted"]


def log_aggregate_density(
    pair_log_densities: Tensor, dataset_size: int, estimator: AggregateEstimator
) -> Tensor:
    """log q(z_i) from a batch, q(z) = (1/N) Σ_n q(z|x_n) the aggregate posterior of a data
    set of N points. ``pair_log_densities`` [B, B, ...] holds log q(z_i | x_j) (row i: the
    code drawn for data point i; column j: the batch's data points).

    ``weighted`` is minibatch-weighted sampling (Chen et al. 2018, §3.1 eq. 5):
    log q(z_i) ≈ log Σ_j q(z_i|x_j) − log(N·B). ``stratified`` is minibatch-stratified
    sampling (their appendix C): stratum one is x_i itself (weight 1/N), stratum two the other
    N − 1 points, of which the batch's B − 1 others are a uniform sample (weight
    (N − 1)/(N(B − 1)) each); with B = N it is the exact mixture density.
    """
    batch_size = pair_log_densities.shape[0]
    if batch_size > dataset_size:
        raise VaelabError(
            f"a batch of {batch_size} codes cannot come from a data set of {dataset_size}"
        )
    if estimator == "weighted":
        return torch.logsumexp(pair_log_densities, dim=1) - math.log(dataset_size * batch_size)
    if batch_size < 2:
        raise VaelabError("minibatch-stratified sampling needs batches of at least 2 points")
    others = math.log((dataset_size - 1) / (dataset_size * (batch_size - 1)))
    log_weights = torch.full(
        (batch_size, batch_size), others, dtype=pair_log_densities.dtype,
        device=pair_log_densities.device,
    )  # fmt: skip
    log_weights.diagonal().fill_(-math.log(dataset_size))
    log_weights = log_weights.reshape(
        batch_size, batch_size, *([1] * (pair_log_densities.dim() - 2))
    )
    return torch.logsumexp(pair_log_densities + log_weights, dim=1)


@dataclass
class KLDecomposition:
    """The three parts of log q(z|x) − log p(z) for each code z ~ q(z|x) of a batch, in nats
    per data point (Chen et al. 2018, eq. 2); they sum to it exactly, and in expectation to
    the KL averaged over the data."""

    mutual_information: Tensor
    total_correlation: Tensor
    dimension_wise_kl: Tensor


def decompose_kl(
    posterior: Distribution,
    z: Tensor,
    log_prior: Tensor,
    dataset_size: int,
    estimator: AggregateEstimator,
) -> KLDecomposition:
    """Index-code MI log q(z|x) − log q(z), total correlation log q(z) − Σ_d log q(z_d) and
    dimension-wise KL Σ_d log q(z_d) − log p(z) of the codes ``z`` [B, D] drawn from
    ``posterior`` (batch [B]), with log q(z) and log q(z_d) estimated from the batch."""
    pairs = z.unsqueeze(1)  # [B, 1, D]: code i against every data point j of the batch
    log_joint = log_aggregate_density(posterior.log_prob(pairs), dataset_size, estimator)
    marginals = dimension_marginals(posterior)
    if marginals is None:
        raise VaelabError(
            f"the KL decomposition needs the marginals q(z_d|x) of the posterior in closed "
            f"form; {type(posterior).__name__} has none: use posterior=diagonal or "
            "posterior=full_covariance"
        )
    log_marginals = log_aggregate_density(marginals.log_prob(pairs), dataset_size, estimator)
    log_product = log_marginals.sum(-1)
    return KLDecomposition(
        mutual_information=posterior.log_prob(z) - log_joint,
        total_correlation=log_joint - log_product,
        dimension_wise_kl=log_product - log_prior,
    )


@checked_arguments("objective")
class BetaTCVAE(RegularisedELBO):
    """β-TCVAE (Chen et al. 2018, eq. 4): E_q[log p(x|z)] − α·I_q(z; n) − β·TC(q(z)) −
    γ·Σ_d KL(q(z_d) || p(z_d)), the average KL split by their eq. 2 into the index-code
    mutual information, the total correlation of the aggregate posterior q(z) and the
    dimension-wise KL, each logged (``mutual_information``, ``total_correlation``,
    ``dimension_wise_kl``) in nats per data point.

    β is the ``beta=`` group's weight β(step) (warm-up and cyclical schedules apply to the
    TC); ``objective=beta_tcvae`` sets ``beta.value=6``, Chen et al.'s dSprites β, unless the
    command line or an experiment gives another (β = 1 is the ELBO). α and γ are
    ``objective.alpha`` and ``objective.gamma``. log q(z) and log q(z_d) are estimated from the
    batch by minibatch-stratified (default) or minibatch-weighted sampling, both needing the
    training set's size N, which the datamodule hands over (``num_train``; on val/test batches the
    size of that split). The loss is −ELBO + (α − 1)·MI + (β − 1)·TC + (γ − 1)·dim-KL with
    the ELBO's own KL (closed form where one exists): the paper's objective in expectation,
    and exactly −ELBO at α = β = γ = 1. The prior must factorise over the latent dimensions
    (the dimension-wise KL is defined only then).
    """

    term_names = ("recon", "kl", "mutual_information", "total_correlation", "dimension_wise_kl")
    option_name = "beta_tcvae"

    def __init__(
        self,
        alpha: NonNegativeFloat = 1.0,
        gamma: NonNegativeFloat = 1.0,
        estimator: AggregateEstimator = "stratified",
        kl: KLEstimator = "auto",
    ) -> None:
        super().__init__(kl)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.estimator = estimator
        self.split_sizes: dict[str, int] = {}

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        super().setup(model, weighting, data_info)
        for split in ("train", "val", "test"):
            if f"num_{split}" in data_info:
                self.split_sizes[split] = int(data_info[f"num_{split}"])

    @override
    def check_latent(self, probe: LatentProbe) -> None:
        if dimension_marginals(probe.posterior) is None:
            raise VaelabError(
                f"{self.option} estimates log q(z_d) from the marginals q(z_d|x) of the "
                f"posterior; {distribution_name(probe.posterior)} has none in closed form: use "
                "posterior=diagonal or posterior=full_covariance"
            )
        if factorised_marginals(probe.prior) is None:
            raise VaelabError(
                f"{self.option} splits off a dimension-wise KL, which needs a prior that "
                f"factorises over the latent dimensions; {distribution_name(probe.prior)} does "
                "not: use prior=standard_normal"
            )

    @override
    def check_weighting(self, weighting: Weighting) -> None:
        if not is_plain_weighting(weighting):
            raise VaelabError(
                f"{self.option} puts β on the total correlation; {type(weighting).__name__}"
                " reshapes a KL instead: use beta=constant, linear_warmup or cyclical"
            )

    def dataset_size(self, split: str) -> int:
        """N of the split the batch comes from."""
        size = self.split_sizes.get(split, self.split_sizes.get("train"))
        if size is None:
            raise VaelabError(
                "objective=beta_tcvae estimates log q(z) with the training set's size, which "
                "the datamodule hands over when training starts; call objective.setup(model, "
                "weighting, {'num_train': N}) when using it outside vaelab-train"
            )
        return size

    @override
    def regularise(
        self,
        model: LatentVariableModel,
        evidence: EvidenceTerms,
        weighting: Weighting,
        step: int,
        split: str,
    ) -> Regularised:
        samples = evidence.samples
        parts = decompose_kl(
            samples.posterior,
            samples.z,
            samples.log_prior,
            self.dataset_size(split),
            self.estimator,
        )
        beta = weighting.beta(step)
        loss = (
            evidence.recon
            + evidence.kl
            + (self.alpha - 1) * parts.mutual_information
            + (beta - 1) * parts.total_correlation
            + (self.gamma - 1) * parts.dimension_wise_kl
        )
        return Regularised(
            loss=loss,
            terms={
                "mutual_information": parts.mutual_information,
                "total_correlation": parts.total_correlation,
                "dimension_wise_kl": parts.dimension_wise_kl,
            },
        )
