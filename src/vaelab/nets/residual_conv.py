"""The VQ-VAE's convolutional encoder/decoder with residual blocks (van den Oord et al. 2017,
§4.1), sized from the data: images (C, H, W) ↔ a code map (D, H/4, W/4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from torch import Tensor, nn

from vaelab.nets.networks import EncoderDecoder
from vaelab.schema import ImageShape, NonNegativeInt, PositiveInt, Range, checked_arguments

#: two stride-2 convolutions: the code grid is the image grid divided by 4 per side
DOWNSAMPLING = 4
KERNEL = 4
STRIDE = 2


class ResidualBlock(nn.Module):
    """x + Conv1×1(ReLU(Conv3×3(ReLU(x)))) (the paper's "ReLU, 3x3 conv, ReLU, 1x1 conv")."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


def residual_stack(channels: int, hidden: int, blocks: int) -> list[nn.Module]:
    return [*(ResidualBlock(channels, hidden) for _ in range(blocks)), nn.ReLU()]


def code_grid_shape(input_shape: Sequence[int]) -> tuple[int, int]:
    """(h, w) of the code map for images (C, H, W); both sides must be multiples of 4."""
    _, height, width = input_shape
    if height % DOWNSAMPLING or width % DOWNSAMPLING:
        raise ValueError(
            f"the VQ-VAE's encoder halves each side twice, so the image sides must be multiples "
            f"of {DOWNSAMPLING}; got (H, W) = ({height}, {width}): use data.pad_to_32=true or "
            "another data="
        )
    return height // DOWNSAMPLING, width // DOWNSAMPLING


@checked_arguments("model.net")
def residual_conv(
    input_shape: ImageShape,
    embedding_dim: PositiveInt,
    decoder_out_channels: PositiveInt,
    hidden: Annotated[int, Range(ge=2)] = 128,
    residual_blocks: NonNegativeInt = 2,
    residual_hidden: PositiveInt = 32,
) -> EncoderDecoder:
    """Encoder: Conv(k4, s2) → ReLU → Conv(k4, s2) → ReLU → Conv(k3) → residual blocks → ReLU →
    Conv1×1 to ``embedding_dim`` channels (the z_e map, (D, H/4, W/4)). Decoder: Conv(k3) →
    residual blocks → ReLU → ConvT(k4, s2) → ReLU → ConvT(k4, s2) to ``decoder_out_channels``.
    The paper uses 256 hidden channels and two residual blocks; no batch norm, so a frozen
    stage-1 network behaves the same in training and evaluation mode."""
    channels = int(input_shape[0])
    code_grid_shape(input_shape)
    encoder = nn.Sequential(
        nn.Conv2d(channels, hidden // 2, KERNEL, STRIDE, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden // 2, hidden, KERNEL, STRIDE, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden, hidden, 3, padding=1),
        *residual_stack(hidden, residual_hidden, residual_blocks),
        nn.Conv2d(hidden, embedding_dim, 1),
    )
    decoder = nn.Sequential(
        nn.Conv2d(embedding_dim, hidden, 3, padding=1),
        *residual_stack(hidden, residual_hidden, residual_blocks),
        nn.ConvTranspose2d(hidden, hidden // 2, KERNEL, STRIDE, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(hidden // 2, decoder_out_channels, KERNEL, STRIDE, padding=1),
    )
    return EncoderDecoder(encoder=encoder, decoder=decoder)
