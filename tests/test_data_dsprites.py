"""vaelab.data.dsprites: dSprites as generated here: the grid and its order, each shape's area
and centroid against closed forms, rotations, determinism, Locatello et al.'s variants, the
original file's reader (on a tiny grid written here), and the (x, factors) batches."""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from vaelab.data.dsprites import (
    ORIGINAL_FILE,
    ColorDSpritesDataModule,
    DSpritesDataModule,
    NoisyDSpritesDataModule,
)
from vaelab.data.ground_truth import GroundTruthData, sample_with_fixed_factor
from vaelab.data.sprites import (
    CENTRE_MARGIN,
    DSPRITES_SHAPES,
    DSPRITES_SIDE,
    ELLIPSE_ASPECT,
    HEART_SHIFT,
    HEART_WIDTH,
    SHAPE_RADIUS,
    SpriteParameters,
    factor_values,
    ravel,
    render_sprites,
    unravel,
)
from vaelab.errors import VaelabError
from vaelab.evaluation.encodings import Encodings
from vaelab.nets.locatello_conv import locatello_conv
from vaelab.paths import CONFIG_DIR
from vaelab.plots.figures import latent_scatter_figure
from vaelab.plots.pictures import dataset_class_names

SIZES = DSpritesDataModule.factor_sizes
SQUARE, ELLIPSE, HEART = 0, 1, 2
RADIUS_PX = SHAPE_RADIUS * DSPRITES_SIDE
MARGIN_PX = CENTRE_MARGIN * DSPRITES_SIDE
SPAN_PX = DSPRITES_SIDE - 2 * MARGIN_PX


def _sprites(shape, scale, angle, x, y) -> SpriteParameters:
    columns = torch.broadcast_tensors(
        *(torch.as_tensor(v, dtype=torch.float32) for v in (scale, angle, x, y))
    )
    shapes = torch.as_tensor(shape).expand(columns[0].shape).long()
    return SpriteParameters(shapes, *columns)


def _heart_unit_area() -> float:
    """The area of the unit heart (a² + b² − 1)³ ≤ a² b³ in the sprite frame (u, v), by a
    1000² NumPy grid over its bounding box (an implementation independent of the renderer)."""
    a = np.linspace(-1.2, 1.2, 1000)
    b = np.linspace(-1.05, 1.3, 1000)
    grid_a, grid_b = np.meshgrid(a, b)
    inside = (grid_a**2 + grid_b**2 - 1) ** 3 <= grid_a**2 * grid_b**3
    cell = (a[1] - a[0]) * (b[1] - b[0])
    return float(inside.sum() * cell) / HEART_WIDTH**2


# -- the grid ---------------------------------------------------------------------------------
def test_grid_has_the_original_size_order_and_values():
    datamodule = DSpritesDataModule("unused")
    assert datamodule.num_examples == 737_280 == 3 * 6 * 40 * 32 * 32
    assert datamodule.factor_names == ("shape", "scale", "orientation", "x", "y")
    positions = torch.arange(737_280)
    factors = unravel(positions, SIZES)
    # NumPy's C-order unravel: the last factor (y) fastest, as the original's latents_classes
    expected = np.stack(np.unravel_index(positions.numpy(), SIZES), 1)
    np.testing.assert_array_equal(factors.numpy(), expected)
    assert torch.equal(ravel(factors, SIZES), positions)
    shapes, scales, orientations, xs, ys = factor_values(SIZES)
    torch.testing.assert_close(
        scales, torch.tensor([0.5, 0.6, 0.7, 0.8, 0.9, 1.0], dtype=torch.float64)
    )
    assert orientations[0] == 0
    assert orientations[-1] == pytest.approx(2 * math.pi)
    assert len(orientations) == 40
    assert (xs[0], xs[-1]) == (0, 1)
    assert len(xs) == len(ys) == 32
    assert shapes.tolist() == [0, 1, 2]


def test_orientation_0_and_39_coincide_as_in_the_original():
    first = torch.tensor([[s, 3, 0, 10, 20] for s in range(3)])
    last = first.clone()
    last[:, 2] = 39
    datamodule = DSpritesDataModule("unused")
    assert torch.equal(
        datamodule.observations_from_factors(first), datamodule.observations_from_factors(last)
    )


