"""Adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow & Frey 2016, "Adversarial
Autoencoders", ICLR workshop)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

import torch
from torch import Tensor, nn
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel, MissingCapability
from vaelab.objectives.base import GroupLoss, ObjectiveOutput, OptimiserGroup
from vaelab.objectives.code_matching import refuse_a_code_without_mean
from vaelab.objectives.evidence import KLEstimator, LatentProbe
from vaelab.objectives.factor_vae import discriminator_loss, discriminator_network
from vaelab.objectives.regularised import RegularisedELBO
from vaelab.schedules.base import Weighting
from vaelab.schema import Range, checked_arguments

#: the optimiser groups, in the order the paper's two phases step them on each batch
AUTOENCODER, DISCRIMINATOR, GENERATOR = "autoencoder", "discriminator", "generator"


def prior_is_real_loss(logits: Tensor) -> Tensor:
    """The generator's loss: cross-entropy of the discriminator calling codes of q(z) prior
    draws (label 1), the non-saturating form of the minimax game (Goodfellow et al. 2014, §3)."""
    return nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


@checked_arguments("objective")
class AdversarialAutoencoder(RegularisedELBO):
    """Adversarial autoencoder (Makhzani et al. 2016, §2 and eq. 1): an autoencoder whose
    aggregate code distribution q(z) = E_x q(z|x) is matched to the model's prior p(z) by a
    discriminator D on codes, trained on each batch in the paper's two phases, as three
    optimiser groups stepped in order:

    1. ``autoencoder`` (the whole model, the module's ``optimizer=``): the reconstruction
       −log p(x|z) of the model's likelihood (logged ``recon``; ``loss`` is this);
    2. ``discriminator`` (``adversary_optimizer``): cross-entropy of telling prior draws
       z ~ p(z) (label 1) from codes of q(z|x) (label 0), eq. 1's max over D (logged
       ``train/discriminator_loss``, ``train/discriminator_accuracy``);
    3. ``generator`` (the encoder's parameters, a second instance of ``optimizer=``): the
       encoder fooling D, −log D(z) for codes of q(z|x) (``train/generator_loss``).

    ``deterministic_encoder: true`` codes x by the mean of q(z|x) (the paper's deterministic
    q(z|x), §2); false: one reparameterised draw (its Gaussian q(z|x)); its ELBO is then
    logged as a term ``elbo`` (with its ``kl``), never trained on. There is no bound on
    log p(x): checkpoints watch ``val/loss``. The discriminator: ``discriminator_depth``
    hidden layers of ``discriminator_width`` units (the paper's MNIST: two of 1000 ReLU).
    """

    option_name = "adversarial_autoencoder"

    def __init__(
        self,
        deterministic_encoder: bool = True,
        discriminator_width: Annotated[int, Range(ge=1)] = 1000,
        discriminator_depth: Annotated[int, Range(ge=0)] = 2,
        negative_slope: Annotated[float, Range(ge=0)] = 0.0,
        adversary_optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        kl: KLEstimator = "auto",
    ) -> None:
        super().__init__(kl)
        self.deterministic_encoder = bool(deterministic_encoder)
        self.discriminator_width = int(discriminator_width)
        self.discriminator_depth = int(discriminator_depth)
        self.negative_slope = float(negative_slope)
        self.adversary_optimizer = adversary_optimizer or partial(torch.optim.Adam, lr=1e-3)
        self.discriminator: nn.Module | None = None
        # instance attributes: what is logged depends on the encoder
        self.bound_name = None
        self.term_names = ("recon",) if deterministic_encoder else ("recon", "elbo", "kl")

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        super().setup(model, weighting, data_info)
        try:
            model.prior  # noqa: B018 - the probe is the attribute access
        except MissingCapability as missing:
            raise VaelabError(
                f"{self.option} matches the codes to the model's prior p(z): {missing}; use "
                "model=mlp"
            ) from missing
        if self.discriminator is None:  # once: setup runs again when the data is ready
            self.discriminator = discriminator_network(
                model.latent_structure.code_dim,
                self.discriminator_width,
                self.discriminator_depth,
                self.negative_slope,
            ).to(model.device)

    @override
    def check_latent(self, probe: LatentProbe) -> None:
        refuse_a_code_without_mean(self.option, self.deterministic_encoder, probe)

    @override
    def check_weighting(self, weighting: Weighting) -> None:
        self.refuse_weighting(weighting, "the discriminator matches q(z) to p(z), β does not apply")

    @override
    def resolved_choices(self) -> dict[str, Any]:
        return {} if self.deterministic_encoder else super().resolved_choices()

    def codes(self, model: LatentVariableModel, x: Tensor, y: Tensor | None) -> Tensor:
        """z [B, D] of each x: the mean of q(z|x), or one reparameterised draw."""
        posterior = model.encode(x, y)
        return posterior.mean if self.deterministic_encoder else posterior.rsample()

    def discriminate(self, z: Tensor) -> Tensor:
        """D's logit [B] that z is a prior draw."""
        if self.discriminator is None:
            raise VaelabError(f"{self.option}: call setup(model, ...) before using it")
        return self.discriminator(z).squeeze(-1)

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
        if self.deterministic_encoder:
            recon = -model.decode(self.codes(model, x, y), y).log_prob(x)
            terms = {"recon": recon}
        else:
            evidence = self.evidence(model, x, y)
            recon = evidence.recon
            terms = {"recon": recon, "elbo": evidence.elbo, "kl": evidence.kl}
        return ObjectiveOutput(loss=recon, bound=None, terms=terms)

    @override
    def optimiser_groups(self, model: LatentVariableModel) -> tuple[OptimiserGroup, ...]:
        if self.discriminator is None:
            raise VaelabError(f"{self.option}: call setup(model, ...) before using it")
        trainable = [p for p in model.parameters() if p.requires_grad]
        return (
            OptimiserGroup(AUTOENCODER, trainable),
            OptimiserGroup(
                DISCRIMINATOR, list(self.discriminator.parameters()), self.adversary_optimizer
            ),
            OptimiserGroup(GENERATOR, model.encoder_parameters()),
        )

    @override
    def group_loss(
        self,
        name: str,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        output: ObjectiveOutput,
    ) -> GroupLoss:
        if name == AUTOENCODER:
            return GroupLoss(loss=output.loss.mean())
        if name == DISCRIMINATOR:
            with torch.no_grad():
                codes = self.codes(model, x, y)
                prior_draws = model.prior.sample(codes.shape[0], y)
            real, fake = self.discriminate(prior_draws), self.discriminate(codes)
            correct = torch.cat([real > 0, fake <= 0]).float()
            return GroupLoss(
                loss=discriminator_loss(real, fake),
                terms={"discriminator_accuracy": correct.mean()},
            )
        if name == GENERATOR:
            return GroupLoss(loss=prior_is_real_loss(self.discriminate(self.codes(model, x, y))))
        raise VaelabError(f"{self.option} has no optimiser group {name!r}")
