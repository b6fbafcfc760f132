"""The ELBO's parts on one flat latent sample, shared by the objectives that add a regulariser
on the codes (β-TCVAE, FactorVAE, DIP-VAE, InfoVAE, WAE)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import Objective
from vaelab.objectives.elbo import (
    KL_ESTIMATORS,
    KLEstimator,
    has_analytic_kl,
    per_dimension_parts,
    probe_posterior_and_prior,
)
from vaelab.schedules.base import Weighting


@dataclass
class EncodedBatch:
    """One reparameterised code per data point of a batch of B and the ELBO's parts, in nats
    per data point: ``recon`` = −log p(x|z), ``kl`` = KL(q(z|x) || p(z)) (closed form or
    log q(z|x) − log p(z) on ``z``), ``kl_per_dim`` its [B, D] parts where both factorise."""

    posterior: Distribution
    z: Tensor
    recon: Tensor
    kl: Tensor
    kl_per_dim: Tensor | None

    @property
    def elbo(self) -> Tensor:
        return -(self.recon + self.kl)


def is_plain_weighting(weighting: Weighting) -> bool:
    """The weighting's penalty is β(step)·R (constant, warm-up, cyclical), not one that
    reshapes a KL (free bits, capacity)."""
    return type(weighting).penalty is Weighting.penalty


def per_dimension_marginals(posterior: Distribution) -> Distribution:
    """q(z_d|x) for each dimension d: a Normal with batch [B, D] (from a diagonal Gaussian
    posterior, or the diagonal of a full-covariance one)."""
    if isinstance(posterior, Independent) and isinstance(posterior.base_dist, Normal):
        return posterior.base_dist
    if isinstance(posterior, MultivariateNormal):
        scale = posterior.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
        return Normal(posterior.loc, scale)
    raise VaelabError(
        f"this objective needs the per-dimension marginals of q(z|x); the posterior "
        f"{type(posterior).__name__} has none in closed form: use posterior=diagonal or "
        "posterior=full_covariance"
    )


def posterior_covariance(posterior: Distribution) -> Tensor:
    """Σ(x) of a Gaussian q(z|x): [B, D, D]."""
    if isinstance(posterior, MultivariateNormal):
        return posterior.covariance_matrix
    return torch.diag_embed(per_dimension_marginals(posterior).variance)


def is_standard_normal(prior: Distribution) -> bool:
    """p(z) is N(0, I) (a diagonal or full Gaussian with zero mean and unit covariance)."""
    if isinstance(prior, Independent) and isinstance(prior.base_dist, Normal):
        loc, covariance = prior.base_dist.loc, torch.diag_embed(prior.base_dist.variance)
    elif isinstance(prior, MultivariateNormal):
        loc, covariance = prior.loc, prior.covariance_matrix
    else:
        return False
    identity = torch.eye(covariance.shape[-1], dtype=covariance.dtype, device=covariance.device)
    return bool((loc == 0).all() and torch.allclose(covariance, identity))


class RegularisedELBO(Objective):
    """Base of the objectives that add a regulariser on the codes to the ELBO's parts.

    ``<stage>/elbo`` stays the ELBO of the same sample (−recon − KL, the KL chosen by ``kl``
    as in :class:`~vaelab.objectives.elbo.ELBO`); the family's own terms are logged under
    their own names. These objectives need one flat latent vector per data point (the
    regularisers compare codes across the batch), so models that override
    ``sample_latents`` (hierarchies) are refused.
    """

    bound_name = "elbo"
    #: the option name in error messages (``objective=<name>``)
    option_name = "elbo"

    def __init__(self, kl: KLEstimator = "auto") -> None:
        super().__init__()
        if kl not in KL_ESTIMATORS:
            raise VaelabError(f"objective.kl must be one of {', '.join(KL_ESTIMATORS)}, got {kl!r}")
        self.kl = kl
        self.kl_estimator: str = "analytic" if kl == "auto" else kl

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        if type(model).sample_latents is not LatentVariableModel.sample_latents:
            raise VaelabError(
                f"objective={self.option_name} compares one flat latent vector per data point "
                f"across the batch; {type(model).__name__} has a structured latent (it "
                "overrides sample_latents): use objective=elbo"
            )
        posterior, prior = probe_posterior_and_prior(model)
        analytic = has_analytic_kl(posterior, prior)
        if self.kl == "analytic" and not analytic:
            raise VaelabError(
                f"objective.kl=analytic: torch.distributions has no closed-form KL between "
                f"the posterior ({type(posterior).__name__}) and the prior "
                f"({type(prior).__name__}); use objective.kl=auto or objective.kl=monte_carlo"
            )
        if self.kl == "auto":
            self.kl_estimator = "analytic" if analytic else "monte_carlo"

    @override
    def resolved_choices(self) -> dict[str, Any]:
        return {"kl_estimator": self.kl_estimator}

    def refuse_weighting(self, weighting: Weighting, reason: str) -> None:
        """Refuse any ``beta=`` other than constant β = 1, saying why."""
        if not weighting.is_identity:
            raise VaelabError(
                f"objective={self.option_name}: {reason}; use beta=constant beta.value=1.0"
            )

    def encode_batch(
        self, model: LatentVariableModel, x: Tensor, y: Tensor | None, deterministic: bool = False
    ) -> EncodedBatch:
        """q(z|x), one code per data point (a reparameterised draw, or the mean when
        ``deterministic``) and the ELBO's reconstruction and KL terms of that code."""
        posterior = model.encode(x, y)
        z = posterior.mean if deterministic else posterior.rsample()
        recon = -model.decode(z, y).log_prob(x)
        prior = model.prior.distribution()
        factorised = per_dimension_parts(posterior, prior)
        if self.kl_estimator == "analytic":
            if factorised:
                kl_per_dim = torch.distributions.kl_divergence(posterior.base_dist, prior.base_dist)
                kl = kl_per_dim.sum(-1)
            else:
                kl_per_dim, kl = None, torch.distributions.kl_divergence(posterior, prior)
        elif factorised:
            kl_per_dim = posterior.base_dist.log_prob(z) - prior.base_dist.log_prob(z)
            kl = kl_per_dim.sum(-1)
        else:
            kl_per_dim, kl = None, posterior.log_prob(z) - prior.log_prob(z)
        return EncodedBatch(posterior=posterior, z=z, recon=recon, kl=kl, kl_per_dim=kl_per_dim)


def batch_constant(value: Tensor, batch_size: int) -> Tensor:
    """A batch-level quantity (a covariance penalty, an MMD) as a [B] per-data-point term."""
    return value.expand(batch_size)