# -- geometry ---------------------------------------------------------------------------------
def test_square_area_is_exactly_the_side_squared():
    """At angle 0 the square covers (20·s)² pixel centres exactly: its sides, c ± 10·s, fall
    between pixel centres for every grid position (c = 16 + 32·k/31)."""
    factors = torch.tensor(
        [[SQUARE, s, 0, x, y] for s in range(6) for x, y in ((0, 0), (7, 30), (31, 12))]
    )
    areas = DSpritesDataModule("unused").observations_from_factors(factors).sum((1, 2, 3))
    scale = factor_values(SIZES)[1][factors[:, 1]]
    torch.testing.assert_close(areas.double(), (2 * RADIUS_PX * scale) ** 2)


@pytest.mark.parametrize(
    ("shape", "unit_area"),
    [(SQUARE, 4.0), (ELLIPSE, math.pi * ELLIPSE_ASPECT), (HEART, None)],
    ids=["square", "ellipse", "heart"],
)
def test_area_grows_with_the_square_of_the_scale(shape, unit_area):
    """The mean pixel count over 32 positions and 4 angles is the shape's area
    (unit area · (10 px · scale)²) to within 2 %."""
    unit_area = unit_area if unit_area is not None else _heart_unit_area()
    scales = torch.linspace(0.5, 1.0, 6)
    positions = torch.linspace(0, 1, 32)
    angles = torch.tensor([0.0, 0.3, 1.1, 2.0])
    sprites = _sprites(
        shape,
        scales[:, None, None],
        angles[None, :, None],
        positions[None, None, :],
        positions.flip(0)[None, None, :],
    )
    flat = SpriteParameters(
        *(
            t.reshape(-1)
            for t in (sprites.shape, sprites.scale, sprites.angle, sprites.x, sprites.y)
        )
    )
    areas = render_sprites(flat).sum((1, 2, 3)).reshape(6, -1).mean(1).double()
    expected = unit_area * (RADIUS_PX * scales.double()) ** 2
    torch.testing.assert_close(areas, expected, rtol=0.02, atol=0)


def _centroids(images: torch.Tensor) -> torch.Tensor:
    """(x, y) mean of the on-pixels' centres [B, 2] (column + ½, row + ½)."""
    centres = torch.arange(images.shape[-1], dtype=torch.float64) + 0.5
    mass = images.sum((1, 2, 3)).double()
    column = (images.sum((1, 2)).double() * centres).sum(-1) / mass
    row = (images.sum((1, 3)).double() * centres).sum(-1) / mass
    return torch.stack([column, row], 1)


@pytest.mark.parametrize("shape", [SQUARE, ELLIPSE, HEART], ids=["square", "ellipse", "heart"])
def test_centroid_moves_with_the_position_as_the_formula_says(shape):
    """Centre = 16 + 32·position pixels; the square and ellipse are symmetric about it (to
    within half a pixel), the heart's centroid keeps one offset from it at every position."""
    xs, ys = torch.meshgrid(torch.arange(0, 32, 3), torch.arange(0, 32, 5), indexing="ij")
    factors = torch.stack(
        [torch.full_like(xs, shape), torch.full_like(xs, 5), torch.zeros_like(xs), xs, ys], -1
    ).reshape(-1, 5)
    images = DSpritesDataModule("unused").observations_from_factors(factors)
    position = torch.stack([factors[:, 3], factors[:, 4]], 1).double() / 31
    offset = _centroids(images) - (MARGIN_PX + SPAN_PX * position)
    assert (offset - offset.mean(0)).abs().max() <= 0.5
    if shape != HEART:
        assert offset.abs().max() <= 0.5
    else:  # the heart's mass sits above its centre (lobes up): a negative row offset
        assert offset[:, 0].abs().max() <= 0.5
        assert offset[:, 1].mean() < -0.5


def test_rotations_by_a_full_turn_and_by_the_shapes_symmetries_change_nothing():
    generator = torch.Generator().manual_seed(0)
    count = 64
    angle = torch.rand(count, generator=generator) * 2 * math.pi
    scale = 0.5 + 0.5 * torch.rand(count, generator=generator)
    x, y = torch.rand(count, generator=generator), torch.rand(count, generator=generator)
    for shape, symmetry in ((SQUARE, math.pi / 2), (ELLIPSE, math.pi), (HEART, 2 * math.pi)):
        base = render_sprites(_sprites(shape, scale, angle, x, y))
        turned = render_sprites(_sprites(shape, scale, angle + 2 * math.pi, x, y))
        assert torch.equal(base, turned)
        symmetric = render_sprites(_sprites(shape, scale, angle + symmetry, x, y))
        assert torch.equal(base, symmetric)
    # and a quarter turn of the heart is a different picture
    heart = render_sprites(_sprites(HEART, scale, angle, x, y))
    assert not torch.equal(heart, render_sprites(_sprites(HEART, scale, angle + math.pi / 2, x, y)))


