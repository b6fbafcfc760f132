"""Deterministic autoencoder x → code → x̂ (seed 003 §2, seed 004 "A short review of
autoencoders"): the VAE's encoder/decoder networks without a prior, a posterior or a KL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaelab.baselines.checkpoint_metric import MonitorsValLossWithoutELBO
from vaelab.baselines.epoch_means import EpochMeans
from vaelab.baselines.point_mass import PointMass
from vaelab.likelihoods.base import EVENT_DIMS
from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.nets.networks import EncoderDecoder
from vaelab.optim.configure import optimizer_config

ReconstructionLoss = Literal["bce", "mse"]
RECONSTRUCTION_LOSSES = ("bce", "mse")


def reconstruction_loss(kind: ReconstructionLoss, logits: Tensor, x: Tensor) -> Tensor:
    """Per-image loss [B], summed over pixels.

    ``bce``: BCE-with-logits = −log Bernoulli(x | σ(logits)) in nats (seed 004's
    ``BCEWithLogitsLoss(reduction="sum")``; seed 003's Keras loss is this / #pixels).
    ``mse``: Σ (x − σ(logits))², the squared error of the sigmoid output.
    """
    logits, x = logits.float(), x.float()
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        per_pixel = (torch.sigmoid(logits) - x) ** 2
    return per_pixel.flatten(-EVENT_DIMS).sum(-1)


class Autoencoder(nn.Module):
    """``encode``: x [B, C, H, W] → δ(z − code), code [B, K]; ``decode``: code → logits.

    It offers the plotting interface of :class:`~vaelab.vae.VAE` (``reconstruct``,
    ``sample_images``, ``decode``, ``likelihood.mean``, ``latent_dim``) so the image callbacks
    draw it too. ``likelihood`` only maps logits to the picture σ(logits). An autoencoder has
    no prior: ``sample_images`` decodes codes z ~ N(0, I), which shows why it is not a
    generative model (seed 003).
    """

    def __init__(
        self, encoder: nn.Module, decoder: nn.Module, latent_dim: int, input_shape: Sequence[int]
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = int(latent_dim)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.likelihood = BernoulliLikelihood()

    def code(self, x: Tensor) -> Tensor:
        """The code [B, K] of images [B, C, H, W]."""
        return self.encoder(x)

    def encode(self, x: Tensor) -> PointMass:
        """The deterministic encoder as a distribution (mean = code, variance 0)."""
        return PointMass(self.code(x))

    def decode(self, z: Tensor) -> Tensor:
        """Logits for codes of shape [..., K] → [..., C, H, W]."""
        leading = z.shape[:-1]
        out = self.decoder(z.reshape(-1, self.latent_dim))
        return out.reshape(*leading, *out.shape[-EVENT_DIMS:])

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.code(x))

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.likelihood.mean(self(x))

    def sample_images(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        device = next(self.parameters()).device
        z = torch.randn(num, self.latent_dim, generator=generator, device=device)
        return self.likelihood.mean(self.decode(z))


class AutoencoderModule(MonitorsValLossWithoutELBO):
    """Trains an :class:`Autoencoder` on ``reconstruction_loss`` (per image, summed over
    pixels, mean over the batch). Logged: ``<stage>/loss`` (the minimised loss) and
    ``<stage>/recon`` (the loss on clean inputs; equal to ``loss`` here).

    There is no ELBO, so checkpoint callbacks watching ``val/elbo`` watch ``val/loss`` (min).
    ``likelihood``, ``posterior``, ``objective`` and ``beta`` are accepted because
    :func:`~vaelab.builders.build_module` passes them to every model; they are unused.
    """

    metric_names: tuple[str, ...] = ("loss", "recon")

    def __init__(
        self,
        net: Callable[..., EncoderDecoder],
        latent_dim: int,
        input_shape: Sequence[int],
        optimizer: Callable[..., torch.optim.Optimizer],
        lr_scheduler: Callable[..., Any] | None = None,
        reconstruction_loss: ReconstructionLoss = "bce",
        likelihood: Any = None,
        posterior: Any = None,
        objective: Any = None,
        beta: Any = None,
    ) -> None:
        super().__init__()
        if int(latent_dim) < 1:
            raise ValueError(f"model.latent_dim must be >= 1, got {latent_dim}")
        if reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"model.reconstruction_loss must be one of "
                f"{', '.join(RECONSTRUCTION_LOSSES)}, got {reconstruction_loss!r}"
            )
        input_shape = tuple(int(s) for s in input_shape)
        latent_dim = int(latent_dim)
        self.save_hyperparameters(
            {
                "latent_dim": latent_dim,
                "input_shape": list(input_shape),
                "reconstruction_loss": reconstruction_loss,
            }
        )
        nets = net(
            input_shape=input_shape,
            latent_dim=latent_dim,
            encoder_out_features=latent_dim,
            decoder_out_channels=input_shape[0],
        )
        self.autoencoder = Autoencoder(nets.encoder, nets.decoder, latent_dim, input_shape)
        self.loss_kind: ReconstructionLoss = reconstruction_loss
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.epoch_means = EpochMeans(self.metric_names)

    @property
    def vae(self) -> Autoencoder:
        """The network the image callbacks draw (they read ``pl_module.vae``)."""
        return self.autoencoder

    def forward(self, x: Tensor) -> Tensor:
        return self.autoencoder(x)

    def loss_on(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """Per-image reconstruction loss of ``targets`` from the code of ``inputs``."""
        return reconstruction_loss(self.loss_kind, self(inputs), targets)

    def training_loss(self, x: Tensor) -> Tensor:
        """The per-image loss minimised on a training batch."""
        return self.loss_on(x, x)

    def evaluation_values(self, x: Tensor) -> dict[str, Tensor]:
        recon = self.loss_on(x, x)
        return {"loss": recon, "recon": recon}

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self.training_loss(batch[0]).mean()
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.epoch_means.log(self, "val", self.evaluation_values(batch[0]), prog_bar="loss")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.epoch_means.log(self, "test", self.evaluation_values(batch[0]))

    def configure_optimizers(self) -> Any:
        return optimizer_config(
            self.parameters(), self.optimizer_factory, self.lr_scheduler_factory
        )
