"""Deterministic autoencoder x → code → x̂ (seed 003 §2, seed 004 "A short review of
autoencoders"): the VAE's encoder/decoder networks without a prior, a posterior or a KL."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from typing_extensions import override

from vaelab.baselines.point_mass import PointMass
from vaelab.likelihoods.base import EVENT_DIMS, ImageDistribution
from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.models.interface import LatentVariableModel, input_shape_of
from vaelab.models.vae import NetworkBuilder, in_dtype_of
from vaelab.objectives.reconstruction import Reconstruction, ReconstructionLossKind
from vaelab.schema import ImageShape, PositiveInt, checked_arguments


@checked_arguments("model")
class Autoencoder(LatentVariableModel):
    """``vaelab-train model=autoencoder``: ``encode`` x [B, C, H, W] → δ(z − code), code
    [B, K]; ``decode`` code → Bernoulli(σ(logits)) over pixels, whose mean σ(logits) is the
    picture and whose −log p(x|z) is the BCE loss. Trained by gradient steps on
    :class:`~vaelab.objectives.reconstruction.Reconstruction` (``reconstruction_loss``:
    bce | mse); it takes ``optimizer=`` and ``lr_scheduler=`` but no posterior, likelihood,
    prior, objective or β.

    ``net`` is a partial network builder (``model.net``) as for the VAE, its encoder
    outputting the K code numbers and its decoder one logit per pixel.
    """

    config_groups: ClassVar[frozenset[str]] = frozenset({"optimizer", "lr_scheduler"})

    def __init__(
        self,
        net: NetworkBuilder,
        latent_dim: PositiveInt,
        input_shape: ImageShape,
        reconstruction_loss: ReconstructionLossKind = "bce",
    ) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.input_shape = input_shape_of(input_shape)
        self.reconstruction_loss: ReconstructionLossKind = reconstruction_loss
        # maps logits to the picture σ(logits) and scores targets (−BCE)
        self.likelihood = BernoulliLikelihood()
        networks = net(
            input_shape=self.input_shape,
            latent_dim=self.latent_dim,
            encoder_out_features=self.latent_dim,
            decoder_out_channels=self.input_shape[0],
        )
        self.encoder = networks.encoder
        self.decoder = networks.decoder

    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> PointMass:
        """The deterministic encoder as a distribution (mean = code, variance 0)."""
        return PointMass(self.encoder(in_dtype_of(self.encoder, x)))

    @override
    def decode(self, z: Tensor, y: Tensor | None = None) -> ImageDistribution:
        """Bernoulli(σ(logits)) for codes [..., K]: batch shape [...], event (C, H, W)."""
        leading = z.shape[:-1]
        out = self.decoder(in_dtype_of(self.decoder, z.reshape(-1, self.latent_dim)))
        return self.likelihood.observation(out.reshape(*leading, *out.shape[-EVENT_DIMS:]))

    def sample(
        self, num: int, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Pictures σ(logits) of codes z ~ N(0, I): [num, C, H, W].

        An autoencoder has no prior p(z): nothing makes its codes fill N(0, I), so most of
        these decode to blurs or non-images. That is the point of showing them — it is not a
        generative model (seed 003); a VAE's KL term is what makes this work.
        """
        z = torch.randn(num, self.latent_dim, generator=generator, device=self.device)
        return self.decode(z, y).mean

    def default_objective(self) -> Reconstruction:
        return Reconstruction(self.reconstruction_loss)
