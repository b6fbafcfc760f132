"""Variational posteriors q_φ(z|x) built from encoder outputs."""

from vaelab.posteriors.base import Posterior
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior

__all__ = ["DiagonalGaussianPosterior", "Posterior"]
