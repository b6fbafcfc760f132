"""InfoVAE / MMD-VAE (Zhao, Song & Ermon 2017, "InfoVAE: Balancing Learning and Inference in
Variational Autoencoders", arXiv:1706.02262; AAAI 2019)."""

from __future__ import annotations

from typing import Annotated, Any

from torch import Tensor
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import ObjectiveOutput
from vaelab.objectives.elbo import KLEstimator
from vaelab.objectives.mmd import (
    KERNEL_NAMES,
    KERNELS,
    KernelName,
    default_kernel_scale,
    mmd_u_statistic,
)
from vaelab.objectives.regularised import RegularisedELBO, batch_constant
from vaelab.schedules.base import Weighting
from vaelab.schema import Range


class CodeMMD:
    """The MMD²_u between a batch's codes z ~ q(z) and as many prior draws, with the kernel
    ``kernel`` (imq | rbf) at scale ``kernel_scale`` (None: 2·D, Tolstikhin et al. §4)."""

    def __init__(self, kernel: KernelName, kernel_scale: float | None) -> None:
        if kernel not in KERNEL_NAMES:
            raise VaelabError(
                f"objective.kernel must be one of {', '.join(KERNEL_NAMES)}, got {kernel!r}"
            )
        if kernel_scale is not None and kernel_scale <= 0:
            raise VaelabError(f"objective.kernel_scale must be > 0 (or null), got {kernel_scale}")
        self.kernel_name = kernel
        self.kernel_scale = kernel_scale

    def __call__(self, model: LatentVariableModel, z: Tensor) -> Tensor:
        if z.shape[0] < 2:
            raise VaelabError("the MMD U-statistic needs batches of at least 2 data points")
        scale = self.kernel_scale or default_kernel_scale(z.shape[-1])
        kernel = KERNELS[self.kernel_name]
        prior_codes = model.prior.sample(z.shape[0]).to(z.dtype)
        return mmd_u_statistic(z, prior_codes, lambda a, b: kernel(a, b, scale))


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
        kernel_scale: float | None = None,
        kl: KLEstimator = "auto",
    ) -> None:
        super().__init__(kl)
        if alpha > 1:
            raise VaelabError(
                f"objective.alpha must be <= 1 (the KL's weight is 1 − α), got {alpha}"
            )
        if alpha + lambda_ - 1 < 0:
            raise VaelabError(
                "objective.alpha + objective.lambda_ − 1 weights the MMD and must be >= 0, got "
                f"{alpha} + {lambda_} − 1"
            )
        self.alpha = float(alpha)
        self.lambda_ = float(lambda_)
        self.mmd = CodeMMD(kernel, kernel_scale)

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        super().setup(model, weighting, data_info)
        self.refuse_weighting(weighting, "α and λ weight the KL and the MMD, β does not apply")

    @override
    def forward(
        self,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        weighting: Weighting,
        step: int,
    ) -> ObjectiveOutput:
        encoded = self.encode_batch(model, x, y)
        mmd = batch_constant(self.mmd(model, encoded.z), encoded.recon.shape[0])
        loss = encoded.recon + (1 - self.alpha) * encoded.kl + (self.alpha + self.lambda_ - 1) * mmd
        return ObjectiveOutput(
            loss=loss,
            bound=encoded.elbo,
            terms={"recon": encoded.recon, "kl": encoded.kl, "mmd": mmd},
        )
