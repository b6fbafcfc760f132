"""Networks: seed 001's conv VAE layer by layer, shapes for any image size, MLP presets."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tests.conftest import compose_config
from vaelab.builders import build_module
from vaelab.nets.conv import DecoderGeometry, conv
from vaelab.posteriors import DiagonalGaussianPosterior, FullCovarianceGaussianPosterior

LATENT = 32

# seed 001 (001_a803f02f28846e48.txt): Encoder(im_chan=1, output_chan=32, hidden_dim=16) and
# Decoder(z_dim=32, im_chan=1, hidden_dim=64): (in, out, kernel, stride) of each layer
SEED_001_ENCODER = [(1, 16, 4, 2), (16, 32, 4, 2), (32, 64, 4, 2)]
SEED_001_DECODER = [(32, 256, 3, 2), (256, 128, 4, 1), (128, 64, 3, 2), (64, 1, 4, 2)]


def layer_specs(module: nn.Module, kind: type) -> list[tuple[int, int, int, int]]:
    return [
        (m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0])
        for m in module.modules()
        if isinstance(m, kind)
    ]


def seed_parameter_count(specs, batchnorm_after) -> int:
    """Weights + biases of each conv, plus BN's γ and β where the seed has a BatchNorm."""
    convs = sum(fan_in * fan_out * kernel**2 + fan_out for fan_in, fan_out, kernel, _ in specs)
    norms = sum(2 * specs[i][1] for i in batchnorm_after)
    return convs + norms


def test_conv_on_28x28_is_seed_001_layer_for_layer():
    nets = conv((1, 28, 28), LATENT, encoder_out_features=2 * LATENT, decoder_out_channels=1)
    assert layer_specs(nets.encoder, nn.Conv2d) == SEED_001_ENCODER
    assert layer_specs(nets.decoder, nn.ConvTranspose2d) == SEED_001_DECODER
    assert not any(isinstance(m, nn.Linear) for m in nets.encoder.modules())
    assert all(
        m.output_padding == (0, 0)
        for m in nets.decoder.modules()
        if isinstance(m, nn.ConvTranspose2d)
    )
    assert [m.negative_slope for m in nets.encoder.modules() if isinstance(m, nn.LeakyReLU)] == [
        0.2,
        0.2,
    ]
    assert sum(isinstance(m, nn.ReLU) for m in nets.decoder.modules()) == 3
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(nets.encoder) == seed_parameter_count(SEED_001_ENCODER, [0, 1])
    assert count(nets.decoder) == seed_parameter_count(SEED_001_DECODER, [0, 1, 2])


@pytest.mark.parametrize(
    "shape",
    [(1, 28, 28), (1, 32, 32), (3, 32, 32), (1, 28, 20), (1, 30, 30), (3, 64, 48), (1, 8, 8)],
)
@pytest.mark.parametrize(
    "posterior", [DiagonalGaussianPosterior(), FullCovarianceGaussianPosterior()]
)
def test_conv_shapes_follow_the_data(shape, posterior):
    channels = shape[0]
    out_features = posterior.num_params(LATENT)
    nets = conv(shape, LATENT, out_features, decoder_out_channels=2 * channels)
    x = torch.rand(3, *shape)
    assert nets.encoder(x).shape == (3, out_features)
    assert nets.decoder(torch.randn(3, LATENT)).shape == (3, 2 * channels, *shape[1:])


@pytest.mark.parametrize("side", range(1, 101))
def test_decoder_geometry_is_exact_from_20_pixels(side):
    geometry = DecoderGeometry.for_side(side)
    produced = geometry.output_side()
    assert produced == side if side >= 20 else produced == 20


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 32, 32), (3, 32, 32)])
def test_conv_model_reconstructs_the_input_shape(tmp_path, shape):
    cfg = compose_config(["model=conv", "likelihood=gaussian_learned_per_pixel"], tmp_path)
    module = build_module(cfg, shape)
    x = torch.rand(4, *shape)
    for train_mode in (True, False):
        module.train(train_mode)
        assert module.model.reconstruct(x).shape == x.shape
        out = module(x)
        assert torch.isfinite(out.bound).all()
        assert out.bound.shape == (4,)