def test_heart_points_down_and_stays_inside_the_canvas():
    """At angle 0 the heart's lowest on-pixel is its tip on the centre column (b = −1 ⇒
    v = (1 + 0.118) / 1.139); no sprite of the grid touches the border."""
    image = DSpritesDataModule("unused").observations_from_factors(
        torch.tensor([[HEART, 5, 0, 15, 15]])
    )[0, 0]
    rows = image.nonzero()[:, 0]
    centre = MARGIN_PX + SPAN_PX * 15 / 31
    tip = centre + RADIUS_PX * (1 + HEART_SHIFT) / HEART_WIDTH
    assert abs((rows.max().item() + 0.5) - tip) <= 1.0
    corners = torch.tensor(
        [[s, 5, o, x, y] for s in range(3) for o in (0, 5, 15) for x in (0, 31) for y in (0, 31)]
    )
    images = DSpritesDataModule("unused").observations_from_factors(corners)
    border = images.clone()
    border[..., 1:-1, 1:-1] = 0
    assert border.sum() == 0
    assert (images.sum((1, 2, 3)) > 0).all()


# -- determinism, splits and batches ----------------------------------------------------------
def test_rendering_is_deterministic_across_calls_and_devices():
    datamodule = DSpritesDataModule("unused")
    factors = datamodule.sample_factors(128, torch.Generator().manual_seed(3))
    first = datamodule.observations_from_factors(factors)
    assert torch.equal(first, DSpritesDataModule("unused").observations_from_factors(factors))
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: the CPU-vs-CUDA comparison needs one")
    assert torch.equal(first, datamodule.observations_from_factors(factors.cuda()).cpu())


def test_splits_are_seeded_disjoint_and_cover_the_grid():
    datamodule = DSpritesDataModule("unused", val_size=1000, test_size=0.01, split_seed=4)
    datamodule.setup()
    info = datamodule.data_info()
    assert (info["num_train"], info["num_val"], info["num_test"]) == (728_907, 1000, 7373)
    assert info["num_classes"] is None
    assert info["factor_sizes"] == [3, 6, 40, 32, 32]
    assert info["source"] == "generated"
    joined = torch.cat(list(datamodule.splits.values()))
    assert torch.equal(joined.sort().values, torch.arange(737_280))
    again = DSpritesDataModule("unused", val_size=1000, test_size=0.01, split_seed=4)
    again.setup()
    assert torch.equal(again.splits["val"], datamodule.splits["val"])
    other = DSpritesDataModule("unused", val_size=1000, test_size=0.01, split_seed=5)
    other.setup()
    assert not torch.equal(other.splits["val"], datamodule.splits["val"])


def test_batches_are_images_and_their_factors_on_either_loader():
    datamodule = DSpritesDataModule(
        "unused", batch_size=16, eval_batch_size=32, val_size=40, test_size=40
    )
    datamodule.setup()
    host = [datamodule.on_after_batch_transfer(b, 0) for b in datamodule.val_dataloader()]
    datamodule.on_device = True
    device = [datamodule.on_after_batch_transfer(b, 0) for b in datamodule.val_dataloader()]
    assert [len(x) for x, _ in host] == [32, 8]
    for (x, factors), (x_device, factors_device) in zip(host, device, strict=True):
        assert torch.equal(x, x_device)
        assert torch.equal(factors, factors_device)
        assert x.shape[1:] == (1, 64, 64)
        assert torch.equal(x, datamodule.observations_from_factors(factors))
    first = torch.cat([f for _, f in host])
    assert torch.equal(ravel(first, SIZES), datamodule.splits["val"])


def test_implements_ground_truth_data_and_fixing_a_factor():
    datamodule = DSpritesDataModule("unused")
    assert isinstance(datamodule, GroundTruthData)
    generator = torch.Generator().manual_seed(1)
    factors = sample_with_fixed_factor(datamodule, 200, 2, generator)
    assert factors.shape == (200, 5)
    assert factors.dtype == torch.int64
    assert factors[:, 2].unique().numel() == 1
    assert factors[:, 3].unique().numel() > 20  # the others vary
    assert ((factors >= 0) & (factors < torch.tensor(SIZES))).all()
    with pytest.raises(ValueError, match="outside the grid"):
        datamodule.observations_from_factors(torch.tensor([[3, 0, 0, 0, 0]]))


