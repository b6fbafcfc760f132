"""The ELBO plus a regulariser on the codes: the base of β-TCVAE, FactorVAE, DIP-VAE, InfoVAE
and WAE. Each is the ELBO engine (:class:`~vaelab.objectives.evidence.EvidenceEstimator`) and
its own named terms; the engine's KL estimator, STL gradient and every posterior, prior and
model it applies to come with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor
from torch.distributions import Distribution
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.objectives.evidence import (
    EvidenceEstimator,
    EvidenceTerms,
    KLEstimator,
    LatentProbe,
    probe_latent,
)
from vaelab.schedules.base import Weighting
from vaelab.schema import checked_arguments


@dataclass
class Regularised:
    """What a family makes of the ELBO's terms: the per-data-point ``loss`` [B] it minimises
    and its own ``terms`` ([B] each, logged as ``<stage>/<name>``)."""

    loss: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)


def is_plain_weighting(weighting: Weighting) -> bool:
    """The weighting's penalty is β(step)·R (constant, warm-up, cyclical), not one that
    reshapes a KL (free bits, capacity)."""
    return type(weighting).penalty is Weighting.penalty


def batch_constant(value: Tensor, batch_size: int) -> Tensor:
    """A batch-level quantity (a covariance penalty, an MMD) as a [B] per-data-point term."""
    return value.expand(batch_size)


def distribution_name(distribution: Distribution) -> str:
    return type(distribution).__name__


@checked_arguments("objective")
class RegularisedELBO(Objective):
    """The ELBO's terms of one sample per data point and a family's regulariser on the batch's
    codes (:meth:`regularise`). ``<stage>/elbo`` stays the ELBO of that sample; ``recon``,
    ``kl`` and the family's terms are logged under their own names.

    The regularisers compare one flat latent vector per data point across the batch, so a
    model whose latent is several stochastic layers is refused; a family that needs more of
    q(z|x) or p(z) (per-dimension marginals, Gaussian moments, N(0, I)) says so in
    :meth:`check_latent`, in one line naming the part.
    """

    bound_name = "elbo"
    #: the option name in error messages (``objective=<name>``)
    option_name = "elbo"

    def __init__(self, kl: KLEstimator = "auto") -> None:
        super().__init__()
        self.evidence = EvidenceEstimator(kl)

    @property
    def kl_estimator(self) -> str:
        return self.evidence.kl_estimator

    @property
    def option(self) -> str:
        return f"objective={self.option_name}"

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        structure = model.latent_structure
        if not structure.is_flat:
            raise VaelabError(
                f"{self.option} compares one flat latent vector per data point across the "
                f"batch; {type(model).__name__}'s latent is {len(structure.layers)} stochastic "
                "layers: use objective=elbo (or an importance-weighted bound)"
            )
        if not structure.encoded_posterior:
            raise VaelabError(
                f"{self.option} reads q(z|x) of the samples, but {type(model).__name__} moves z "
                "after q(z₀|x) with its decoder: use objective=elbo (or an importance-weighted "
                "bound)"
            )
        self.evidence.setup(model, self.option)
        self.check_latent(probe_latent(model))
        self.check_weighting(weighting)

    # the interface: families that need more of q or p than samples override it
    def check_latent(self, probe: LatentProbe) -> None:
        """Refuse a posterior or prior this family cannot use (one line naming it)."""

    def check_weighting(self, weighting: Weighting) -> None:
        """Refuse a ``beta=`` this family does not weight with (default: any applies)."""

    @override
    def resolved_choices(self) -> dict[str, Any]:
        return self.evidence.resolved_choices()

    def refuse_weighting(self, weighting: Weighting, reason: str) -> None:
        """Refuse any ``beta=`` other than constant β = 1, saying why."""
        if not weighting.is_identity:
            raise VaelabError(f"{self.option}: {reason}; use beta=constant beta.value=1.0")

    def regularise(
        self,
        model: LatentVariableModel,
        evidence: EvidenceTerms,
        weighting: Weighting,
        step: int,
        split: str,
    ) -> Regularised:
        """The family's loss and terms from the ELBO's terms of the batch."""
        raise NotImplementedError

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
        evidence = self.evidence(model, x, y)
        regularised = self.regularise(model, evidence, weighting, step, split)
        return ObjectiveOutput(
            loss=regularised.loss,
            bound=evidence.elbo,
            terms={"recon": evidence.recon, "kl": evidence.kl, **regularised.terms},
            per_dimension=evidence.per_dimension,
        )
