"""WAE-MMD (Tolstikhin, Bousquet, Gelly & Schölkopf 2018, "Wasserstein Auto-Encoders", ICLR)."""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.distributions import Distribution
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import ObjectiveOutput
from vaelab.objectives.evidence import KLEstimator, LatentProbe
from vaelab.objectives.mmd import CodeMMD, KernelName
from vaelab.objectives.regularised import RegularisedELBO, batch_constant, distribution_name
from vaelab.schedules.base import Weighting
from vaelab.schema import NonNegativeFloat, PositiveFloat, checked_arguments


@checked_arguments("objective")
class WAEMMD(RegularisedELBO):
    """WAE-MMD (Tolstikhin et al. 2018, eq. 4 and Algorithm 2): minimise
    E[c(x, G(z))] + λ·MMD²(q(z), p(z)), the cost c = −log p(x|z) of the model's likelihood
    (squared error up to constants for a fixed-σ Gaussian) and MMD²_u against as many prior
    draws, with the inverse multiquadric (default, as in the paper) or RBF kernel.

    ``deterministic_encoder: true`` (the paper's MNIST setting) codes each x as the mean of
    q(z|x): there is no ELBO then, nothing is logged as ``elbo`` and checkpoints watch
    ``val/loss``. With a stochastic encoder the code is one draw of q(z|x) and the ELBO of
    that draw is logged as a term ``elbo`` (with its ``kl``), never trained on. λ replaces
    β: only ``beta=constant beta.value=1.0`` is accepted.
    """

    option_name = "wae_mmd"

    def __init__(
        self,
        lambda_: NonNegativeFloat = 10.0,
        kernel: KernelName = "imq",
        kernel_scale: PositiveFloat | None = None,
        deterministic_encoder: bool = True,
        kl: KLEstimator = "auto",
    ) -> None:
        super().__init__(kl)
        self.lambda_ = float(lambda_)
        self.mmd = CodeMMD(kernel, kernel_scale)
        self.deterministic_encoder = bool(deterministic_encoder)
        # instance attributes: what is logged depends on the encoder
        self.bound_name = None
        self.term_names = (
            ("recon", "mmd") if deterministic_encoder else ("recon", "mmd", "elbo", "kl")
        )

    @override
    def check_latent(self, probe: LatentProbe) -> None:
        if self.deterministic_encoder and not has_mean(probe.posterior):
            raise VaelabError(
                f"{self.option} objective.deterministic_encoder=true codes each x by the mean "
                f"of q(z|x); {distribution_name(probe.posterior)} has none in closed form: use "
                "objective.deterministic_encoder=false or posterior=diagonal"
            )

    @override
    def check_weighting(self, weighting: Weighting) -> None:
        self.refuse_weighting(weighting, "λ weights the MMD, β does not apply")

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
        mmd = batch_constant(self.mmd(model, z), recon.shape[0])
        return ObjectiveOutput(
            loss=recon + self.lambda_ * mmd, bound=None, terms={**terms, "mmd": mmd}
        )


def has_mean(distribution: Distribution) -> bool:
    """Whether the distribution's mean is known in closed form."""
    try:
        distribution.mean  # noqa: B018 - the probe is the attribute access
    except NotImplementedError:
        return False
    return True
