"""Image grids of a VAE: reconstructions, prior samples and the 2-D latent manifold."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.utils import make_grid

from vaelab.vae import VAE


@torch.no_grad()
def reconstruction_grid(vae: VAE, inputs: Tensor) -> Tensor:
    """Inputs (top row) above their reconstructions E[x | z = E_q z] (bottom row)."""
    recons = vae.reconstruct(inputs).to(inputs.dtype)
    return make_grid(torch.cat([inputs, recons]).clamp(0, 1), nrow=len(inputs), pad_value=1.0)


@torch.no_grad()
def prior_sample_grid(vae: VAE, num: int, seed: int = 0) -> Tensor:
    """Decoder means of z ~ N(0, I); a fixed seed shows the same z at every epoch."""
    generator = torch.Generator(device=next(vae.parameters()).device).manual_seed(seed)
    samples = vae.sample_images(num, generator=generator)
    return make_grid(samples.clamp(0, 1), nrow=round(num**0.5), pad_value=1.0)


def latent_grid(points_per_axis: int, span: float) -> Tensor:
    """Codes on a regular grid over [−span, span]², rows from top (z₁ = +span) to bottom."""
    axis = torch.linspace(-span, span, points_per_axis)
    z1, z0 = torch.meshgrid(axis.flip(0), axis, indexing="ij")
    return torch.stack([z0.reshape(-1), z1.reshape(-1)], dim=-1)


@torch.no_grad()
def latent_manifold_grid(vae: VAE, points_per_axis: int = 20, span: float = 3.0) -> Tensor:
    """Decoder means over a grid of a 2-D latent space (seed 000's plot_latent_space)."""
    if vae.latent_dim != 2:
        raise ValueError(f"the latent manifold needs latent_dim == 2, got {vae.latent_dim}")
    z = latent_grid(points_per_axis, span).to(next(vae.parameters()).device)
    images = vae.likelihood.mean(vae.decode(z))
    return make_grid(images.clamp(0, 1), nrow=points_per_axis, padding=0)
