"""Bernoulli likelihood with logits: log p(x|z) = −BCE-with-logits, summed over pixels."""

from __future__ import annotations

from torch import Tensor
from torch.distributions import Bernoulli, Distribution

from vaelab.likelihoods.base import Likelihood


class BernoulliLikelihood(Likelihood):
    """x_i ~ Bernoulli(σ(logit_i)) (Kingma & Welling 2014, App. C.1).

    With grey-level targets x ∈ [0, 1] (seed 000's ``F.binary_cross_entropy``) the same
    expression is the usual BCE; it is then not a normalised density (see the
    continuous Bernoulli for that).
    """

    params_per_channel = 1

    def pixel_distribution(self, decoder_output: Tensor) -> Distribution:
        # validate_args=False: grey-level targets in [0, 1] are allowed (BCE convention)
        return Bernoulli(logits=decoder_output, validate_args=False)
