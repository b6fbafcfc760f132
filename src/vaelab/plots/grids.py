"""Image grids of a latent-variable model: reconstructions, prior samples, the 2-D manifold.

Grids of few small images (a 16-image reconstruction strip of 28-px digits is 482 × 62 px)
are upscaled with nearest-neighbour pixels to about :data:`TARGET_IMAGE_SIDE` pixels per
image so they read on a slide, and rows can carry a label ("input", "reconstruction").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.utils import make_grid

from vaelab.models.interface import LatentVariableModel, MissingCapability
from vaelab.samplers.base import Sampler
from vaelab.samplers.prior import PriorSampler

#: pixels per image side that upscaled grids aim at
TARGET_IMAGE_SIDE = 84
#: pixels per side a latent-manifold grid is brought up to (whole-number factors only)
TARGET_MANIFOLD_SIDE = 480
#: row labels of the reconstruction grid
INPUT_LABEL = "input"
RECONSTRUCTION_LABEL = "reconstruction"
LABEL_FONT_FRACTION = 0.22
#: images per row of the reconstruction grid: 16 pairs become two input/reconstruction blocks
#: (a 16-wide strip shrinks to nothing in a TensorBoard card or on a slide)
PAIRS_PER_ROW = 8


def upscale_factor(image_side: int, target: int = TARGET_IMAGE_SIDE) -> int:
    """Whole-number factor that brings ``image_side`` closest to ``target`` (at least 1)."""
    return max(1, round(target / image_side))


def upscale(images: Tensor, factor: int) -> Tensor:
    """[N, C, H, W] images with each pixel repeated ``factor`` × ``factor`` times."""
    return images if factor == 1 else F.interpolate(images, scale_factor=factor, mode="nearest")


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def labelled_rows(rows: Sequence[Tensor], labels: Sequence[str], padding: int = 4) -> Tensor:
    """One grid row per [N, C, H, W] batch in ``rows``, each with its label on the left, black
    on white (a shorter last row is padded white); returns [3, H, W] in [0, 1]."""
    width = max(len(row) for row in rows)
    strips = [
        make_grid(row.float().clamp(0, 1), nrow=width, padding=padding, pad_value=1.0)
        for row in rows
    ]
    widest = max(strip.shape[2] for strip in strips)
    strips = [F.pad(strip, (0, widest - strip.shape[2]), value=1.0) for strip in strips]
    row_height = strips[0].shape[1]
    font = _font(max(10, int(row_height * LABEL_FONT_FRACTION)))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_width = max(probe.textbbox((0, 0), text, font=font)[2] for text in labels) + 3 * padding
    panels = []
    for strip, text in zip(strips, labels, strict=True):
        panel = Image.new("RGB", (label_width, strip.shape[1]), "white")
        draw = ImageDraw.Draw(panel)
        draw.text((2 * padding, strip.shape[1] // 2), text, fill="black", font=font, anchor="lm")
        label = torch.from_numpy(np.asarray(panel).copy()).permute(2, 0, 1).float() / 255
        panels.append(torch.cat([label, strip.cpu()], dim=2))
    return torch.cat(panels, dim=1)


@torch.no_grad()
def reconstruction_grid(
    model: LatentVariableModel,
    inputs: Tensor,
    labels: Tensor | None = None,
    labelled: bool = True,
) -> Tensor:
    """Inputs above their reconstructions E[x | z = E_q z] (given the batch's ``labels`` for a
    conditional model); with ``labelled`` the rows are named, :data:`PAIRS_PER_ROW` pairs per
    block, and the images upscaled for a slide."""
    recons = model.reconstruct(inputs, labels).to(inputs.dtype)
    if not labelled:
        return make_grid(torch.cat([inputs, recons]).clamp(0, 1), nrow=len(inputs), pad_value=1.0)
    factor = upscale_factor(inputs.shape[-1])
    rows, names = [], []
    for start in range(0, len(inputs), PAIRS_PER_ROW):
        rows += [
            upscale(inputs[start : start + PAIRS_PER_ROW].float(), factor),
            upscale(recons[start : start + PAIRS_PER_ROW].float(), factor),
        ]
        names += [INPUT_LABEL, RECONSTRUCTION_LABEL]
    return labelled_rows(rows, names)


@torch.no_grad()
def prior_sample_grid(
    model: LatentVariableModel,
    num: int,
    seed: int = 0,
    upscaled: bool = True,
    sampler: Sampler | None = None,
) -> Tensor:
    """Decoder means of z ~ p(z), the model's prior (or z from an ex-post ``sampler``), with
    the labels the model draws for unconditional samples (``labels_for_samples``); a fixed seed
    shows the same draw at every epoch (the global RNG is forked, so training's random stream
    is untouched)."""
    device = model.device
    sampler = sampler if sampler is not None else PriorSampler()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        samples = sampler.pictures(model, num).float()
    factor = upscale_factor(samples.shape[-1]) if upscaled else 1
    return make_grid(
        upscale(samples, factor).clamp(0, 1),
        nrow=round(num**0.5),
        padding=2 * factor,
        pad_value=1.0,
    )


@torch.no_grad()
def class_conditional_sample_grid(
    model: LatentVariableModel,
    per_class: int,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
) -> Tensor:
    """One row per class y of a class-conditional model (``model.num_classes``): decoder
    means E[x|z, y] of ``per_class`` draws z ~ p(z), each row labelled with its class name
    (the index without names). The global RNG is forked, as for :func:`prior_sample_grid`."""
    if not model.num_classes:
        raise ValueError(f"{type(model).__name__} is not class-conditional (num_classes is None)")
    device = model.device
    labels = torch.arange(model.num_classes, device=device).repeat_interleave(per_class)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        samples = model.sample(len(labels), labels).float()
    factor = upscale_factor(samples.shape[-1])
    rows = [upscale(row, factor) for row in samples.split(per_class)]
    names = list(class_names) if class_names is not None else []
    names = [names[k] if k < len(names) else str(k) for k in range(model.num_classes)]
    return labelled_rows(rows, names)


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
        code_dim = model.latent_structure.code_dim
        return torch.zeros(code_dim), torch.ones(code_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        z = prior.sample(PRIOR_SPREAD_SAMPLES).float()
    return z.mean(0), z.std(0)


@torch.no_grad()
def latent_manifold_grid(
    model: LatentVariableModel, points_per_axis: int = 20, span: float = 3.0
) -> Tensor:
    """Decoder means over a grid of a 2-D latent space (seed 000's plot_latent_space), placed
    on the model's prior: center ± span standard deviations of p(z) ([−3, 3]² for N(0, I));
    grids of small images (8-px digits) are upscaled to about :data:`TARGET_MANIFOLD_SIDE`
    pixels."""
    code_dim = model.latent_structure.code_dim
    if code_dim != 2:
        raise ValueError(f"the latent manifold needs 2-D codes (latent_dim == 2), got {code_dim}")
    center, scale = prior_spread(model)
    z = latent_grid(points_per_axis, span, center, scale).to(model.device)
    images = model.decode(z).mean.float()
    factor = upscale_factor(points_per_axis * images.shape[-1], TARGET_MANIFOLD_SIDE)
    return make_grid(upscale(images, factor).clamp(0, 1), nrow=points_per_axis, padding=0)
