"""Denoising autoencoder (Vincent et al. 2010; seed 003 §2): reconstruct the clean x from a
corrupted x̃ ~ q(x̃ | x), with fresh noise at every step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from vaelab.baselines.autoencoder import Autoencoder
from vaelab.errors import VaelabError
from vaelab.models.vae import NetworkBuilder
from vaelab.objectives.reconstruction import Reconstruction, ReconstructionLossKind
from vaelab.schema import ImageShape, PositiveInt, checked_arguments

Noise = Literal["gaussian", "masking"]


def corrupt(
    x: Tensor,
    noise: Noise,
    noise_std: float,
    mask_prob: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """x̃ = x + σ·ε with ε ~ N(0, I) (additive isotropic Gaussian), or x̃ = x ⊙ m with
    m_i ~ Bernoulli(1 − p) (masking noise: each pixel set to 0 with probability p)."""
    if noise == "gaussian":
        epsilon = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + noise_std * epsilon
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= mask_prob
    return x * keep.to(x.dtype)


@checked_arguments("model")
@dataclass(frozen=True)
class Corruption:
    """q(x̃ | x): ``noise`` gaussian (σ = ``noise_std``) or masking (p = ``mask_prob``);
    calling it draws fresh noise from the global RNG."""

    noise: Noise = "gaussian"
    noise_std: float = 0.5
    mask_prob: float = 0.25

    def __post_init__(self) -> None:
        if self.noise == "gaussian" and not self.noise_std > 0:
            raise VaelabError(
                f"model.noise_std must be > 0 for Gaussian noise, got {self.noise_std}"
            )
        if self.noise == "masking" and not 0 < self.mask_prob < 1:
            raise VaelabError(f"model.mask_prob must lie in (0, 1), got {self.mask_prob}")

    def __call__(self, x: Tensor) -> Tensor:
        return corrupt(x, self.noise, self.noise_std, self.mask_prob)


@checked_arguments("model")
class DenoisingAutoencoder(Autoencoder):
    """``vaelab-train model=denoising_autoencoder``: an
    :class:`~vaelab.baselines.autoencoder.Autoencoder` trained on
    ``reconstruction_loss(decode(encode(x̃)), x)`` with x̃ drawn afresh at every step.

    The corruption lives in its objective only: ``encode``, ``reconstruct`` and the pictures
    see clean inputs. Logged: ``<stage>/loss`` (the denoising loss, fresh noise) and, on
    validation and test, ``<stage>/recon`` (the loss on clean inputs, comparable with a
    plain autoencoder's).
    """

    def __init__(
        self,
        net: NetworkBuilder,
        latent_dim: PositiveInt,
        input_shape: ImageShape,
        reconstruction_loss: ReconstructionLossKind = "bce",
        noise: Noise = "gaussian",
        noise_std: float = 0.5,
        mask_prob: float = 0.25,
    ) -> None:
        super().__init__(net, latent_dim, input_shape, reconstruction_loss)
        self.corruption = Corruption(noise, float(noise_std), float(mask_prob))

    def default_objective(self) -> Reconstruction:
        return Reconstruction(self.reconstruction_loss, corruption=self.corruption)
