"""Observation models p(x|z): each turns decoder outputs into a torch.distributions object."""

from vaelab.likelihoods.base import Likelihood
from vaelab.likelihoods.bernoulli import BernoulliLikelihood

__all__ = ["BernoulliLikelihood", "Likelihood"]
