"""Probabilistic PCA (Tipping & Bishop 1999): p(z) = N(0, I), p(x|z) = N(Wz + μ, σ²I), so
p(x) = N(μ, WWᵀ + σ²I) and the posterior p(z|x) is Gaussian; everything in closed form."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import (
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    kl_divergence,
)

from vaelab.baselines.closed_form import ClosedFormModule
from vaelab.baselines.isotropic_gaussian import IsotropicGaussianLikelihood
from vaelab.baselines.moments import principal_axes
from vaelab.errors import VaelabError
from vaelab.objectives.base import ObjectiveOutput

#: σ² below this fraction of the mean eigenvalue means the data lie in a K-dim subspace
DEGENERATE_NOISE = 1e-12


class ProbabilisticPCA(nn.Module):
    """Maximum-likelihood PPCA. With S's eigenvalues λ_1 ≥ … ≥ λ_D and eigenvectors U
    (Tipping & Bishop 1999, eqs. 7–8): σ² = (1/(D−K)) Σ_{j>K} λ_j and
    W = U_K (Λ_K − σ²I)^{1/2} (rotation R = I).

    ``encode`` returns the exact posterior q(z|x) = p(z|x) = N(M⁻¹Wᵀ(x − μ), σ²M⁻¹) with
    M = WᵀW + σ²I (eq. 6), so the ELBO equals log p(x). ``decode`` gives the mean Wz + μ;
    ``likelihood`` is N(·, σ²I). Same plotting interface as :class:`~vaelab.vae.VAE`.
    """

    def __init__(self, input_shape: Sequence[int], latent_dim: int) -> None:
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.latent_dim = int(latent_dim)
        data_dim = math.prod(self.input_shape)
        # parameters without gradients: fitted in closed form, saved with the checkpoint
        self.mean = nn.Parameter(torch.zeros(data_dim), requires_grad=False)
        self.weight = nn.Parameter(torch.zeros(data_dim, self.latent_dim), requires_grad=False)
        self.likelihood = IsotropicGaussianLikelihood()

    @property
    def noise_variance(self) -> Tensor:
        return self.likelihood.variance

    @torch.no_grad()
    def fit(self, mean: Tensor, covariance: Tensor) -> None:
        axes = principal_axes(covariance)
        k = self.latent_dim
        noise = axes.variances[k:].mean()
        if noise <= DEGENERATE_NOISE * axes.variances.mean():
            raise VaelabError(
                f"PPCA: the training data have no variance outside {k} "
                "principal directions, so σ² = 0 and log p(x) is unbounded; "
                "lower model.latent_dim or use more data"
            )
        scales = (axes.variances[:k] - noise).clamp_min(0).sqrt()
        self.mean.copy_(mean)
        self.weight.copy_(axes.directions[:, :k] * scales)
        self.likelihood.variance.fill_(float(noise))

    # -- distributions, computed in float64 -------------------------------------------------
    def _float64(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.mean.double(), self.weight.double(), self.noise_variance.double()

    def marginal(self) -> LowRankMultivariateNormal:
        """p(x) = N(μ, WWᵀ + σ²I) over flattened images."""
        mean, weight, noise = self._float64()
        return LowRankMultivariateNormal(mean, weight, noise.expand_as(mean))

    def log_marginal(self, x: Tensor) -> Tensor:
        """Exact log p(x) in nats per image [B] (a density over pixel values)."""
        return self.marginal().log_prob(x.flatten(start_dim=1).double())

    def prior(self, device: torch.device | None = None) -> MultivariateNormal:
        """p(z) = N(0, I) in float64 (on ``device``, default: the model's), as VAE.prior."""
        device = self.mean.device if device is None else device
        eye = torch.eye(self.latent_dim, dtype=torch.float64, device=device)
        return MultivariateNormal(torch.zeros_like(eye[0]), covariance_matrix=eye)

    def encode(self, x: Tensor) -> MultivariateNormal:
        """The exact posterior p(z|x), batch shape [B], event shape [K] (float64)."""
        mean, weight, noise = self._float64()
        eye = torch.eye(self.latent_dim, dtype=torch.float64, device=mean.device)
        m_inverse = torch.linalg.inv(weight.T @ weight + noise * eye)
        loc = (x.flatten(start_dim=1).double() - mean) @ weight @ m_inverse
        return MultivariateNormal(loc, covariance_matrix=noise * m_inverse)

    def decode(self, z: Tensor) -> Tensor:
        """The mean Wz + μ for codes [..., K] → images [..., C, H, W] (float32)."""
        flat = self.mean + z.to(self.mean) @ self.weight.T
        return flat.reshape(*z.shape[:-1], *self.input_shape)

    def elbo_terms(self, x: Tensor) -> ObjectiveOutput:
        """recon = −E_q log p(x|z), kl = KL(q || p(z)) and bound = −(recon + kl) for the
        exact posterior q, in closed form; bound = log p(x) up to rounding.

        E_q log N(x; Wz + μ, σ²I) = log N(x; W E_q z + μ, σ²I) − tr(WᵀW Σ_q) / (2σ²).
        """
        mean, weight, noise = self._float64()
        q = self.encode(x)
        fitted_mean = q.mean @ weight.T + mean
        pixels = Independent(Normal(fitted_mean, noise.sqrt().expand_as(fitted_mean)), 1)
        spread = torch.trace(weight.T @ weight @ q.covariance_matrix[0]) / (2 * noise)
        recon = -(pixels.log_prob(x.flatten(start_dim=1).double()) - spread)
        kl = kl_divergence(q, self.prior())
        return ObjectiveOutput(recon=recon, kl=kl, bound=-(recon + kl))

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x).mean)

    def sample_images(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """Means Wz + μ of z ~ N(0, I) (the pixel noise σ is left out of the pictures)."""
        z = torch.randn(num, self.latent_dim, generator=generator, device=self.mean.device)
        return self.decode(z)


class PPCAModule(ClosedFormModule):
    """``vaelab-train model=ppca``: fits :class:`ProbabilisticPCA` in one pass.

    Logged per stage, in nats per image: ``log_likelihood`` = exact log p(x) (a Gaussian
    density over pixel values, comparable with a Gaussian-likelihood VAE's ELBO);
    ``elbo`` = −(recon + kl) with the exact posterior, which equals ``log_likelihood`` (the
    bound is tight); ``loss`` = −elbo; ``recon`` and ``kl`` as for a VAE.
    The optimiser, scheduler and VAE parts that :func:`~vaelab.builders.build_module` passes
    are accepted and unused.
    """

    metric_names = ("loss", "recon", "kl", "elbo", "log_likelihood")

    def __init__(self, latent_dim: int, input_shape: Sequence[int], **unused: Any) -> None:
        super().__init__(latent_dim, input_shape)
        self.ppca = ProbabilisticPCA(input_shape, latent_dim)

    @property
    def vae(self) -> ProbabilisticPCA:
        """The model the image callbacks draw (they read ``pl_module.vae``)."""
        return self.ppca

    def fit_moments(self, mean: Tensor, covariance: Tensor) -> None:
        self.ppca.fit(mean, covariance)

    def evaluation_values(self, x: Tensor) -> dict[str, Tensor]:
        terms = self.ppca.elbo_terms(x)
        return {
            "loss": -terms.bound,
            "recon": terms.recon,
            "kl": terms.kl,
            "elbo": terms.bound,
            "log_likelihood": self.ppca.log_marginal(x),
        }
