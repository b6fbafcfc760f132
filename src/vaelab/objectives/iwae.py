"""The importance-weighted bound of Burda, Grosse & Salakhutdinov (2015), eq. 8."""

from __future__ import annotations

import math
from typing import Annotated, Any

import torch
from torch import Tensor
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.schedules.base import Weighting
from vaelab.schema import Range


class IWAE(Objective):
    """L_k(x) = E[log (1/k) Σ_i w_i], w_i = p(x, z_i)/q(z_i|x), z_1..z_k ~ q(z|x) i.i.d.

    The k samples come from the model's ``log_weights`` estimator in one batched forward;
    the bound is the log-mean-exp above (L_1 = ELBO ≤ L_k ≤ L_{k+1} ≤ log p(x), Burda et al.
    Thm 1) and the loss is −bound, so gradients are the pathwise gradients Σ_i w̃_i ∇ log w_i
    with normalised weights w̃ (eq. 14). The bound is logged as ``<stage>/iwae_bound``;
    ``<stage>/elbo`` is the k-sample Monte-Carlo ELBO (1/k) Σ log w_i of the same samples,
    with its ``recon`` = −(1/k) Σ log p(x|z_i) and ``kl`` = (1/k) Σ log q(z_i|x) − log p(z_i).

    β weighting does not apply to this bound: any ``beta`` other than constant β = 1 is
    refused when the run is built.
    """

    bound_name = "iwae_bound"
    term_names = ("elbo", "recon", "kl")

    def __init__(self, num_samples: Annotated[int, Range(ge=1)] = 5) -> None:
        super().__init__()
        if int(num_samples) < 1:
            raise VaelabError(f"objective.num_samples must be >= 1, got {num_samples}")
        self.num_samples = int(num_samples)

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        if not weighting.is_identity:
            raise VaelabError(
                "objective=iwae optimises the importance-weighted bound, which has no KL term "
                "to weight; use beta=constant beta.value=1.0 (or objective=elbo for β-VAEs "
                "and KL schedules)"
            )

    @override
    def forward(
        self,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        weighting: Weighting,
        step: int,
    ) -> ObjectiveOutput:
        samples = model.sample_latents(x, y, self.num_samples)  # [k, B] log-densities
        log_weights = samples.log_weights
        bound = torch.logsumexp(log_weights, dim=0) - math.log(self.num_samples)
        recon = -samples.log_likelihood.mean(0)
        kl = (samples.log_posterior - samples.log_prior).mean(0)
        return ObjectiveOutput(
            loss=-bound,
            bound=bound,
            terms={"elbo": log_weights.mean(0), "recon": recon, "kl": kl},
        )
