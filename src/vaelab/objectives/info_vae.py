"""InfoVAE / MMD-VAE (Zhao, Song & Ermon 2017, "InfoVAE: Balancing Learning and Inference in
Variational Autoencoders", arXiv:1706.02262; AAAI 2019)."""

from __future__ import annotations

from typing import Annotated

from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.evidence import EvidenceTerms, KLEstimator
from vaelab.objectives.mmd import CodeMMD, KernelName
from vaelab.objectives.regularised import Regularised, RegularisedELBO, batch_constant
from vaelab.schedules.base import Weighting
from vaelab.schema import PositiveFloat, Range, checked_arguments


@checked_arguments("objective")
class InfoVAE(RegularisedELBO):
    """InfoVAE with the MMD divergence (Zhao et al. 2017, eq. 6 with D = MMD, their §3.3
    "MMD-VAE"): maximise E_q[log p(x|z)] − (1 − α)·KL(q(z|x) || p(z)) −
    (α + λ − 1)·MMD²(q(z), p(z)).

    α = 1 drops the per-point KL (the MMD-VAE); α = 0, λ = 1 is the ELBO. The MMD²_u
    U-statistic compares the batch's codes with as many prior draws (``kernel``: imq, the
    inverse multiquadric, or rbf); it is a squared kernel distance, batch-level, logged as
    ``mmd`` (not in nats). ``<stage>/elbo`` stays the ELBO. The weights replace β, so only
    ``beta=constant beta.value=1.0`` is accepted.
    """

    term_names = ("recon", "kl", "mmd")
    option_name = "info_vae"

    def __init__(
        self,
        alpha: Annotated[float, Range(le=1)] = 0.0,
        lambda_: float = 1000.0,
        kernel: KernelName = "imq",
        kernel_scale: PositiveFloat | None = None,
        kl: KLEstimator = "auto",
    ) -> None:
        super().__init__(kl)
        if alpha + lambda_ - 1 < 0:
            raise VaelabError(
                "objective.alpha + objective.lambda_ − 1 weights the MMD and must be >= 0, got "
                f"{alpha} + {lambda_} − 1"
            )
        self.alpha = float(alpha)
        self.lambda_ = float(lambda_)
        self.mmd = CodeMMD(kernel, kernel_scale)

    @override
    def check_weighting(self, weighting: Weighting) -> None:
        self.refuse_weighting(weighting, "α and λ weight the KL and the MMD, β does not apply")

    @override
    def regularise(
        self,
        model: LatentVariableModel,
        evidence: EvidenceTerms,
        weighting: Weighting,
        step: int,
        split: str,
    ) -> Regularised:
        mmd = batch_constant(self.mmd(model, evidence.samples.z), evidence.recon.shape[0])
        loss = (
            evidence.recon + (1 - self.alpha) * evidence.kl + (self.alpha + self.lambda_ - 1) * mmd
        )
        return Regularised(loss=loss, terms={"mmd": mmd})