# -- Locatello et al.'s variants --------------------------------------------------------------
def test_colour_dsprites_paints_each_sprite_in_one_colour_in_0_5_to_1():
    factors = DSpritesDataModule("unused").sample_factors(64, torch.Generator().manual_seed(0))
    mask = DSpritesDataModule("unused").observations_from_factors(factors)
    coloured = ColorDSpritesDataModule("unused").observations_from_factors(
        factors, torch.Generator().manual_seed(9)
    )
    assert coloured.shape == (64, 3, 64, 64)
    assert torch.equal(coloured[:, :1] > 0, mask > 0)  # the sprite where dSprites has it
    assert (coloured[mask.expand_as(coloured) == 0] == 0).all()  # black background
    colour = coloured.amax((2, 3))  # [B, 3]: one colour per image
    assert torch.equal(coloured, mask * colour[:, :, None, None])
    assert colour.min() >= 0.5
    assert colour.max() <= 1.0
    assert colour.std() > 0.1  # random, not one fixed colour
    again = ColorDSpritesDataModule("unused").observations_from_factors(
        factors, torch.Generator().manual_seed(9)
    )
    assert torch.equal(coloured, again)


def test_noisy_dsprites_is_a_white_sprite_on_uniform_noise():
    factors = DSpritesDataModule("unused").sample_factors(64, torch.Generator().manual_seed(0))
    mask = DSpritesDataModule("unused").observations_from_factors(factors).expand(-1, 3, -1, -1)
    noisy = NoisyDSpritesDataModule("unused").observations_from_factors(
        factors, torch.Generator().manual_seed(2)
    )
    assert noisy.shape == (64, 3, 64, 64)
    assert (noisy[mask == 1] == 1).all()
    background = noisy[mask == 0].double()
    assert background.min() >= 0
    assert background.max() < 1
    # U(0, 1): mean 1/2, variance 1/12 (≈ 700k values: standard errors 3.5e-4 and 1e-4)
    assert background.mean().item() == pytest.approx(0.5, abs=3e-3)
    assert background.var().item() == pytest.approx(1 / 12, abs=1e-3)


# -- the original file --------------------------------------------------------------------------
class TinyDSprites(DSpritesDataModule):
    """dSprites on a 3 × 2 × 3 × 2 × 2 grid, so a stand-in for the original file is small."""

    factor_sizes = (3, 2, 3, 2, 2)


def _write_original(folder, images=None, classes=None) -> None:
    count = int(np.prod(TinyDSprites.factor_sizes))
    grid = np.stack(np.unravel_index(np.arange(count), TinyDSprites.factor_sizes), 1)
    if classes is None:
        classes = np.concatenate([np.zeros((count, 1), np.int64), grid], 1)
    if images is None:
        drawn = TinyDSprites("unused").observations_from_factors(torch.from_numpy(grid))
        images = drawn[:, 0].numpy().astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / ORIGINAL_FILE, imgs=images, latents_classes=classes)
    return images


