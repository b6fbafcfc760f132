"""Principal component analysis as in seed 004: the K leading eigenvectors W of the data
covariance; encode z = Wᵀ(x − μ), decode x̂ = μ + W z."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from typing_extensions import override

from vaelab.baselines.closed_form import ClosedFormEvaluation, ClosedFormModel
from vaelab.baselines.isotropic_gaussian import IsotropicGaussianLikelihood
from vaelab.baselines.moments import principal_axes
from vaelab.baselines.point_mass import PointMass
from vaelab.likelihoods.base import ImageDistribution
from vaelab.objectives.base import ObjectiveOutput
from vaelab.schema import ImageShape, PositiveInt, checked_arguments

#: the term PCA reports: Σ_pixels (x − x̂)² per image
SSE = "sse"


class SquaredError(ClosedFormEvaluation):
    """``<stage>/sse`` = Σ_pixels (x − x̂)² per image and ``<stage>/loss`` (the same: PCA
    minimises it). PCA has no likelihood and bounds nothing."""

    bound_name = None
    term_names = (SSE,)

    def evaluate(self, model: ClosedFormModel, x: Tensor, y: Tensor | None) -> ObjectiveOutput:
        error = (model.reconstruct(x, y) - x) ** 2
        sse = error.flatten(start_dim=1).sum(dim=1)
        return ObjectiveOutput(loss=sse, bound=None, terms={SSE: sse})


@checked_arguments("model")
class PrincipalComponents(ClosedFormModel):
    """``vaelab-train model=pca``: the orthogonal projection onto K directions with the least
    squared reconstruction error, fitted in one pass; on the fitting data the mean error per
    image is Σ_{j>K} λ_j.

    ``encode`` is the projection as a point mass δ(z − Wᵀ(x − μ)); ``decode`` is N(μ + W z,
    σ²I) with σ² the mean discarded variance (PCA as the σ² → 0 limit of PPCA) — only its
    mean x̂ is used. PCA has no prior: ``sample`` decodes z ~ N(0, diag λ_1..λ_K), the spread
    of the codes of the training data.
    """

    likelihood_is_continuous = True

    def __init__(self, latent_dim: PositiveInt, input_shape: ImageShape) -> None:
        super().__init__(latent_dim, input_shape)
        data_dim = math.prod(self.input_shape)
        # parameters without gradients: fitted in closed form, saved with the checkpoint
        self.mean = nn.Parameter(torch.zeros(data_dim), requires_grad=False)
        self.components = nn.Parameter(torch.zeros(data_dim, self.latent_dim), requires_grad=False)
        self.register_buffer("variances", torch.ones(self.latent_dim))
        self.likelihood = IsotropicGaussianLikelihood()

    @torch.no_grad()
    def fit_moments(self, mean: Tensor, covariance: Tensor) -> None:
        axes = principal_axes(covariance)
        k = self.latent_dim
        self.mean.copy_(mean)
        self.components.copy_(axes.directions[:, :k])
        self.variances.copy_(axes.variances[:k])
        self.likelihood.variance.fill_(float(axes.variances[k:].mean()))

    def code(self, x: Tensor) -> Tensor:
        """Codes z = Wᵀ(x − μ) [B, K]."""
        return (x.flatten(start_dim=1).to(self.mean) - self.mean) @ self.components

    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> PointMass:
        """The projection as a distribution (mean = code, variance 0)."""
        return PointMass(self.code(x))

    @override
    def decode(self, z: Tensor, y: Tensor | None = None) -> ImageDistribution:
        """N(μ + W z, σ²I) for codes [..., K]: batch shape [...], event shape (C, H, W)."""
        flat = self.mean + z.to(self.mean) @ self.components.T
        return self.likelihood.observation(flat.reshape(*z.shape[:-1], *self.input_shape))

    @override
    def sample(
        self, num: int, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Projections x̂ of codes z ~ N(0, diag λ_1..λ_K): [num, C, H, W]."""
        z = torch.randn(num, self.latent_dim, generator=generator, device=self.mean.device)
        return self.decode(z * self.variances.sqrt()).mean

    def default_objective(self) -> SquaredError:
        return SquaredError()
