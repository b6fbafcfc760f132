"""Variational posteriors q_φ(z|x) built from encoder outputs."""

from vaelab.posteriors.affine_coupling import AffineCouplingPosterior
from vaelab.posteriors.base import Posterior
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior
from vaelab.posteriors.full_covariance import FullCovarianceGaussianPosterior
from vaelab.posteriors.iaf import IAFPosterior
from vaelab.posteriors.planar import PlanarFlowPosterior
from vaelab.posteriors.radial import RadialFlowPosterior

__all__ = [
    "AffineCouplingPosterior",
    "DiagonalGaussianPosterior",
    "FullCovarianceGaussianPosterior",
    "IAFPosterior",
    "PlanarFlowPosterior",
    "Posterior",
    "RadialFlowPosterior",
]
