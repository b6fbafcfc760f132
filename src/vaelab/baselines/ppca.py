"""Probabilistic PCA (Tipping & Bishop 1999): p(z) = N(0, I), p(x|z) = N(Wz + μ, σ²I), so
p(x) = N(μ, WWᵀ + σ²I) and the posterior p(z|x) is Gaussian; everything in closed form."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import (
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    kl_divergence,
)
from typing_extensions import override

from vaelab.baselines.closed_form import ClosedFormEvaluation, ClosedFormModel
from vaelab.baselines.isotropic_gaussian import IsotropicGaussianLikelihood
from vaelab.baselines.moments import principal_axes
from vaelab.errors import VaelabError
from vaelab.likelihoods.base import ImageDistribution
from vaelab.objectives.base import ObjectiveOutput
from vaelab.priors.base import Prior
from vaelab.priors.standard_normal import StandardNormalPrior
from vaelab.schema import ImageShape, PositiveInt, checked_arguments

#: σ² below this fraction of the mean eigenvalue means the data lie in a K-dim subspace
DEGENERATE_NOISE = 1e-12
#: the term that holds the exact log p(x)
LOG_LIKELIHOOD = "log_likelihood"


@dataclass
class ExactELBO:
    """The ELBO's terms [B] at the exact posterior, in closed form (float64):
    ``recon`` = −E_q log p(x|z), ``kl`` = KL(q(z|x) || p(z)), ``elbo`` = −(recon + kl)."""

    recon: Tensor
    kl: Tensor
    elbo: Tensor


class ExactLogLikelihood(ClosedFormEvaluation):
    """PPCA's evaluation, in nats per image: ``<stage>/log_likelihood`` = exact log p(x) (a
    Gaussian density over pixel values, comparable with a Gaussian-likelihood VAE's ELBO);
    ``<stage>/elbo`` = −(recon + kl) at the exact posterior, which equals log p(x) (the bound
    is tight), with its ``recon`` and ``kl`` as for a VAE; ``<stage>/loss`` = −elbo."""

    bound_name = "elbo"
    term_names = ("recon", "kl", LOG_LIKELIHOOD)

    def evaluate(self, model: ProbabilisticPCA, x: Tensor, y: Tensor | None) -> ObjectiveOutput:
        terms = model.elbo_terms(x)
        return ObjectiveOutput(
            loss=-terms.elbo,
            bound=terms.elbo,
            terms={
                "recon": terms.recon,
                "kl": terms.kl,
                LOG_LIKELIHOOD: model.exact_log_likelihood(x, y),
            },
        )


@checked_arguments("model")
class ProbabilisticPCA(ClosedFormModel):
    """``vaelab-train model=ppca``: maximum-likelihood PPCA fitted in one pass. With S's
    eigenvalues λ_1 ≥ … ≥ λ_D and eigenvectors U (Tipping & Bishop 1999, eqs. 7–8):
    σ² = (1/(D−K)) Σ_{j>K} λ_j and W = U_K (Λ_K − σ²I)^{1/2} (rotation R = I).

    ``encode`` returns the exact posterior q(z|x) = p(z|x) = N(M⁻¹Wᵀ(x − μ), σ²M⁻¹) with
    M = WᵀW + σ²I (eq. 6), in float64, so the ELBO equals log p(x) and every importance
    weight log p(x, z) − log q(z|x) is log p(x); ``decode`` is p(x|z) = N(Wz + μ, σ²I);
    ``prior`` is N(0, I); :meth:`exact_log_likelihood` is log N(x; μ, WWᵀ + σ²I).
    """

    has_exact_log_likelihood = True
    likelihood_is_continuous = True

    def __init__(self, latent_dim: PositiveInt, input_shape: ImageShape) -> None:
        super().__init__(latent_dim, input_shape)
        data_dim = math.prod(self.input_shape)
        # parameters without gradients: fitted in closed form, saved with the checkpoint
        self.mean = nn.Parameter(torch.zeros(data_dim), requires_grad=False)
        self.weight = nn.Parameter(torch.zeros(data_dim, self.latent_dim), requires_grad=False)
        self.likelihood = IsotropicGaussianLikelihood()
        # registered under "prior" behind the interface's read-only property (as the VAE)
        self._modules["prior"] = StandardNormalPrior()
        self.prior.setup(self.latent_dim, self.input_shape, self.encode)

    @property
    def prior(self) -> Prior:
        return self._modules["prior"]

    @property
    def noise_variance(self) -> Tensor:
        return self.likelihood.variance

    @torch.no_grad()
    def fit_moments(self, mean: Tensor, covariance: Tensor) -> None:
        axes = principal_axes(covariance)
        k = self.latent_dim
        noise = axes.variances[k:].mean()
        if noise <= DEGENERATE_NOISE * axes.variances.mean():
            raise VaelabError(
                f"PPCA: the training data have no variance outside {k} principal directions, "
                "so σ² = 0 and log p(x) is unbounded; lower model.latent_dim or use more data"
            )
        scales = (axes.variances[:k] - noise).clamp_min(0).sqrt()
        self.mean.copy_(mean)
        self.weight.copy_(axes.directions[:, :k] * scales)
        self.likelihood.variance.fill_(float(noise))

    # -- distributions, computed in float64 ---------------------------------------------------
    def _float64(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.mean.double(), self.weight.double(), self.noise_variance.double()

    def marginal(self) -> LowRankMultivariateNormal:
        """p(x) = N(μ, WWᵀ + σ²I) over flattened images."""
        mean, weight, noise = self._float64()
        return LowRankMultivariateNormal(mean, weight, noise.expand_as(mean))

    @override
    def exact_log_likelihood(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Exact log p(x) in nats per image [B] (a density over pixel values, float64)."""
        self.check_fitted()
        return self.marginal().log_prob(x.flatten(start_dim=1).double())

    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> MultivariateNormal:
        """The exact posterior p(z|x), batch shape [B], event shape [K] (float64)."""
        mean, weight, noise = self._float64()
        eye = torch.eye(self.latent_dim, dtype=torch.float64, device=mean.device)
        m_inverse = torch.linalg.inv(weight.T @ weight + noise * eye)
        loc = (x.flatten(start_dim=1).double() - mean) @ weight @ m_inverse
        return MultivariateNormal(loc, covariance_matrix=noise * m_inverse)

    @override
    def decode(self, z: Tensor, y: Tensor | None = None) -> ImageDistribution:
        """p(x|z) = N(Wz + μ, σ²I) for codes [..., K]: batch shape [...], event (C, H, W)."""
        flat = self.mean + z.to(self.mean) @ self.weight.T
        return self.likelihood.observation(flat.reshape(*z.shape[:-1], *self.input_shape))

    def elbo_terms(self, x: Tensor) -> ExactELBO:
        """The ELBO at the exact posterior q, in closed form; elbo = log p(x) up to rounding.

        E_q log N(x; Wz + μ, σ²I) = log N(x; W E_q z + μ, σ²I) − tr(WᵀW Σ_q) / (2σ²).
        """
        mean, weight, noise = self._float64()
        q = self.encode(x)
        fitted_mean = q.mean @ weight.T + mean
        pixels = Independent(Normal(fitted_mean, noise.sqrt().expand_as(fitted_mean)), 1)
        spread = torch.trace(weight.T @ weight @ q.covariance_matrix[0]) / (2 * noise)
        recon = -(pixels.log_prob(x.flatten(start_dim=1).double()) - spread)
        eye = torch.eye(self.latent_dim, dtype=torch.float64, device=mean.device)
        kl = kl_divergence(q, MultivariateNormal(torch.zeros_like(eye[0]), scale_tril=eye))
        return ExactELBO(recon=recon, kl=kl, elbo=-(recon + kl))

    @override
    def sample(
        self, num: int, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Means Wz + μ of z ~ p(z) = N(0, I): [num, C, H, W] (the pixel noise σ is left out
        of the pictures)."""
        z = torch.randn(num, self.latent_dim, generator=generator, device=self.mean.device)
        return self.decode(z).mean

    def default_objective(self) -> ExactLogLikelihood:
        return ExactLogLikelihood()
