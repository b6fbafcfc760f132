"""Autoencoders that pull the codes' aggregate toward the prior with a divergence between
samples (WAE-MMD, SWAE): one objective, reconstruction + λ·D(codes, prior draws), whose
subclasses say only which divergence D."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor
from torch.distributions import Distribution
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import ObjectiveOutput
from vaelab.objectives.evidence import KLEstimator, LatentProbe
from vaelab.objectives.regularised import RegularisedELBO, batch_constant, distribution_name
from vaelab.schedules.base import Weighting


def has_mean(distribution: Distribution) -> bool:
    """Whether the distribution's mean is known in closed form."""
    try:
        distribution.mean  # noqa: B018 - the probe is the attribute access
    except NotImplementedError:
        return False
    return True


def refuse_a_code_without_mean(option: str, deterministic_encoder: bool, probe: LatentProbe):
    """One line when a deterministic encoder (the mean of q(z|x)) is asked of a posterior whose
    mean has no closed form."""
    if deterministic_encoder and not has_mean(probe.posterior):
        raise VaelabError(
            f"{option} objective.deterministic_encoder=true codes each x by the mean "
            f"of q(z|x); {distribution_name(probe.posterior)} has none in closed form: use "
            "objective.deterministic_encoder=false or posterior=diagonal"
        )


class CodeMatchingObjective(RegularisedELBO):
    """E[−log p(x|z)] + λ·D(q(z), p(z)), D estimated between the batch's codes and as many
    prior draws (:meth:`divergence`, logged under :attr:`divergence_name`).

    ``deterministic_encoder: true`` codes each x as the mean of q(z|x): there is no ELBO then,
    nothing is logged as ``elbo`` and checkpoints watch ``val/loss``. With a stochastic encoder
    the code is one draw of q(z|x) and that draw's ELBO and KL are logged as terms, never
    trained on. λ replaces β: only ``beta=constant beta.value=1.0`` is accepted."""

    #: the logged name of D
    divergence_name: ClassVar[str]
    #: why β does not apply (the refusal's reason)
    weighting_reason: ClassVar[str]

    def __init__(self, lambda_: float, deterministic_encoder: bool, kl: KLEstimator) -> None:
        super().__init__(kl)
        self.lambda_ = float(lambda_)
        self.deterministic_encoder = bool(deterministic_encoder)
        # instance attributes: what is logged depends on the encoder
        self.bound_name = None
        stochastic_terms = () if self.deterministic_encoder else ("elbo", "kl")
        self.term_names = ("recon", self.divergence_name, *stochastic_terms)

    def divergence(self, model: LatentVariableModel, z: Tensor) -> Tensor:
        """D between the codes z [B, D] and B draws of p(z): a scalar."""
        raise NotImplementedError

    @override
    def check_latent(self, probe: LatentProbe) -> None:
        refuse_a_code_without_mean(self.option, self.deterministic_encoder, probe)

    @override
    def check_weighting(self, weighting: Weighting) -> None:
        self.refuse_weighting(weighting, self.weighting_reason)

    @override
    def resolved_choices(self) -> dict[str, Any]:
        return {} if self.deterministic_encoder else super().resolved_choices()

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
        if self.deterministic_encoder:  # no ELBO: the code is the mean of q(z|x)
            z = model.encode(x, y).mean
            recon = -model.decode(z, y).log_prob(x)
            terms = {"recon": recon}
        else:
            evidence = self.evidence(model, x, y)
            z, recon = evidence.samples.z, evidence.recon
            terms = {"recon": recon, "elbo": evidence.elbo, "kl": evidence.kl}
        divergence = batch_constant(self.divergence(model, z), recon.shape[0])
        return ObjectiveOutput(
            loss=recon + self.lambda_ * divergence,
            bound=None,
            terms={**terms, self.divergence_name: divergence},
        )
