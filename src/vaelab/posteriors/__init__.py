"""Variational posteriors q_φ(z|x) built from encoder outputs."""

from vaelab.posteriors.base import Posterior
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior
from vaelab.posteriors.full_covariance import FullCovarianceGaussianPosterior

__all__ = ["DiagonalGaussianPosterior", "FullCovarianceGaussianPosterior", "Posterior"]