def linear_sizes(module: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


def activations(module: nn.Module) -> set[type]:
    kinds = (nn.LeakyReLU, nn.ReLU, nn.Softplus, nn.Tanh)
    return {type(m) for m in module.modules() if isinstance(m, kinds)}


MNIST, FREY = (1, 28, 28), (1, 28, 20)
PIXELS = math.prod(MNIST)


@pytest.mark.parametrize(
    ("preset", "overrides", "shape", "encoder", "decoder", "activation"),
    [
        # seed 000 lecture: 784→400→200→(2, 2), decoder 2→200→400→784, leaky ReLU 0.2
        (
            "lecture_mlp",
            [],
            MNIST,
            [(PIXELS, 400), (400, 200), (200, 4)],
            [(2, 200), (200, 400), (400, PIXELS)],
            nn.LeakyReLU,
        ),
        # seed 000 Pyro: 784→400→(50, 50), softplus
        (
            "pyro_mlp",
            [],
            MNIST,
            [(PIXELS, 400), (400, 100)],
            [(50, 400), (400, PIXELS)],
            nn.Softplus,
        ),
        # seed 002: 784→400→(20, 20), ReLU
        ("kw_mlp", [], MNIST, [(PIXELS, 400), (400, 40)], [(20, 400), (400, PIXELS)], nn.ReLU),
        # seed 003: 560→200→4 and 2→200→1120 (mean and log-std per pixel)
        (
            "frey_mlp",
            ["likelihood=gaussian_learned_per_pixel"],
            FREY,
            [(560, 200), (200, 4)],
            [(2, 200), (200, 1120)],
            nn.ReLU,
        ),
        # seed 004: two hidden layers of 128, softplus, z = 2
        (
            "lvm_mlp",
            [],
            MNIST,
            [(PIXELS, 128), (128, 128), (128, 4)],
            [(2, 128), (128, 128), (128, PIXELS)],
            nn.Softplus,
        ),
        # Burda et al.: 784→200→200→(50, 50), tanh
        (
            "burda_mlp",
            [],
            MNIST,
            [(PIXELS, 200), (200, 200), (200, 100)],
            [(50, 200), (200, 200), (200, PIXELS)],
            nn.Tanh,
        ),
    ],
)
def test_mlp_presets_reproduce_the_seeds(
    tmp_path, preset, overrides, shape, encoder, decoder, activation
):
    module = build_module(compose_config([f"model={preset}", *overrides], tmp_path), shape)
    assert linear_sizes(module.model.encoder) == encoder
    assert linear_sizes(module.model.decoder) == decoder
    assert activations(module.model.encoder) == activations(module.model.decoder) == {activation}
    if activation is nn.LeakyReLU:
        assert all(
            m.negative_slope == 0.2
            for m in module.model.encoder.modules()
            if isinstance(m, nn.LeakyReLU)
        )


def test_frey_mlp_parameter_counts_match_seed_003_summaries(tmp_path):
    """Seed 003's Keras summaries: encoder 113,004 and decoder 225,720 parameters."""
    cfg = compose_config(["model=frey_mlp", "likelihood=gaussian_learned_per_pixel"], tmp_path)
    module = build_module(cfg, FREY)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    height, width = FREY[1:]
    encoder = (height * width * 200 + 200) + (200 * 4 + 4)
    decoder = (2 * 200 + 200) + (200 * 2 * height * width + 2 * height * width)
    assert count(module.model.encoder) == encoder == 113_004
    assert count(module.model.decoder) == decoder == 225_720


def test_leaky_relu_after_a_linear_layer_works_in_place_with_the_same_gradients():
    """``after_linear``: the leaky ReLU overwrites the linear layer's output (its backward reads
    the output's sign, not a saved mask of the input: cheaper under module.compile); the
    values and gradients are those of the out-of-place activation."""
    from vaelab.nets.activations import make_activation

    grads = {}
    for in_place in (False, True):
        torch.manual_seed(0)
        linear = nn.Linear(5, 7)
        activation = make_activation("leaky_relu", 0.2, after_linear=in_place)
        assert activation.inplace is in_place
        x = torch.randn(11, 5)
        out = activation(linear(x))
        (out * torch.arange(7.0)).sum().backward()
        grads[in_place] = out.detach(), linear.weight.grad, linear.bias.grad
    for eager, in_place in zip(grads[False], grads[True], strict=True):
        assert torch.equal(eager, in_place)
    assert not make_activation("leaky_relu", -0.1, after_linear=True).inplace
