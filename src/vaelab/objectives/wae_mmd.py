"""WAE-MMD (Tolstikhin, Bousquet, Gelly & Schölkopf 2018, "Wasserstein Auto-Encoders", ICLR)."""

from __future__ import annotations

from torch import Tensor

from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.code_matching import CodeMatchingObjective
from vaelab.objectives.evidence import KLEstimator
from vaelab.objectives.mmd import CodeMMD, KernelName
from vaelab.schema import NonNegativeFloat, PositiveFloat, checked_arguments


@checked_arguments("objective")
class WAEMMD(CodeMatchingObjective):
    """WAE-MMD (Tolstikhin et al. 2018, eq. 4 and Algorithm 2): minimise
    E[c(x, G(z))] + λ·MMD²(q(z), p(z)), the cost c = −log p(x|z) of the model's likelihood
    (squared error up to constants for a fixed-σ Gaussian) and MMD²_u against as many prior
    draws, with the inverse multiquadric (default, as in the paper) or RBF kernel.
    ``deterministic_encoder: true`` is the paper's MNIST setting (see
    :class:`~vaelab.objectives.code_matching.CodeMatchingObjective` for what is logged)."""

    option_name = "wae_mmd"
    divergence_name = "mmd"
    weighting_reason = "λ weights the MMD, β does not apply"

    def __init__(
        self,
        lambda_: NonNegativeFloat = 10.0,
        kernel: KernelName = "imq",
        kernel_scale: PositiveFloat | None = None,
        deterministic_encoder: bool = True,
        kl: KLEstimator = "auto",
    ) -> None:
        super().__init__(lambda_, deterministic_encoder, kl)
        self.mmd = CodeMMD(kernel, kernel_scale)

    def divergence(self, model: LatentVariableModel, z: Tensor) -> Tensor:
        return self.mmd(model, z)
