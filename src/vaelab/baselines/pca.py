"""Principal component analysis as in seed 004: the K leading eigenvectors W of the data
covariance; encode z = Wᵀ(x − μ), decode x̂ = μ + W z."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from vaelab.baselines.checkpoint_metric import MonitorsValLossWithoutELBO
from vaelab.baselines.closed_form import ClosedFormModule
from vaelab.baselines.isotropic_gaussian import IsotropicGaussianLikelihood
from vaelab.baselines.moments import principal_axes
from vaelab.baselines.point_mass import PointMass


class PrincipalComponents(nn.Module):
    """The orthogonal projection onto K directions with the least squared reconstruction
    error; on the fitting data the mean error per image is Σ_{j>K} λ_j.

    Plotting interface of :class:`~vaelab.vae.VAE`: ``sample_images`` decodes z ~ N(0,
    diag λ_1..λ_K) (the spread of the codes); ``likelihood`` (PCA's σ² → 0 limit of PPCA,
    stored with the mean discarded variance) only maps the decoder output to the picture.
    """

    def __init__(self, input_shape: Sequence[int], latent_dim: int) -> None:
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.latent_dim = int(latent_dim)
        data_dim = math.prod(self.input_shape)
        # parameters without gradients: fitted in closed form, saved with the checkpoint
        self.mean = nn.Parameter(torch.zeros(data_dim), requires_grad=False)
        self.components = nn.Parameter(torch.zeros(data_dim, self.latent_dim), requires_grad=False)
        self.register_buffer("variances", torch.ones(self.latent_dim))
        self.likelihood = IsotropicGaussianLikelihood()

    @torch.no_grad()
    def fit(self, mean: Tensor, covariance: Tensor) -> None:
        axes = principal_axes(covariance)
        k = self.latent_dim
        self.mean.copy_(mean)
        self.components.copy_(axes.directions[:, :k])
        self.variances.copy_(axes.variances[:k])
        self.likelihood.variance.fill_(float(axes.variances[k:].mean()))

    def code(self, x: Tensor) -> Tensor:
        """Codes z = Wᵀ(x − μ) [B, K]."""
        return (x.flatten(start_dim=1).to(self.mean) - self.mean) @ self.components

    def encode(self, x: Tensor) -> PointMass:
        """The projection as a distribution (mean = code, variance 0), like a VAE's q(z|x)."""
        return PointMass(self.code(x))

    def decode(self, z: Tensor) -> Tensor:
        """x̂ = μ + W z for codes [..., K] → images [..., C, H, W]."""
        flat = self.mean + z.to(self.mean) @ self.components.T
        return flat.reshape(*z.shape[:-1], *self.input_shape)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.code(x))

    def sample_images(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(num, self.latent_dim, generator=generator, device=self.mean.device)
        return self.decode(z * self.variances.sqrt())


class PCAModule(MonitorsValLossWithoutELBO, ClosedFormModule):
    """``vaelab-train model=pca``: fits :class:`PrincipalComponents` in one pass.

    Logged: ``<stage>/sse`` = Σ_pixels (x − x̂)² per image, and ``<stage>/loss`` (the same:
    PCA minimises it). PCA has no likelihood and no ELBO; checkpoints monitor ``val/loss``.
    The optimiser, scheduler and VAE parts that :func:`~vaelab.builders.build_module` passes
    are accepted and unused.
    """

    metric_names = ("loss", "sse")

    def __init__(self, latent_dim: int, input_shape: Sequence[int], **unused: Any) -> None:
        super().__init__(latent_dim, input_shape)
        self.pca = PrincipalComponents(input_shape, latent_dim)

    @property
    def vae(self) -> PrincipalComponents:
        """The model the image callbacks draw (they read ``pl_module.vae``)."""
        return self.pca

    def fit_moments(self, mean: Tensor, covariance: Tensor) -> None:
        self.pca.fit(mean, covariance)

    def evaluation_values(self, x: Tensor) -> dict[str, Tensor]:
        error = (self.pca.reconstruct(x).flatten(start_dim=1) - x.flatten(start_dim=1)) ** 2
        sse = error.sum(dim=1)
        return {"loss": sse, "sse": sse}
