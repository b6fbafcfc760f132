"""MIWAE(M, k), the multiply importance-weighted bound of Rainforth et al. (2018)."""

from __future__ import annotations

import torch
from torch import Tensor

from vaelab.objectives.gradients import GradientEstimator, log_mean_exp
from vaelab.objectives.importance_weighted import ImportanceWeightedObjective
from vaelab.schema import PositiveInt, checked_arguments


def grouped(log_weights: Tensor, num_groups: int) -> Tensor:
    """[M·k, B] → [M, k, B]: M independent groups of k draws."""
    return log_weights.reshape(num_groups, -1, *log_weights.shape[1:])


def group_weights(log_weights: Tensor, num_groups: int) -> Tensor:
    """[M·k, B] normalised weights w̃ within each group of k draws."""
    return torch.softmax(grouped(log_weights, num_groups), dim=1).reshape(log_weights.shape)


@checked_arguments("objective")
class MIWAE(ImportanceWeightedObjective):
    """MIWAE_{M,k}(x) = (1/M) Σ_m log (1/k) Σ_i w_{m,i}: the mean of M independent IWAE_k
    estimates (Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh 2018, "Tighter variational
    bounds are not necessarily better", the MIWAE estimator), from M·k draws in one batched forward.

    MIWAE(1, k) is IWAE_k (Burda et al. 2015, eq. 8) and MIWAE(M, 1) the ELBO with M samples;
    for a fixed budget M·k, a larger M trades bound tightness for the encoder gradient's
    signal-to-noise ratio, which falls as O(1/√k) and rises as O(√M) (Rainforth et al., Theorem 1).
    ``gradient``: see :mod:`vaelab.objectives.gradients`; ``dreg`` gives each group's encoder
    the weights w̃_{m,i}²/M (IWAE-DReG of Tucker et al. 2018, averaged over the M groups).
    Logged as ``<stage>/miwae_bound``; β weighting is refused.
    """

    bound_name = "miwae_bound"
    config_name = "miwae"

    def __init__(
        self,
        num_groups: PositiveInt = 4,
        num_samples: PositiveInt = 4,
        gradient: GradientEstimator = "reparam",
    ) -> None:
        super().__init__(gradient)
        self.num_groups = int(num_groups)
        self.num_samples = int(num_samples)

    @property
    def total_samples(self) -> int:
        return self.num_groups * self.num_samples

    def bound(self, log_weights: Tensor) -> Tensor:
        return log_mean_exp(grouped(log_weights, self.num_groups), dim=1).mean(0)

    def bound_weights(self, log_weights: Tensor) -> Tensor:
        return group_weights(log_weights, self.num_groups) / self.num_groups

    def dreg_weights(self, log_weights: Tensor) -> Tensor:
        return group_weights(log_weights, self.num_groups) ** 2 / self.num_groups
