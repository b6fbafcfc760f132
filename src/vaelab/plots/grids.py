"""Image grids of a latent-variable model: reconstructions, prior samples, the 2-D manifold."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.utils import make_grid

from vaelab.models.interface import LatentVariableModel, MissingCapability


@torch.no_grad()
def reconstruction_grid(
    model: LatentVariableModel, inputs: Tensor, labels: Tensor | None = None
) -> Tensor:
    """Inputs (top row) above their reconstructions E[x | z = E_q z] (bottom row)."""
    recons = model.reconstruct(inputs, labels).to(inputs.dtype)
    return make_grid(torch.cat([inputs, recons]).clamp(0, 1), nrow=len(inputs), pad_value=1.0)


@torch.no_grad()
def prior_sample_grid(model: LatentVariableModel, num: int, seed: int = 0) -> Tensor:
    """Decoder means of z ~ p(z), the model's prior; a fixed seed shows the same draw at every
    epoch (the global RNG is forked, so training's random stream is untouched)."""
    device = model.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        samples = model.sample(num)
    return make_grid(samples.clamp(0, 1), nrow=round(num**0.5), pad_value=1.0)


def latent_grid(
    points_per_axis: int, span: float, center: Tensor | None = None, scale: Tensor | None = None
) -> Tensor:
    """Codes on a regular grid over center + scale·[−span, span]² (default: [−span, span]²),
    rows from top (z₁ = +span) to bottom."""
    axis = torch.linspace(-span, span, points_per_axis)
    z1, z0 = torch.meshgrid(axis.flip(0), axis, indexing="ij")
    grid = torch.stack([z0.reshape(-1), z1.reshape(-1)], dim=-1)
    if scale is not None:
        grid = grid * scale.cpu()
    if center is not None:
        grid = grid + center.cpu()
    return grid


#: prior draws used to place the manifold's grid on the prior's mass
PRIOR_SPREAD_SAMPLES = 10_000


@torch.no_grad()
def prior_spread(model: LatentVariableModel, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation per latent dimension of the model's prior, from
    :data:`PRIOR_SPREAD_SAMPLES` draws (for N(0, I): ≈ 0 and 1); 0 and 1 for a model without
    a prior (an autoencoder, PCA)."""
    try:
        prior = model.prior
    except MissingCapability:
        return torch.zeros(model.latent_dim), torch.ones(model.latent_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        z = prior.sample(PRIOR_SPREAD_SAMPLES).float()
    return z.mean(0), z.std(0)


@torch.no_grad()
def latent_manifold_grid(
    model: LatentVariableModel, points_per_axis: int = 20, span: float = 3.0
) -> Tensor:
    """Decoder means over a grid of a 2-D latent space (seed 000's plot_latent_space), placed
    on the model's prior: center ± span standard deviations of p(z) ([−3, 3]² for N(0, I))."""
    if model.latent_dim != 2:
        raise ValueError(f"the latent manifold needs latent_dim == 2, got {model.latent_dim}")
    center, scale = prior_spread(model)
    z = latent_grid(points_per_axis, span, center, scale).to(model.device)
    images = model.decode(z).mean
    return make_grid(images.clamp(0, 1), nrow=points_per_axis, padding=0)
