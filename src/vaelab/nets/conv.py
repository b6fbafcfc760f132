"""DCGAN-style convolutional encoder/decoder pair (seed 001's VAE), sized from the data shape."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from torch import Tensor, nn

from vaelab.nets.networks import EncoderDecoder
from vaelab.schema import ImageShape, PositiveInt, checked_arguments

ENCODER_KERNEL = 4
STRIDE = 2
#: the smallest side the decoder's stack produces exactly (first kernel 1, no padding);
#: smaller images are centre-cropped from it
MIN_EXACT_SIDE = 20


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Output side of an unpadded convolution."""
    return (size - kernel) // stride + 1


def conv_transpose_out(size: int, kernel: int, stride: int, output_padding: int = 0) -> int:
    """Output side of an unpadded transposed convolution."""
    return (size - 1) * stride + kernel + output_padding


class ConvEncoder(nn.Module):
    """Seed 001's encoder: Conv(k4, s2)–BN–LeakyReLU(0.2) ×2, then a last Conv(k4, s2)
    with ``out_features`` channels (2·z for the diagonal posterior, as in the seed). If
    the image is larger than the 1×1 the stack reaches on 28×28, a Linear layer maps the
    flattened map to ``out_features``. Kernels shrink to the side when a map is < 4 wide
    (e.g. Frey's 20-pixel width).
    """

    def __init__(
        self, input_shape: Sequence[int], hidden: int, out_features: int, negative_slope: float
    ) -> None:
        super().__init__()
        channels, height, width = input_shape
        widths = [channels, hidden, 2 * hidden, out_features]
        layers: list[nn.Module] = []
        for index, (fan_in, fan_out) in enumerate(pairwise(widths)):
            kernel = (min(ENCODER_KERNEL, height), min(ENCODER_KERNEL, width))
            layers.append(nn.Conv2d(fan_in, fan_out, kernel, STRIDE))
            height, width = conv_out(height, kernel[0], STRIDE), conv_out(width, kernel[1], STRIDE)
            if index < len(widths) - 2:
                layers += [nn.BatchNorm2d(fan_out), nn.LeakyReLU(negative_slope)]
        layers.append(nn.Flatten())
        if height * width != 1:
            layers.append(nn.Linear(out_features * height * width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@dataclass(frozen=True)
class DecoderGeometry:
    """Per side: the first block's kernel and the output padding of the three stride-2
    blocks that make seed 001's stack end exactly at the image side (28: kernel 3, no
    padding — the seed itself)."""

    first_kernel: int
    output_padding: tuple[int, int, int]

    @staticmethod
    def for_side(side: int) -> DecoderGeometry:
        # with first kernel k the stack gives 4k + 16; output padding adds 4a + 2b + c ≤ 7
        kernel = max(1, (side - 16) // 4)
        remainder = max(0, side - (4 * kernel + 16))
        return DecoderGeometry(kernel, (0, remainder // 2, remainder % 2))

    def output_side(self) -> int:
        side = conv_transpose_out(1, self.first_kernel, STRIDE, self.output_padding[0])
        side = conv_transpose_out(side, 4, 1)
        side = conv_transpose_out(side, 3, STRIDE, self.output_padding[1])
        return conv_transpose_out(side, 4, STRIDE, self.output_padding[2])


class ConvDecoder(nn.Module):
    """Seed 001's decoder: z as a z×1×1 map → ConvT(k3, s2) → ConvT(k4, s1) → ConvT(k3, s2),
    each with BN–ReLU, widths 4h, 2h, h → ConvT(k4, s2) to ``out_channels`` (no output
    activation: the likelihood applies its own). The first kernel and output paddings
    come from :class:`DecoderGeometry` so the output is exactly (H, W); images below
    20 pixels are centre-cropped.
    """

    def __init__(self, latent_dim: int, hidden: int, output_shape: Sequence[int]) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.output_shape = tuple(output_shape)
        out_channels, height, width = self.output_shape
        rows, cols = DecoderGeometry.for_side(height), DecoderGeometry.for_side(width)
        pads = list(zip(rows.output_padding, cols.output_padding, strict=True))
        self.net = nn.Sequential(
            *self._block(
                latent_dim, 4 * hidden, (rows.first_kernel, cols.first_kernel), STRIDE, pads[0]
            ),
            *self._block(4 * hidden, 2 * hidden, 4, 1, (0, 0)),
            *self._block(2 * hidden, hidden, 3, STRIDE, pads[1]),
            nn.ConvTranspose2d(hidden, out_channels, 4, STRIDE, output_padding=pads[2]),
        )
        self.full_side = (rows.output_side(), cols.output_side())
        if self.full_side[0] < height or self.full_side[1] < width:
            raise RuntimeError(f"decoder geometry {self.full_side} cannot cover {height, width}")

    @staticmethod
    def _block(
        fan_in: int,
        fan_out: int,
        kernel: int | tuple[int, int],
        stride: int,
        padding: tuple[int, int],
    ) -> list[nn.Module]:
        return [
            nn.ConvTranspose2d(fan_in, fan_out, kernel, stride, output_padding=padding),
            nn.BatchNorm2d(fan_out),
            nn.ReLU(),
        ]

    def forward(self, z: Tensor) -> Tensor:
        out = self.net(z.reshape(-1, self.latent_dim, 1, 1))
        _, height, width = self.output_shape
        top = (out.shape[-2] - height) // 2
        left = (out.shape[-1] - width) // 2
        return out[..., top : top + height, left : left + width]


@checked_arguments("model.net")
def conv(
    input_shape: ImageShape,
    latent_dim: PositiveInt,
    encoder_out_features: PositiveInt,
    decoder_out_channels: PositiveInt,
    encoder_hidden: PositiveInt = 16,
    decoder_hidden: PositiveInt = 64,
    negative_slope: float = 0.2,
) -> EncoderDecoder:
    """Seed 001's conv VAE for any (C, H, W): encoder widths h_e, 2h_e (seed: 16, 32),
    decoder widths 4h_d, 2h_d, h_d (seed: 256, 128, 64), z = 32 in the preset."""
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"the conv net needs an input shape (C, H, W), got {tuple(input_shape)}")
    _, height, width = input_shape
    return EncoderDecoder(
        encoder=ConvEncoder(input_shape, int(encoder_hidden), encoder_out_features, negative_slope),
        decoder=ConvDecoder(latent_dim, int(decoder_hidden), (decoder_out_channels, height, width)),
    )
