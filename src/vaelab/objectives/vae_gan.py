"""VAE-GAN (Larsen, Sønderby, Larochelle & Winther 2016, "Autoencoding beyond pixels using a
learned similarity metric", ICML)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, NamedTuple

import torch
from torch import Tensor, nn
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import GroupLoss, ObjectiveOutput, OptimiserGroup
from vaelab.objectives.evidence import EvidenceTerms, KLEstimator
from vaelab.objectives.gradient_penalty import squared_input_gradient_norm
from vaelab.objectives.regularised import Regularised, RegularisedELBO
from vaelab.schedules.base import Weighting
from vaelab.schema import NonNegativeFloat, Range, checked_arguments

#: the optimiser groups, in Algorithm 1's order
ENCODER, DECODER, DISCRIMINATOR = "encoder", "decoder", "discriminator"


class Judgement(NamedTuple):
    """The discriminator on a batch of images: its layer-l features [B, F] and logit [B]."""

    features: Tensor
    logit: Tensor


class ImageDiscriminator(nn.Module):
    """Dis: flattened images → ``depth`` hidden layers of ``width`` leaky-ReLU units → one
    logit that the image is data; Dis_l is the output of hidden layer ``feature_layer``."""

    def __init__(
        self,
        input_size: int,
        width: int,
        depth: int,
        feature_layer: int,
        negative_slope: float,
    ) -> None:
        super().__init__()
        sizes = [input_size] + [width] * depth
        self.hidden = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.LeakyReLU(negative_slope))
            for a, b in itertools.pairwise(sizes)
        )
        self.feature_layer = feature_layer
        self.head = nn.Linear(sizes[-1], 1)

    def forward(self, images: Tensor) -> Judgement:
        h = images.flatten(1)
        features = h
        for index, layer in enumerate(self.hidden, start=1):
            h = layer(h)
            if index == self.feature_layer:
                features = h
        return Judgement(features=features, logit=self.head(h).squeeze(-1))


def feature_negative_log_likelihood(data_features: Tensor, decoded_features: Tensor) -> Tensor:
    """−log N(Dis_l(x) | Dis_l(x̃), I) per data point [B] (Larsen et al. 2016, §2): the
    learned similarity, in nats of the feature space."""
    squared = (data_features - decoded_features).pow(2).sum(dim=-1)
    return 0.5 * squared + 0.5 * data_features.shape[-1] * math.log(2 * math.pi)


def binary_cross_entropy(logits: Tensor, is_data: bool) -> Tensor:
    """Per data point [B]: −log Dis(x) (``is_data``) or −log(1 − Dis(x))."""
    targets = torch.full_like(logits, float(is_data))
    return nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")


@checked_arguments("objective")
class VAEGAN(RegularisedELBO):
    """VAE-GAN (Larsen et al. 2016, §2 and Algorithm 1): a VAE whose reconstruction is
    measured in the features of layer l of a GAN discriminator Dis on images. With z ~ q(z|x),
    x̃ = Dec(z), x_p = Dec(z_p), z_p ~ p(z), three optimiser groups stepped in Algorithm 1's
    order on the same batch, each on its own loss:

    - ``encoder`` (everything but the decoder; the module's ``optimizer=``):
      KL(q(z|x) ‖ p(z)) + L_llike, L_llike = −log N(Dis_l(x) | Dis_l(x̃), I)
      (``feature_recon``); this is the logged ``loss``;
    - ``decoder`` (``decoder_parameters()``; a second instance of ``optimizer=``):
      γ·L_llike − L_GAN's generator part, in the non-saturating form
      −log Dis(x̃) − log Dis(x_p) (Goodfellow et al. 2014, §3);
    - ``discriminator`` (``adversary_optimizer``): −L_GAN = −log Dis(x) − log(1 − Dis(x̃))
      − log(1 − Dis(x_p)), plus ``r1_penalty``·½‖∇_x Dis(x)‖² on data (Mescheder et al. 2018,
      eq. 9; 0, the paper's setting, by default).

    The three gradients are those of Algorithm 1, taken at the same parameters: the decoder's
    loss reuses the batch's z and z_p, and the discriminator's the x̃ and x_p of the forward
    pass, so the earlier groups' steps do not change them. Also logged: the pixel ``recon``
    (−log p(x|z) of the model's likelihood), ``kl`` and ``elbo``, the model's true ELBO
    (checkpoints watch ``val/elbo``), though the decoder is not trained on it.
    ``beta=`` weights the KL (β = 1: the paper).
    """

    term_names = ("recon", "kl", "feature_recon")
    option_name = "vae_gan"

    def __init__(
        self,
        gamma: NonNegativeFloat = 1.0,
        discriminator_width: Annotated[int, Range(ge=1)] = 512,
        discriminator_depth: Annotated[int, Range(ge=1)] = 3,
        feature_layer: Annotated[int, Range(ge=1)] = 2,
        negative_slope: Annotated[float, Range(ge=0)] = 0.2,
        r1_penalty: NonNegativeFloat = 0.0,
        adversary_optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        kl: KLEstimator = "auto",
    ) -> None:
        super().__init__(kl)
        if feature_layer > discriminator_depth:
            raise VaelabError(
                f"objective.feature_layer={feature_layer} must be at most "
                f"objective.discriminator_depth={discriminator_depth}"
            )
        self.gamma = float(gamma)
        self.discriminator_width = int(discriminator_width)
        self.discriminator_depth = int(discriminator_depth)
        self.feature_layer = int(feature_layer)
        self.negative_slope = float(negative_slope)
        self.r1_penalty = float(r1_penalty)
        self.adversary_optimizer = adversary_optimizer or partial(torch.optim.Adam, lr=1e-4)
        self.discriminator: ImageDiscriminator | None = None

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        super().setup(model, weighting, data_info)
        model.decoder_parameters()  # refuses a model without one decoder network
        if self.discriminator is None:  # once: setup runs again when the data is ready
            self.discriminator = ImageDiscriminator(
                math.prod(model.input_shape),
                self.discriminator_width,
                self.discriminator_depth,
                self.feature_layer,
                self.negative_slope,
            ).to(model.device)

    def judge(self, images: Tensor) -> Judgement:
        if self.discriminator is None:
            raise VaelabError(f"{self.option}: call setup(model, ...) before using it")
        return self.discriminator(images)

    def feature_recon(self, x: Tensor, decoded: Tensor) -> Tensor:
        """L_llike per data point [B] of the images ``decoded`` from x's codes."""
        return feature_negative_log_likelihood(self.judge(x).features, self.judge(decoded).features)

    @override
    def regularise(
        self,
        model: LatentVariableModel,
        evidence: EvidenceTerms,
        weighting: Weighting,
        step: int,
        split: str,
    ) -> Regularised:
        raise NotImplementedError("VAEGAN.forward computes its terms from the batch itself")

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
        decoded = evidence.samples.observation.mean
        feature_recon = self.feature_recon(x, decoded)
        output = ObjectiveOutput(
            loss=weighting.penalty(evidence.kl, evidence.kl_per_dim, step) + feature_recon,
            bound=evidence.elbo,
            terms={"recon": evidence.recon, "kl": evidence.kl, "feature_recon": feature_recon},
            per_dimension=evidence.per_dimension,
        )
        if split == "train" and torch.is_grad_enabled():  # what the later groups reuse
            with torch.no_grad():
                prior_z = model.prior.sample(x.shape[0], y)
                prior_decoded = model.decode(prior_z, y).mean
            output.intermediates.update(
                z=evidence.samples.z.detach(),
                prior_z=prior_z,
                decoded=decoded.detach(),
                prior_decoded=prior_decoded,
            )
        return output

    @override
    def optimiser_groups(self, model: LatentVariableModel) -> tuple[OptimiserGroup, ...]:
        if self.discriminator is None:
            raise VaelabError(f"{self.option}: call setup(model, ...) before using it")
        return (
            OptimiserGroup(ENCODER, model.encoder_parameters()),
            OptimiserGroup(DECODER, model.decoder_parameters()),
            OptimiserGroup(
                DISCRIMINATOR, list(self.discriminator.parameters()), self.adversary_optimizer
            ),
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
        saved = output.intermediates
        if name == ENCODER:
            return GroupLoss(loss=output.loss.mean())
        if name == DECODER:
            decoded = model.decode(saved["z"], y).mean
            prior_decoded = model.decode(saved["prior_z"], y).mean
            with torch.no_grad():
                data_features = self.judge(x).features
            fake, prior_fake = self.judge(decoded), self.judge(prior_decoded)
            feature_recon = feature_negative_log_likelihood(data_features, fake.features)
            fooling = binary_cross_entropy(fake.logit, True) + binary_cross_entropy(
                prior_fake.logit, True
            )
            return GroupLoss(loss=(self.gamma * feature_recon + fooling).mean())
        if name == DISCRIMINATOR:
            real = self.judge(x).logit
            fake = self.judge(saved["decoded"]).logit
            prior_fake = self.judge(saved["prior_decoded"]).logit
            gan = (
                binary_cross_entropy(real, True)
                + binary_cross_entropy(fake, False)
                + binary_cross_entropy(prior_fake, False)
            )
            loss = gan.mean()
            if self.r1_penalty > 0:
                penalty = squared_input_gradient_norm(lambda u: self.judge(u).logit, x)
                loss = loss + 0.5 * self.r1_penalty * penalty.mean()
            correct = torch.cat([real > 0, fake <= 0, prior_fake <= 0]).float()
            return GroupLoss(loss=loss, terms={"discriminator_accuracy": correct.mean()})
        raise VaelabError(f"{self.option} has no optimiser group {name!r}")
