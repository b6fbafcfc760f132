"""Fully connected encoder/decoder pair (Kingma & Welling 2014, App. C; seed 000's VAE)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

from torch import Tensor, nn

from vaelab.nets.activations import Activation, make_activation
from vaelab.nets.networks import EncoderDecoder
from vaelab.schema import ImageShape, PositiveInt, checked_arguments


def _mlp(sizes: Sequence[int], activation: str, negative_slope: float) -> list[nn.Module]:
    """Linear layers between consecutive sizes, an activation after each."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in pairwise(sizes):
        layers += [
            nn.Linear(fan_in, fan_out),
            make_activation(activation, negative_slope, after_linear=True),
        ]
    return layers


class MLPEncoder(nn.Sequential):
    """Flatten (C, H, W) → hidden layers → a linear head of ``out_features`` numbers."""

    def __init__(
        self,
        input_shape: Sequence[int],
        hidden_dims: Sequence[int],
        out_features: int,
        activation: str,
        negative_slope: float,
    ) -> None:
        sizes = [math.prod(input_shape), *hidden_dims]
        super().__init__(
            nn.Flatten(),
            *_mlp(sizes, activation, negative_slope),
            nn.Linear(sizes[-1], out_features),
        )


class MLPDecoder(nn.Module):
    """z → hidden layers (the encoder's, mirrored) → a linear layer reshaped to the image."""

    def __init__(
        self,
        latent_dim: int,
        hidden_dims: Sequence[int],
        output_shape: Sequence[int],
        activation: str,
        negative_slope: float,
    ) -> None:
        super().__init__()
        self.output_shape = tuple(output_shape)
        sizes = [latent_dim, *hidden_dims]
        self.net = nn.Sequential(
            *_mlp(sizes, activation, negative_slope),
            nn.Linear(sizes[-1], math.prod(self.output_shape)),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).reshape(-1, *self.output_shape)


@checked_arguments("model.net")
def mlp(
    input_shape: ImageShape,
    latent_dim: PositiveInt,
    encoder_out_features: PositiveInt,
    decoder_out_channels: PositiveInt,
    hidden_dims: Sequence[PositiveInt] = (400, 200),
    activation: Activation = "leaky_relu",
    negative_slope: float = 0.2,
) -> EncoderDecoder:
    """Encoder input → hidden_dims → head; decoder latent → reversed(hidden_dims) → image.

    Defaults are seed 000's lecture VAE: hidden 400→200, z = 2, the decoder mirrored, leaky ReLU
    0.2; the input size comes from ``input_shape`` (the datamodule's dims).
    """
    _, height, width = input_shape
    hidden = [int(h) for h in hidden_dims]
    return EncoderDecoder(
        encoder=MLPEncoder(input_shape, hidden, encoder_out_features, activation, negative_slope),
        decoder=MLPDecoder(
            latent_dim,
            hidden[::-1],
            (decoder_out_channels, height, width),
            activation,
            negative_slope,
        ),
    )
