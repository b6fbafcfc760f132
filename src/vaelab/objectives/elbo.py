"""The evidence lower bound with L reparameterised samples (Kingma & Welling 2014, eq. 7/10)."""

from __future__ import annotations

from typing import Any

from torch import Tensor
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.objectives.evidence import EvidenceEstimator, KLEstimator
from vaelab.objectives.gradients import GradientEstimator
from vaelab.schedules.base import Weighting
from vaelab.schema import PositiveInt, checked_arguments


@checked_arguments("objective")
class ELBO(Objective):
    """ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) || p(z)); loss = recon + penalty(KL), i.e. −ELBO
    at β = 1 and the β-VAE (Higgins et al. 2017) otherwise.

    ``kl="analytic"`` uses the closed-form KL (SGVB-B, eq. 10; Pyro's TraceMeanField_ELBO);
    ``kl="monte_carlo"`` estimates it as log q(z|x) − log p(z) on the same samples (SGVB-A,
    eq. 7; Pyro's Trace_ELBO); ``kl="auto"`` (default) takes the closed form when
    torch.distributions registers one for the model's posterior and prior, else Monte Carlo,
    and says which. A model without one q(z|x) and p(z) pair (a hierarchy of stochastic
    layers) gets Monte Carlo from ``kl="auto"``, with the reason in ``kl_estimator_reason``:
    log q(z|x) − log p(z) of its ``sample_latents``, summed over the layers;
    ``kl="analytic"`` is refused for it. The L samples are drawn in one batched forward of
    shape [L, B, D].

    ``gradient=stl`` (sticking the landing, Roeder et al. 2017): log q(z|x) in the Monte-Carlo
    KL is evaluated with q's parameters stopped, so the encoder's gradient is the path
    derivative only (the score term, zero in expectation, is dropped; exactly zero gradient
    at the exact posterior). It needs the Monte-Carlo KL (``kl=auto`` resolves to it).
    ``gradient=dreg`` is refused: for the ELBO it is STL.
    """

    bound_name = "elbo"
    term_names = ("recon", "kl")

    def __init__(
        self,
        kl: KLEstimator = "auto",
        num_samples: PositiveInt = 1,
        gradient: GradientEstimator = "reparam",
    ) -> None:
        super().__init__()
        self.gradient = gradient
        if self.gradient == "dreg":
            raise VaelabError(
                "objective=elbo objective.gradient=dreg: the doubly reparameterised gradient of "
                "the ELBO is sticking the landing; use objective.gradient=stl"
            )
        self.evidence = EvidenceEstimator(kl, int(num_samples), self.gradient)

    @property
    def kl_estimator(self) -> str:
        return self.evidence.kl_estimator

    @property
    def num_samples(self) -> int:
        return self.evidence.num_samples

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        self.evidence.setup(model, "objective=elbo")

    @override
    def resolved_choices(self) -> dict[str, Any]:
        choices = self.evidence.resolved_choices()
        return choices | ({"gradient": self.gradient} if self.gradient != "reparam" else {})

    @override
    def forward(
        self,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        weighting: Weighting,
        step: int,
        split: str = "train",
    ) -> ObjectiveOutput:
        terms = self.evidence(model, x, y)
        # at β ≡ 1 the loss is −ELBO itself: no multiplication by 1 (a kernel and a backward
        # node each step)
        penalty = (
            terms.kl
            if weighting.is_identity
            else weighting.penalty(terms.kl, terms.kl_per_dim, step)
        )
        return ObjectiveOutput(
            loss=terms.recon + penalty,
            bound=terms.elbo,
            terms={"recon": terms.recon, "kl": terms.kl},
            per_dimension=terms.per_dimension,
        )
