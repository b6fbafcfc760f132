"""Denoising autoencoder (Vincent et al. 2010; seed 003 §2): reconstruct the clean x from a
corrupted x̃ ~ q(x̃ | x), with fresh noise at every step."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from vaelab.baselines.autoencoder import AutoencoderModule

Noise = Literal["gaussian", "masking"]
NOISES = ("gaussian", "masking")


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


class DenoisingAutoencoderModule(AutoencoderModule):
    """An :class:`~vaelab.baselines.autoencoder.AutoencoderModule` whose loss is
    ``reconstruction_loss(decoder(encoder(x̃)), x)`` with x̃ drawn afresh every step.

    Logged: ``<stage>/loss`` (the denoising loss, fresh noise) and ``<stage>/recon`` (the loss
    on clean inputs, comparable with a plain autoencoder's).
    """

    def __init__(
        self,
        *args: Any,
        noise: Noise = "gaussian",
        noise_std: float = 0.5,
        mask_prob: float = 0.25,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if noise not in NOISES:
            raise ValueError(f"model.noise must be one of {', '.join(NOISES)}, got {noise!r}")
        if noise == "gaussian" and not noise_std > 0:
            raise ValueError(f"model.noise_std must be > 0 for Gaussian noise, got {noise_std}")
        if noise == "masking" and not 0 < mask_prob < 1:
            raise ValueError(f"model.mask_prob must lie in (0, 1), got {mask_prob}")
        self.noise: Noise = noise
        self.noise_std = float(noise_std)
        self.mask_prob = float(mask_prob)
        self.save_hyperparameters(
            {"noise": noise, "noise_std": self.noise_std, "mask_prob": self.mask_prob}
        )

    def corrupt(self, x: Tensor) -> Tensor:
        return corrupt(x, self.noise, self.noise_std, self.mask_prob)

    def training_loss(self, x: Tensor) -> Tensor:
        return self.loss_on(self.corrupt(x), x)

    def evaluation_values(self, x: Tensor) -> dict[str, Tensor]:
        return {"loss": self.loss_on(self.corrupt(x), x), "recon": self.loss_on(x, x)}
