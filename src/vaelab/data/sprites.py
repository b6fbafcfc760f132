"""A batched rasteriser of dSprites-like shapes, and the dSprites factor grid.

dSprites (Matthey et al. 2017) is the grid shape (square, ellipse, heart) × scale (6 values in
[0.5, 1]) × orientation (40 values in [0, 2π]) × x (32 values in [0, 1]) × y (32 values in
[0, 1]) of binary 64×64 images, enumerated with y fastest (the order of the original file's
``latents_classes``). Its values are ``linspace``\\ s that include both ends, as in the original:
orientation 0 and orientation 39 (2π) are the same picture there and here.

Here each image is drawn from its factors by testing every pixel centre against the shape's
implicit function, vectorised over the batch, on whatever device the factors live on. The
pictures are *dSprites-like*, not pixel-identical to the original release: the shapes'
outlines, their size at scale 1 and the span of the positions are this module's choices
(:data:`SHAPE_RADIUS`, :data:`CENTRE_MARGIN`), the grid and its order are the original's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

#: the factors of dSprites in the original's order (its constant colour factor dropped)
DSPRITES_FACTOR_NAMES = ("shape", "scale", "orientation", "x", "y")
DSPRITES_FACTOR_SIZES = (3, 6, 40, 32, 32)
DSPRITES_SHAPES = ("square", "ellipse", "heart")
DSPRITES_SIDE = 64
SCALE_RANGE = (0.5, 1.0)
ORIENTATION_RANGE = (0.0, 2 * math.pi)
POSITION_RANGE = (0.0, 1.0)

#: half the side of the square at scale 1, as a fraction of the image side (10 px of 64)
SHAPE_RADIUS = 10 / 64
#: a centre at position 0 (1) lies this fraction of the side from the left/top (right/bottom)
#: edge; the rotated square at scale 1 (half-diagonal √2 · SHAPE_RADIUS = 0.22) stays inside
CENTRE_MARGIN = 0.25
#: the ellipse's minor semi-axis over its major one
ELLIPSE_ASPECT = 0.5
#: the heart (a² + b² − 1)³ ≤ a² b³ spans |a| ≤ 1.139 and −1 ≤ b ≤ 1.236: scaled by 1.139 and
#: shifted by 0.118 it fills [−1, 1] across and is centred vertically
HEART_WIDTH = 1.139
HEART_SHIFT = 0.118


@dataclass(frozen=True)
class SpriteParameters:
    """Continuous parameters of a batch of sprites, each [B]: ``shape`` index (0 square,
    1 ellipse, 2 heart), ``scale`` (1: the full size), ``angle`` in radians, and the position
    ``x`` (left → right) and ``y`` (top → bottom) in [0, 1]."""

    shape: Tensor
    scale: Tensor
    angle: Tensor
    x: Tensor
    y: Tensor


def factor_values(factor_sizes: Sequence[int] = DSPRITES_FACTOR_SIZES) -> list[Tensor]:
    """The value of every index of every factor (float64): shape indices, then ``linspace``
    over the scale, orientation and position ranges with both ends included."""
    shapes, scales, orientations, xs, ys = (int(s) for s in factor_sizes)
    return [
        torch.arange(shapes, dtype=torch.float64),
        torch.linspace(*SCALE_RANGE, scales, dtype=torch.float64),
        torch.linspace(*ORIENTATION_RANGE, orientations, dtype=torch.float64),
        torch.linspace(*POSITION_RANGE, xs, dtype=torch.float64),
        torch.linspace(*POSITION_RANGE, ys, dtype=torch.float64),
    ]


def factor_strides(factor_sizes: Sequence[int]) -> Tensor:
    """Mixed-radix strides of the grid (the last factor fastest), int64 [F]."""
    strides = [1]
    for size in reversed(factor_sizes[1:]):
        strides.insert(0, strides[0] * int(size))
    return torch.tensor(strides, dtype=torch.int64)


def unravel(flat: Tensor, factor_sizes: Sequence[int]) -> Tensor:
    """Grid positions [B] → factor indices [B, F] (int64, on ``flat``'s device)."""
    strides = factor_strides(factor_sizes).to(flat.device)
    sizes = torch.tensor([int(s) for s in factor_sizes], device=flat.device)
    return torch.div(flat.unsqueeze(-1), strides, rounding_mode="floor") % sizes


def ravel(factors: Tensor, factor_sizes: Sequence[int]) -> Tensor:
    """Factor indices [B, F] → grid positions [B] (the inverse of :func:`unravel`)."""
    return (factors * factor_strides(factor_sizes).to(factors.device)).sum(-1)


def sprite_parameters(
    factors: Tensor, factor_sizes: Sequence[int] = DSPRITES_FACTOR_SIZES
) -> SpriteParameters:
    """The continuous parameters of dSprites factor indices [B, 5]."""
    values = [v.to(device=factors.device, dtype=torch.float32) for v in factor_values(factor_sizes)]
    columns = [table[factors[:, i]] for i, table in enumerate(values)]
    return SpriteParameters(factors[:, 0], *columns[1:])


def _inside_square(u: Tensor, v: Tensor) -> Tensor:
    return torch.maximum(u.abs(), v.abs()) <= 1


def _inside_ellipse(u: Tensor, v: Tensor) -> Tensor:
    minor = v / ELLIPSE_ASPECT
    return u * u + minor * minor <= 1


def _inside_heart(u: Tensor, v: Tensor) -> Tensor:
    a, b = HEART_WIDTH * u, HEART_SHIFT - HEART_WIDTH * v
    a2 = a * a
    level = a2 + b * b - 1
    return level * level * level <= a2 * (b * b * b)


#: the unit shapes' indicator functions, by shape index
_INSIDE = (_inside_square, _inside_ellipse, _inside_heart)


def render_sprites(sprites: SpriteParameters, side: int = DSPRITES_SIDE) -> Tensor:
    """Binary images [B, 1, side, side] (float32 0/1 on the parameters' device).

    A pixel is on when its centre (column + ½, row + ½) lies inside the shape: the centre is
    moved to the sprite's frame (u, v) = R(−angle) (p − c) / (r · scale), with c the sprite's
    centre and r = ``SHAPE_RADIUS`` · side, and tested against the unit shape: the square
    max(|u|, |v|) ≤ 1, the ellipse u² + (v / 0.5)² ≤ 1, the heart (a² + b² − 1)³ ≤ a² b³ with
    (a, b) = (1.139 u, −1.139 v + 0.118) (lobes up at angle 0). Each shape's test runs on
    the sprites of that shape only, so a batch may mix shapes at the cost of one.
    """
    device = sprites.scale.device
    centres = torch.arange(side, device=device, dtype=torch.float32) + 0.5
    span = side * (1 - 2 * CENTRE_MARGIN)
    centre_x = (side * CENTRE_MARGIN + span * sprites.x)[:, None, None]
    centre_y = (side * CENTRE_MARGIN + span * sprites.y)[:, None, None]
    scale = 1 / (side * SHAPE_RADIUS * sprites.scale)[:, None, None]
    cos = torch.cos(sprites.angle)[:, None, None] * scale
    sin = torch.sin(sprites.angle)[:, None, None] * scale
    dx = centres[None, None, :] - centre_x  # [B, 1, W]
    dy = centres[None, :, None] - centre_y  # [B, H, 1]
    images = torch.zeros(len(sprites.shape), 1, side, side, device=device)
    for shape, inside in enumerate(_INSIDE):
        rows = (sprites.shape == shape).nonzero().squeeze(1)
        if len(rows) == 0:
            continue
        c, s, x, y = cos[rows], sin[rows], dx[rows], dy[rows]
        u = c * x + s * y  # [b, H, W]
        v = c * y - s * x
        images[rows] = inside(u, v).unsqueeze(1).to(torch.float32)
    return images