def test_the_original_file_is_read_instead_with_its_latent_classes(tmp_path):
    written = _write_original(tmp_path / "dsprites")
    written[0, 0, 0] = 1  # a pixel the renderer does not draw: proves the file is read
    _write_original(tmp_path / "dsprites", images=written)
    datamodule = TinyDSprites(str(tmp_path), batch_size=4, val_size=6, test_size=6)
    datamodule.setup()
    assert datamodule.data_info()["source"] == "original"
    factors = unravel(torch.arange(72), TinyDSprites.factor_sizes)
    read = datamodule.observations_from_factors(factors)
    np.testing.assert_array_equal(read[:, 0].numpy(), written)
    x, batch_factors = datamodule.on_after_batch_transfer(
        next(iter(datamodule.test_dataloader())), 0
    )
    assert torch.equal(x, datamodule.observations_from_factors(batch_factors))
    generated = TinyDSprites(
        str(tmp_path), source="generated", batch_size=4, val_size=6, test_size=6
    )
    generated.setup()
    assert generated.packed is None
    assert generated.observations_from_factors(factors[:1])[0, 0, 0, 0] == 0


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("order", "not the grid in order"),
        ("values", "values other than 0 and 1"),
        ("shape", "imgs is uint8"),
        ("zip", "cannot be opened"),
    ],
)
def test_a_damaged_original_file_is_one_clear_error(tmp_path, damage, message):
    count = 72
    if damage == "zip":
        (tmp_path / ORIGINAL_FILE).write_bytes(b"not a zip")
    else:
        grid = np.stack(np.unravel_index(np.arange(count), TinyDSprites.factor_sizes), 1)
        classes = np.concatenate([np.zeros((count, 1), np.int64), grid], 1)
        images = np.zeros((count, 64, 64), np.uint8)
        if damage == "order":
            classes = classes[::-1].copy()
        if damage == "values":
            images[5, 3, 3] = 255
        if damage == "shape":
            images = images[:, :32]
        np.savez_compressed(tmp_path / ORIGINAL_FILE, imgs=images, latents_classes=classes)
    datamodule = TinyDSprites(str(tmp_path), batch_size=4, val_size=6, test_size=6)
    with pytest.raises(VaelabError, match=message):
        datamodule.setup()
    assert zipfile.is_zipfile(tmp_path / ORIGINAL_FILE) == (damage != "zip")


def test_source_original_without_the_file_says_where_to_get_it(tmp_path):
    with pytest.raises(VaelabError, match=r"data\.source=generated"):
        DSpritesDataModule(str(tmp_path), source="original").setup()


def test_split_sizes_must_leave_training_data():
    with pytest.raises(VaelabError, match="leave no training data"):
        TinyDSprites("unused", val_size=40, test_size=40).setup()


# -- Locatello et al.'s network ------------------------------------------------------------------
def test_locatello_conv_has_the_papers_layers_and_parameter_count():
    """On 1×64×64 with z = 10: convs 1→32 (k4), 32→32 (k4), 32→64 (k2), 64→64 (k2) reach
    64×4×4 = 1024 features → 256 → 2·10; decoder 10 → 256 → 1024 → ConvT 64, 32, 32, 1."""
    net = locatello_conv(
        (1, 64, 64), latent_dim=10, encoder_out_features=20, decoder_out_channels=1
    )
    encoder = 1 * 32 * 16 + 32 + 32 * 32 * 16 + 32 + 32 * 64 * 4 + 64 + 64 * 64 * 4 + 64
    encoder += 1024 * 256 + 256 + 256 * 20 + 20
    decoder = 10 * 256 + 256 + 256 * 1024 + 1024
    decoder += 64 * 64 * 16 + 64 + 64 * 32 * 16 + 32 + 32 * 32 * 16 + 32 + 32 * 1 * 16 + 1
    assert sum(p.numel() for p in net.encoder.parameters()) == encoder
    assert sum(p.numel() for p in net.decoder.parameters()) == decoder
    assert net.encoder(torch.zeros(2, 1, 64, 64)).shape == (2, 20)
    assert net.decoder(torch.zeros(2, 10)).shape == (2, 1, 64, 64)


@pytest.mark.parametrize("shape", [(3, 64, 64), (1, 8, 8), (1, 28, 20)])
def test_locatello_conv_pads_other_sides_and_crops_back(shape):
    net = locatello_conv(
        shape, latent_dim=4, encoder_out_features=8, decoder_out_channels=2 * shape[0]
    )
    assert net.encoder(torch.zeros(2, *shape)).shape == (2, 8)
    assert net.decoder(torch.zeros(2, 4)).shape == (2, 2 * shape[0], *shape[1:])


def test_latent_plots_colour_factor_data_by_shape():
    """Encodings of factor data carry factors [N, 5] as labels; the scatter plot colours the
    points by the first factor and names its values (square, ellipse, heart)."""
    datamodule = DSpritesDataModule("unused")
    factors = datamodule.sample_factors(30, torch.Generator().manual_seed(0))
    encodings = Encodings(mean=torch.randn(30, 2), stddev=torch.ones(30, 2), labels=factors)
    figure = latent_scatter_figure(encodings, dataset_class_names(datamodule))
    legend = figure.axes[0].get_legend()
    shown = sorted(factors[:, 0].unique().tolist())
    assert [t.get_text() for t in legend.get_texts()] == [DSPRITES_SHAPES[s] for s in shown]


