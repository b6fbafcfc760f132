"""FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising", ICML)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Annotated, Any

import torch
from torch import Tensor, nn
from torchvision.ops import MLP
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import AdversaryStep, ObjectiveOutput
from vaelab.objectives.evidence import EvidenceTerms, KLEstimator
from vaelab.objectives.regularised import Regularised, RegularisedELBO
from vaelab.schedules.base import Weighting
from vaelab.schema import Range, checked_arguments


def permute_dims(z: Tensor) -> Tensor:
    """Each latent dimension of the batch z [B, D] shuffled across the batch independently
    (Kim & Mnih 2018, Algorithm 1): samples of ∏_d q(z_d) from samples of q(z)."""
    order = torch.rand(z.shape, device=z.device).argsort(dim=0)
    return z.gather(0, order)


def discriminator_network(
    latent_dim: int, width: int, depth: int, negative_slope: float
) -> nn.Module:
    """``depth`` hidden layers of ``width`` leaky-ReLU units and one logit (the paper's
    discriminator: 6 × 1000, slope 0.2, Appendix A)."""
    return MLP(
        latent_dim,
        [width] * depth + [1],
        activation_layer=partial(nn.LeakyReLU, negative_slope),
    )


def discriminator_loss(joint_logits: Tensor, product_logits: Tensor) -> Tensor:
    """Cross-entropy of telling codes of q(z) (label 1) from codes of ∏_d q(z_d) (label 0)."""
    logits = torch.cat([joint_logits, product_logits])
    labels = torch.cat([torch.ones_like(joint_logits), torch.zeros_like(product_logits)])
    return nn.functional.binary_cross_entropy_with_logits(logits, labels)


@checked_arguments("objective")
class FactorVAE(RegularisedELBO):
    """FactorVAE (Kim & Mnih 2018, eq. 2): ELBO − γ·TC(q(z)), TC = KL(q(z) || ∏_d q(z_d))
    estimated by the density-ratio trick (their eq. 3): a discriminator D tells codes
    z ~ q(z) from ``permute_dims`` codes, and TC ≈ E_q(z)[log D(z) / (1 − D(z))], the mean of
    its logit on the batch's codes (logged per data point as ``total_correlation``, nats).

    The discriminator (``discriminator_width`` × ``discriminator_depth`` leaky-ReLU MLP) is an
    adversary the module trains with its own optimiser (``adversary_optimizer``; the paper:
    Adam 1e-4, betas 0.5/0.9) after each model step, on the same batch: its first half as q(z)
    codes, its second half permuted (Algorithm 2 draws a second batch; halves keep the two
    sets independent). Its loss and accuracy are logged as ``train/adversary_loss`` and
    ``train/discriminator_accuracy``. ``beta=`` weights the ELBO's KL (β = 1: the paper).
    """

    term_names = ("recon", "kl", "total_correlation")
    option_name = "factor_vae"

    def __init__(
        self,
        gamma: Annotated[float, Range(ge=0)] = 10.0,
        discriminator_width: Annotated[int, Range(ge=1)] = 1000,
        discriminator_depth: Annotated[int, Range(ge=0)] = 6,
        negative_slope: Annotated[float, Range(ge=0)] = 0.2,
        adversary_optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        kl: KLEstimator = "auto",
    ) -> None:
        super().__init__(kl)
        self.gamma = float(gamma)
        self.discriminator_width = int(discriminator_width)
        self.discriminator_depth = int(discriminator_depth)
        self.negative_slope = float(negative_slope)
        self.adversary_optimizer = adversary_optimizer or partial(
            torch.optim.Adam, lr=1e-4, betas=(0.5, 0.9)
        )
        self.discriminator: nn.Module | None = None

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        super().setup(model, weighting, data_info)
        if self.discriminator is None:  # once: setup runs again when the data is ready
            self.discriminator = discriminator_network(
                model.latent_structure.code_dim,
                self.discriminator_width,
                self.discriminator_depth,
                self.negative_slope,
            ).to(model.device)

    @override
    def adversary_parameters(self) -> Iterator[nn.Parameter] | None:
        # None before setup: the module asks only after setting the objective up
        return None if self.discriminator is None else self.discriminator.parameters()

    def total_correlation(self, z: Tensor) -> Tensor:
        """log D(z)/(1 − D(z)) per code [B]: the density-ratio estimate of log q(z)/∏ q(z_d)."""
        if self.discriminator is None:
            raise VaelabError("objective=factor_vae: call setup(model, ...) before using it")
        return self.discriminator(z).squeeze(-1)

    @override
    def regularise(
        self,
        model: LatentVariableModel,
        evidence: EvidenceTerms,
        weighting: Weighting,
        step: int,
        split: str,
    ) -> Regularised:
        total_correlation = self.total_correlation(evidence.samples.z)
        return Regularised(
            loss=evidence.recon
            + weighting.penalty(evidence.kl, evidence.kl_per_dim, step)
            + self.gamma * total_correlation,
            terms={"total_correlation": total_correlation},
        )

    @override
    def adversary_step(
        self, model: LatentVariableModel, x: Tensor, y: Tensor | None, output: ObjectiveOutput
    ) -> AdversaryStep:
        if x.shape[0] < 4:
            raise VaelabError("objective=factor_vae needs batches of at least 4 data points")
        with torch.no_grad():
            z = model.encode(x, y).sample()
        half = z.shape[0] // 2
        joint_logits = self.total_correlation(z[:half])
        product_logits = self.total_correlation(permute_dims(z[half : 2 * half]))
        loss = discriminator_loss(joint_logits, product_logits)
        correct = torch.cat([joint_logits > 0, product_logits <= 0]).float()
        return AdversaryStep(loss=loss, terms={"discriminator_accuracy": correct.mean()})
