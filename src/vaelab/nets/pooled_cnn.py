"""Conv → max-pool → conv encoder with a dense head, and its mirror image as decoder: seed
003's Fashion-MNIST CNN autoencoder (Keras), sized from the data shape."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import nn

from vaelab.nets.activations import Activation, make_activation
from vaelab.nets.networks import EncoderDecoder
from vaelab.schema import ImageShape, PositiveInt, checked_arguments


def _pooled_sides(side: int, kernel: int, pool: int) -> tuple[int, int]:
    """(side after conv → pool, side after the second conv) for one image axis."""
    after_conv = side - kernel + 1
    if after_conv < pool or after_conv % pool:
        raise ValueError(
            f"pooled_cnn: an image side of {side} gives {after_conv} after a "
            f"{kernel}-wide valid convolution, not a multiple of the pool size "
            f"{pool}, so the decoder cannot mirror it; change net.kernel_size or "
            "net.pool_size"
        )
    pooled = after_conv // pool
    final = pooled - kernel + 1
    if final < 1:
        raise ValueError(
            f"pooled_cnn: an image side of {side} is too small for two "
            f"{kernel}-wide convolutions and a {pool}× pool; lower net.kernel_size"
        )
    return pooled, final


@checked_arguments("model.net")
def pooled_cnn(
    input_shape: ImageShape,
    latent_dim: PositiveInt,
    encoder_out_features: PositiveInt,
    decoder_out_channels: PositiveInt,
    channels: tuple[PositiveInt, PositiveInt] = (16, 8),
    kernel_size: PositiveInt = 5,
    pool_size: PositiveInt = 2,
    hidden_dims: Sequence[PositiveInt] = (64,),
    activation: Activation = "relu",
    negative_slope: float = 0.2,
) -> EncoderDecoder:
    """Encoder: Conv(k)–act → MaxPool(p) → Conv(k)–act → Flatten → Dense(hidden_dims)–act →
    head. Decoder: Dense(reversed hidden_dims)–act → Dense–act → reshape → ConvT(k)–act →
    Upsample(p) → ConvT(k). ``negative_slope`` is used by leaky ReLU only (the keys match
    :func:`~vaelab.nets.mlp.mlp`'s, so a config can swap one builder for the other).

    Defaults are seed 003's: on 1×28×28, Conv 16@5×5 → 24×24, pool → 12×12, Conv 8@5×5 →
    8×8 (512) → 64 → code; decoder 64 → 512 → 8×8×8 → ConvT 16 → 12×12 → 24×24 → ConvT → 28×28.
    The decoder's last layer is linear (logits); the likelihood or loss applies the sigmoid.
    """
    in_channels, height, width = (int(s) for s in input_shape)
    first, second = (int(c) for c in channels)
    _, final_h = _pooled_sides(height, kernel_size, pool_size)
    _, final_w = _pooled_sides(width, kernel_size, pool_size)
    flat = second * final_h * final_w

    def act() -> nn.Module:
        return make_activation(activation, negative_slope)

    def dense(sizes: Sequence[int]) -> list[nn.Module]:
        layers: list[nn.Module] = []
        for fan_in, fan_out in pairwise(sizes):
            layers += [nn.Linear(fan_in, fan_out), act()]
        return layers

    widths = [flat, *(int(h) for h in hidden_dims)]
    encoder = nn.Sequential(
        nn.Conv2d(in_channels, first, kernel_size),
        act(),
        nn.MaxPool2d(pool_size),
        nn.Conv2d(first, second, kernel_size),
        act(),
        nn.Flatten(),
        *dense(widths),
        nn.Linear(widths[-1], encoder_out_features),
    )
    decoder = nn.Sequential(
        *dense([latent_dim, *widths[::-1]]),
        nn.Unflatten(1, (second, final_h, final_w)),
        nn.ConvTranspose2d(second, first, kernel_size),
        act(),
        nn.Upsample(scale_factor=pool_size, mode="nearest"),
        nn.ConvTranspose2d(first, decoder_out_channels, kernel_size),
    )
    return EncoderDecoder(encoder=encoder, decoder=decoder)
