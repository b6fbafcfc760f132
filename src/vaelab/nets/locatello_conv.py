"""The convolutional encoder/decoder of Locatello et al. (2019, "Challenging Common Assumptions
in the Unsupervised Learning of Disentangled Representations", App., Table 1: the main
architecture of all their models), sized from the data shape.

Encoder: Conv 32 (k4), Conv 32 (k4), Conv 64 (k2), Conv 64 (k2), all stride 2 with ReLU →
FC 256 ReLU → the posterior's parameters (2 × 10 in the paper). Decoder: FC 256 ReLU →
FC 4·4·64 ReLU → ConvT 64, 32, 32 (k4, s2) with ReLU → ConvT (k4, s2) to the likelihood's
channels (no output activation). Each layer halves (doubles) a side exactly, as TensorFlow's
"same" padding does on even sides, so 64×64 images meet a 4×4 map. A side that is not a
multiple of 2^(number of conv layers) is zero-padded (equally on both sides) up to the next
multiple before the encoder, and the decoder's output is centre-cropped back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch.nn.functional as F
from torch import Tensor, nn

from vaelab.nets.networks import EncoderDecoder
from vaelab.schema import ImageShape, PositiveInt, checked_arguments

STRIDE = 2
#: the decoder's kernel; ConvT(k4, s2, padding 1) maps a side n to 2n
DECODER_KERNEL = 4


def halving_padding(kernel: int) -> int:
    """The padding with which a stride-2 conv of an even ``kernel`` maps an even side n to n/2."""
    return (kernel - STRIDE) // 2


def padded_side(side: int, num_layers: int) -> int:
    """The side rounded up to a multiple of 2^num_layers (each layer halves it)."""
    factor = STRIDE**num_layers
    return math.ceil(side / factor) * factor


class LocatelloEncoder(nn.Module):
    """Pads (C, H, W) to multiples of 2^L, L stride-2 convs, then FC ``hidden`` → ``out``."""

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int],
        kernels: Sequence[int],
        hidden: int,
        out_features: int,
    ) -> None:
        super().__init__()
        in_channels, height, width = (int(s) for s in input_shape)
        layers = len(channels)
        self.full = (padded_side(height, layers), padded_side(width, layers))
        self.padding = _symmetric_padding((height, width), self.full)
        convs: list[nn.Module] = []
        for (fan_in, fan_out), kernel in zip(
            pairwise([in_channels, *channels]), kernels, strict=True
        ):
            convs += [
                nn.Conv2d(fan_in, fan_out, kernel, STRIDE, halving_padding(kernel)),
                nn.ReLU(),
            ]
        map_size = (
            channels[-1] * (self.full[0] // STRIDE**layers) * (self.full[1] // STRIDE**layers)
        )
        self.net = nn.Sequential(
            *convs,
            nn.Flatten(),
            nn.Linear(map_size, hidden),
            nn.ReLU(),
            nn.Linear(hidden, out_features),
        )

    def forward(self, x: Tensor) -> Tensor:
        if any(self.padding):
            x = F.pad(x, self.padding)
        return self.net(x)


class LocatelloDecoder(nn.Module):
    """z → FC ``hidden`` → FC to a (channels[-1], h, w) map → mirrored stride-2 ConvTs."""

    def __init__(
        self,
        latent_dim: int,
        channels: Sequence[int],
        hidden: int,
        output_shape: Sequence[int],
    ) -> None:
        super().__init__()
        out_channels, height, width = (int(s) for s in output_shape)
        layers = len(channels)
        self.output_shape = (out_channels, height, width)
        full = (padded_side(height, layers), padded_side(width, layers))
        self.map_shape = (channels[-1], full[0] // STRIDE**layers, full[1] // STRIDE**layers)
        left, right, top, bottom = _symmetric_padding((height, width), full)
        self.crop = (top, full[0] - bottom, left, full[1] - right)
        widths = [*reversed(channels), out_channels]
        deconvs: list[nn.Module] = []
        for index, (fan_in, fan_out) in enumerate(pairwise(widths)):
            deconvs.append(
                nn.ConvTranspose2d(
                    fan_in, fan_out, DECODER_KERNEL, STRIDE, halving_padding(DECODER_KERNEL)
                )
            )
            if index < layers - 1:
                deconvs.append(nn.ReLU())
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, math.prod(self.map_shape)),
            nn.ReLU(),
            nn.Unflatten(1, self.map_shape),
            *deconvs,
        )

    def forward(self, z: Tensor) -> Tensor:
        top, bottom, left, right = self.crop
        return self.net(z)[..., top:bottom, left:right]


def _symmetric_padding(side: tuple[int, int], full: tuple[int, int]) -> tuple[int, int, int, int]:
    """F.pad's (left, right, top, bottom) that grows ``side`` to ``full``, split evenly."""
    (height, width), (full_h, full_w) = side, full
    left, top = (full_w - width) // 2, (full_h - height) // 2
    return (left, full_w - width - left, top, full_h - height - top)


@checked_arguments("model.net")
def locatello_conv(
    input_shape: ImageShape,
    latent_dim: PositiveInt,
    encoder_out_features: PositiveInt,
    decoder_out_channels: PositiveInt,
    channels: Sequence[PositiveInt] = (32, 32, 64, 64),
    kernels: Sequence[PositiveInt] = (4, 4, 2, 2),
    hidden_dim: PositiveInt = 256,
) -> EncoderDecoder:
    """Locatello et al.'s (2019) conv encoder/decoder for any (C, H, W); their defaults.
    ``kernels``: the encoder's (even) kernel sizes, one per conv; the decoder's are 4."""
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"locatello_conv needs an input shape (C, H, W), got {tuple(input_shape)}")
    if len(channels) < 1:
        raise ValueError("locatello_conv: net.channels must list at least one conv width")
    if len(kernels) != len(channels) or any(k < STRIDE or k % 2 for k in kernels):
        raise ValueError(
            f"locatello_conv: net.kernels={list(kernels)} must give one even kernel (>= 2) per "
            f"conv of net.channels={list(channels)}"
        )
    channels = [int(c) for c in channels]
    _, height, width = input_shape
    return EncoderDecoder(
        encoder=LocatelloEncoder(
            input_shape, channels, [int(k) for k in kernels], int(hidden_dim), encoder_out_features
        ),
        decoder=LocatelloDecoder(
            latent_dim, channels, int(hidden_dim), (decoder_out_channels, height, width)
        ),
    )
