"""The importance-weighted bound of Burda, Grosse & Salakhutdinov (2015), eq. 8."""

from __future__ import annotations

import torch
from torch import Tensor

from vaelab.objectives.gradients import GradientEstimator, log_mean_exp
from vaelab.objectives.importance_weighted import ImportanceWeightedObjective
from vaelab.schema import PositiveInt, checked_arguments


@checked_arguments("objective")
class IWAE(ImportanceWeightedObjective):
    """L_k(x) = E[log (1/k) Σ_i w_i], w_i = p(x, z_i)/q(z_i|x), z_1..z_k ~ q(z|x) i.i.d.

    The k samples come from the model's ``sample_latents`` estimator in one batched forward;
    the bound is the log-mean-exp above (L_1 = ELBO ≤ L_k ≤ L_{k+1} ≤ log p(x), Burda et al.
    Thm 1) and the loss is −bound. ``gradient=reparam``: the pathwise gradients
    Σ_i w̃_i ∇ log w_i with normalised weights w̃ (eq. 14); ``stl``: the score term of log q
    dropped (Roeder et al. 2017, biased for k > 1); ``dreg``: the encoder gets
    Σ_i w̃_i² ∂log w_i/∂z_i ∂z_i/∂φ (IWAE-DReG, Tucker et al. 2018), the decoder eq. 14 (see
    :mod:`vaelab.objectives.gradients`). The bound is logged as ``<stage>/iwae_bound``;
    ``<stage>/elbo`` is the k-sample Monte-Carlo ELBO (1/k) Σ log w_i of the same samples,
    with its ``recon`` = −(1/k) Σ log p(x|z_i) and ``kl`` = (1/k) Σ log q(z_i|x) − log p(z_i).

    β weighting does not apply to this bound: any ``beta`` other than constant β = 1 is
    refused when the run is built.
    """

    bound_name = "iwae_bound"
    config_name = "iwae"

    def __init__(
        self, num_samples: PositiveInt = 5, gradient: GradientEstimator = "reparam"
    ) -> None:
        super().__init__(gradient)
        self.num_samples = int(num_samples)

    @property
    def total_samples(self) -> int:
        return self.num_samples

    def bound(self, log_weights: Tensor) -> Tensor:
        return log_mean_exp(log_weights)

    def bound_weights(self, log_weights: Tensor) -> Tensor:
        return torch.softmax(log_weights, dim=0)

    def dreg_weights(self, log_weights: Tensor) -> Tensor:
        return torch.softmax(log_weights, dim=0) ** 2
