"""CIWAE(β), the combination importance-weighted bound of Rainforth et al. (2018)."""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from vaelab.objectives.gradients import GradientEstimator, log_mean_exp
from vaelab.objectives.importance_weighted import ImportanceWeightedObjective
from vaelab.schema import PositiveInt, Range, checked_arguments


@checked_arguments("objective")
class CIWAE(ImportanceWeightedObjective):
    """CIWAE_β(x) = β ELBO_k(x) + (1 − β) IWAE_k(x) on the same k draws: β (1/k) Σ log w_i +
    (1 − β) log (1/k) Σ w_i (Rainforth et al. 2018, "Tighter variational bounds are not
    necessarily better", the CIWAE estimator). ``elbo_weight`` is their β (not the ``beta=`` group,
    which must stay constant 1): β = 1 is the k-sample ELBO, β = 0 IWAE_k.

    ``gradient``: see :mod:`vaelab.objectives.gradients`; ``dreg`` gives the encoder the path
    weights β/k + (1 − β) w̃_i² (the ELBO part's DReG is STL; IWAE-DReG of Tucker et al. 2018).
    Logged as ``<stage>/ciwae_bound`` with ``iwae_bound`` beside it; β weighting is refused.
    """

    bound_name = "ciwae_bound"
    term_names = ("elbo", "iwae_bound", "recon", "kl")
    config_name = "ciwae"

    def __init__(
        self,
        num_samples: PositiveInt = 5,
        elbo_weight: Annotated[float, Range(ge=0, le=1)] = 0.5,
        gradient: GradientEstimator = "reparam",
    ) -> None:
        super().__init__(gradient)
        self.num_samples = int(num_samples)
        self.elbo_weight = float(elbo_weight)

    @property
    def total_samples(self) -> int:
        return self.num_samples

    def bound(self, log_weights: Tensor) -> Tensor:
        beta = self.elbo_weight
        return beta * log_weights.mean(0) + (1 - beta) * log_mean_exp(log_weights)

    def bound_weights(self, log_weights: Tensor) -> Tensor:
        beta = self.elbo_weight
        return beta / self.num_samples + (1 - beta) * torch.softmax(log_weights, dim=0)

    def dreg_weights(self, log_weights: Tensor) -> Tensor:
        beta = self.elbo_weight
        return beta / self.num_samples + (1 - beta) * torch.softmax(log_weights, dim=0) ** 2

    def extra_terms(self, log_weights: Tensor) -> dict[str, Tensor]:
        return {"iwae_bound": log_mean_exp(log_weights)}
