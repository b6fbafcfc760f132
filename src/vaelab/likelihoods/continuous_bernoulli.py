"""Continuous Bernoulli likelihood (Loaiza-Ganem & Cunningham 2019)."""

from __future__ import annotations

from torch import Tensor
from torch.distributions import ContinuousBernoulli, Distribution

from vaelab.likelihoods.base import Likelihood


class ContinuousBernoulliLikelihood(Likelihood):
    """x_i ~ CB(λ_i) with λ_i = σ(logit_i): p(x|λ) = C(λ) λ^x (1 − λ)^(1−x) on [0, 1].

    The normalising constant C(λ) (eq. 7 of the paper) is what BCE on grey levels leaves
    out, so this is a proper density over [0, 1]-valued pixels. Its mean is not λ but
    λ/(2λ − 1) + 1/(2 artanh(1 − 2λ)) (eq. 8), which is what reconstructions show.
    """

    params_per_channel = 1
    is_continuous = True

    def pixel_distribution(self, decoder_output: Tensor) -> Distribution:
        return ContinuousBernoulli(logits=decoder_output, validate_args=False)
