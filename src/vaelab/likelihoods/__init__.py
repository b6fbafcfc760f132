"""Observation models p(x|z): each turns decoder outputs into a torch.distributions object."""

from vaelab.likelihoods.base import Likelihood
from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.likelihoods.continuous_bernoulli import ContinuousBernoulliLikelihood
from vaelab.likelihoods.gaussian import GaussianLikelihood
from vaelab.likelihoods.laplace import LaplaceLikelihood
from vaelab.likelihoods.location_scale import LocationScaleLikelihood

__all__ = [
    "BernoulliLikelihood",
    "ContinuousBernoulliLikelihood",
    "GaussianLikelihood",
    "LaplaceLikelihood",
    "Likelihood",
    "LocationScaleLikelihood",
]
