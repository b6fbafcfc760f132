"""PIWAE(M, k), the partially importance-weighted auto-encoder of Rainforth et al. (2018)."""

from __future__ import annotations

import torch
from torch import Tensor

from vaelab.objectives.gradients import log_mean_exp
from vaelab.objectives.miwae import MIWAE


class PIWAE(MIWAE):
    """The decoder (and prior) follow IWAE_{M·k}, the encoder MIWAE_{M,k}, both on the same M·k
    draws (Rainforth et al. 2018, "Tighter variational bounds are not necessarily better", the
    PIWAE estimator): the tighter bound for the generative network, the higher-SNR one for the
    inference network.

    One forward and one backward: the surrogate of :func:`~vaelab.objectives.gradients.
    surrogate_bound` takes the generative coefficients from IWAE_{M·k} (w̃ over all M·k draws)
    and the path and score coefficients from MIWAE (w̃ within each group, over M), so
    ∂/∂θ is ∇_θ IWAE_{M·k} and ∂/∂φ is ∇_φ MIWAE_{M,k} exactly (checked against autograd of
    each bound in tests/test_objectives_importance_weighted.py). ``gradient=stl|dreg`` changes
    the encoder's estimator of the MIWAE gradient. Limit: in float32, a group whose weights are
    all below ~e^-87 of the best draw's has an underflowed generative weight and loses its
    encoder gradient.

    Logged: ``<stage>/piwae_bound`` = IWAE_{M·k} (the decoder's bound; the loss is its
    negative), ``<stage>/miwae_bound`` (the encoder's), ``<stage>/elbo``; β is refused.
    """

    bound_name = "piwae_bound"
    term_names = ("elbo", "miwae_bound", "recon", "kl")
    config_name = "piwae"
    separate_generative_bound = True

    def bound(self, log_weights: Tensor) -> Tensor:
        return log_mean_exp(log_weights)

    def generative_weights(self, log_weights: Tensor) -> Tensor:
        return torch.softmax(log_weights, dim=0)

    def extra_terms(self, log_weights: Tensor) -> dict[str, Tensor]:
        return {"miwae_bound": super().bound(log_weights)}