@pytest.mark.slow
def test_a_beta_vae_learns_generated_dsprites(make_config):
    """250 Adam steps (lr 1e-3) of experiment=disentangle_dsprites_cpu (β = 4) on generated
    dSprites: the test −ELBO falls from 4096·log 2 = 2839 nats (an untrained decoder, p ≈ ½)
    well below the NLL of the best model of independent pixels (each pixel's own frequency on
    the test images, 552 nats), which no VAE reaches without using its latents (KL > 0)."""
    from vaelab.train import train

    cfg = make_config(
        "experiment=disentangle_dsprites_cpu",
        "trainer.max_steps=250",
        "trainer.val_check_interval=250",
        "trainer.limit_val_batches=1",
        "data.val_size=256",
        "data.test_size=512",
        "optimizer.lr=1e-3",
        "callbacks.image_logger=null",
    )
    metrics = train(cfg)
    datamodule = DSpritesDataModule("unused", val_size=256, test_size=512)
    datamodule.setup()
    test = datamodule.observations_from_factors(unravel(datamodule.splits["test"], SIZES)).double()
    frequency = test.mean(0).clamp(1e-12, 1 - 1e-12)
    independent = -(test * frequency.log() + (1 - test) * (1 - frequency).log()).sum((1, 2, 3))
    print(
        f"test -ELBO {-metrics['test/elbo']:.1f}, KL {metrics['test/kl']:.2f}, "
        f"independent pixels {independent.mean():.1f}"
    )
    assert -metrics["test/elbo"] < 0.8 * independent.mean().item()
    assert metrics["test/kl"] > 1.0


def test_disentangle_dsprites_keeps_locatello_et_al_s_settings(make_config):
    cfg = make_config("experiment=disentangle_dsprites")
    assert cfg.data._target_.endswith("dsprites.DSpritesDataModule")
    assert cfg.model.net._target_.endswith("locatello_conv")
    assert list(cfg.model.net.channels) == [32, 32, 64, 64]
    assert list(cfg.model.net.kernels) == [4, 4, 2, 2]
    assert cfg.model.net.hidden_dim == 256
    assert cfg.model.latent_dim == 10
    assert cfg.model.likelihood._target_.endswith("BernoulliLikelihood")
    assert cfg.data.batch_size == 64
    assert cfg.optimizer.lr == 1e-4
    assert list(cfg.optimizer.betas) == [0.9, 0.999]
    assert cfg.optimizer.eps == 1e-8
    assert cfg.trainer.max_steps == 300_000
    raw = OmegaConf.load(CONFIG_DIR / "experiment" / "disentangle_dsprites.yaml")
    assert raw.hydra.sweeper.params["beta.value"] == "1.0,2.0,4.0,6.0,8.0,16.0"
    # the β-VAE and the TC-family's β-TCVAE, β on its total correlation
    assert raw.hydra.sweeper.params["objective"] == "elbo,beta_tcvae"
    tcvae = make_config("experiment=disentangle_dsprites", "objective=beta_tcvae", name="tc")
    assert tcvae.objective._target_.endswith("BetaTCVAE")
    assert (tcvae.objective.alpha, tcvae.objective.gamma) == (1.0, 1.0)


def test_disentangle_dsprites_factor_vae_sweeps_gamma_with_the_papers_discriminator(make_config):
    cfg = make_config("experiment=disentangle_dsprites_factor_vae")
    reference = make_config("experiment=disentangle_dsprites", name="reference")
    for part in ("data", "model", "optimizer"):
        assert cfg[part] == reference[part], part
    assert cfg.trainer.max_steps == reference.trainer.max_steps
    assert cfg.objective._target_.endswith("FactorVAE")
    assert cfg.beta.value == 1.0
    assert (cfg.objective.discriminator_width, cfg.objective.discriminator_depth) == (1000, 6)
    assert cfg.objective.adversary_optimizer.lr == 1e-4
    assert list(cfg.objective.adversary_optimizer.betas) == [0.5, 0.9]
    raw = OmegaConf.load(CONFIG_DIR / "experiment" / "disentangle_dsprites_factor_vae.yaml")
    # Locatello et al.'s γ grid; the parent's β and objective sweep pinned to one value
    params = raw.hydra.sweeper.params
    assert params["objective.gamma"] == "10.0,20.0,30.0,40.0,50.0,100.0"
    assert (params["objective"], params["beta.value"]) == ("factor_vae", "1.0")
