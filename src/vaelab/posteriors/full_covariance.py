"""Full-covariance Gaussian posterior N(μ, L Lᵀ) with a Cholesky factor from the encoder."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal, register_kl
from torch.distributions.kl import kl_divergence

from vaelab.posteriors.base import Posterior
from vaelab.schema import checked_arguments

#: how the Cholesky factor's diagonal is made positive from the raw encoder outputs
DiagonalTransform = Literal["exp", "softplus"]


@checked_arguments("model.posterior")
class FullCovarianceGaussianPosterior(Posterior):
    """q(z|x) = N(μ, L Lᵀ), z = μ + L ε (seed 003's exercise; Kingma & Welling 2019, §2.5.1).

    The encoder outputs D(D + 3)/2 numbers per data point, in this order: μ (D), the raw
    diagonal of L (D; L_jj = exp(raw), i.e. raw = log σ_j when L is diagonal, or
    softplus(raw)), and the D(D − 1)/2 entries strictly below the diagonal, row by row.
    KL(q || p) to a diagonal Gaussian prior such as N(0, I) is analytic (registered below).
    """

    def __init__(self, diagonal_transform: DiagonalTransform = "exp") -> None:
        super().__init__()
        self.diagonal_transform = diagonal_transform

    def num_params(self, latent_dim: int) -> int:
        return latent_dim * (latent_dim + 3) // 2

    def _latent_dim(self, encoder_output: Tensor) -> int:
        """Solve P = D(D + 3)/2 for D."""
        num = encoder_output.shape[-1]
        dim = (math.isqrt(9 + 8 * num) - 3) // 2
        if self.num_params(dim) != num:
            raise ValueError(
                f"a full-covariance posterior needs D(D + 3)/2 encoder outputs; "
                f"{num} is not of that form"
            )
        return dim

    def scale_tril(self, encoder_output: Tensor) -> Tensor:
        """The Cholesky factor L [..., D, D] (lower triangular, positive diagonal)."""
        dim = self._latent_dim(encoder_output)
        raw_diag = encoder_output[..., dim : 2 * dim].float()
        below = encoder_output[..., 2 * dim :].float()
        positive = torch.exp(raw_diag) if self.diagonal_transform == "exp" else F.softplus(raw_diag)
        rows, cols = torch.tril_indices(dim, dim, offset=-1, device=encoder_output.device)
        tril = encoder_output.new_zeros(*encoder_output.shape[:-1], dim, dim, dtype=torch.float32)
        tril[..., rows, cols] = below
        return tril + torch.diag_embed(positive)

    def distribution(self, encoder_output: Tensor) -> Distribution:
        dim = self._latent_dim(encoder_output)
        return MultivariateNormal(
            encoder_output[..., :dim].float(),
            scale_tril=self.scale_tril(encoder_output),
            validate_args=False,
        )

    def mean(self, encoder_output: Tensor) -> Tensor:
        return encoder_output[..., : self._latent_dim(encoder_output)].float()


@register_kl(MultivariateNormal, Independent)
def _kl_full_to_diagonal_gaussian(q: MultivariateNormal, p: Independent) -> Tensor:
    """KL(N(μ, Σ) || N(m, diag s²)) in closed form: the diagonal Gaussian is rewritten as a
    MultivariateNormal and torch's Gaussian–Gaussian KL applies. Other ``Independent``
    priors have no closed form here (NotImplementedError: the ELBO then uses Monte Carlo)."""
    base = p.base_dist
    if not isinstance(base, Normal) or p.reinterpreted_batch_ndims != 1:
        raise NotImplementedError
    as_full = MultivariateNormal(base.loc, scale_tril=torch.diag_embed(base.scale))
    return kl_divergence(q, as_full)
