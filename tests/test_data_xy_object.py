"""vaelab.data.xy_object: the XYObject factor grid and its pictures against closed forms — the
grid's size and order, each square's area, place and colour, the palettes and the noise
background — and the ground-truth protocol."""

from __future__ import annotations

import pytest
import torch

from vaelab.data.ground_truth import GroundTruthData, observations_are_deterministic
from vaelab.data.sprites import ravel, unravel
from vaelab.data.xy_object import (
    GRID_SPACING,
    NUM_POSITIONS,
    PALETTES,
    SQUARE_SIDES,
    XYObjectDataModule,
)
from vaelab.errors import VaelabError

SIZES = XYObjectDataModule.factor_sizes


def test_grid_size_names_and_order():
    datamodule = XYObjectDataModule("unused")
    assert NUM_POSITIONS == 28 == (64 - 10) // 2 + 1
    assert SIZES == (6, 4, 28, 28)
    assert datamodule.num_examples == 18_816 == 6 * 4 * 28 * 28
    assert datamodule.factor_names == ("colour", "size", "x", "y")
    assert isinstance(datamodule, GroundTruthData)
    positions = torch.arange(datamodule.num_examples)
    factors = unravel(positions, SIZES)
    assert torch.equal(factors[1], torch.tensor([0, 0, 0, 1]))  # y fastest
    assert torch.equal(factors[-1], torch.tensor([5, 3, 27, 27]))
    assert torch.equal(ravel(factors, SIZES), positions)


def test_each_square_has_its_area_place_and_colour():
    datamodule = XYObjectDataModule("unused")
    factors = datamodule.sample_factors(300, torch.Generator().manual_seed(0))
    images = datamodule.observations_from_factors(factors)
    assert images.shape == (300, 3, 64, 64)
    colours = torch.tensor(PALETTES["rainbow"])
    for image, (colour, size, x, y) in zip(images, factors.tolist(), strict=True):
        side = SQUARE_SIDES[size]
        lit = image.amax(0) > 0
        assert int(lit.sum()) == side * side
        rows, columns = lit.nonzero(as_tuple=True)
        assert (int(rows.min()), int(columns.min())) == (GRID_SPACING * y, GRID_SPACING * x)
        assert (int(rows.max()), int(columns.max())) == (
            GRID_SPACING * y + side - 1,
            GRID_SPACING * x + side - 1,
        )
        assert torch.equal(image[:, rows[0], columns[0]], colours[colour])
    assert observations_are_deterministic(datamodule)


def test_the_corners_of_the_grid_stay_inside_the_image():
    datamodule = XYObjectDataModule("unused")
    corner = torch.tensor([[0, 3, 27, 27]])  # the largest square at the last position
    image = datamodule.observations_from_factors(corner)[0]
    assert image[0, 54:64, 54:64].eq(1).all()
    assert int((image[0] > 0).sum()) == 100


def test_greys_palette_is_one_channel_of_six_intensities():
    datamodule = XYObjectDataModule("unused", palette="greys")
    assert datamodule.dims == (1, 64, 64)
    factors = torch.tensor([[c, 0, 0, 0] for c in range(6)])
    images = datamodule.observations_from_factors(factors)
    torch.testing.assert_close(images.amax((1, 2, 3)), torch.arange(1, 7) / 6)


def test_noise_background_keeps_the_square_and_draws_uniform_noise_per_image():
    datamodule = XYObjectDataModule("unused", background="noise")
    assert not observations_are_deterministic(datamodule)
    factors = torch.tensor([[2, 1, 5, 7]] * 2)  # green, 6 px, at (10, 14)
    a = datamodule.observations_from_factors(factors, torch.Generator().manual_seed(0))
    b = datamodule.observations_from_factors(factors, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)  # a generator drives the noise
    inside = a[:, :, 14:20, 10:16]
    assert torch.equal(inside, torch.tensor([0.0, 1.0, 0.0])[None, :, None, None].expand_as(inside))
    outside = a.clone()
    outside[:, :, 14:20, 10:16] = float("nan")
    noise = outside[~outside.isnan()]
    assert noise.min() >= 0
    assert noise.max() < 1
    assert abs(noise.mean().item() - 0.5) < 0.01  # U(0, 1): s.e. 0.29 / √24,000
    assert not torch.equal(a[0], a[1])  # drawn per image


def test_batches_are_images_and_factor_indices(tmp_path):
    datamodule = XYObjectDataModule(str(tmp_path), batch_size=8, val_size=100, test_size=100)
    datamodule.setup("fit")
    info = datamodule.data_info()
    assert info["factor_sizes"] == [6, 4, 28, 28]
    assert (info["num_train"], info["num_val"], info["num_test"]) == (18_616, 100, 100)
    x, factors = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    assert x.shape == (8, 3, 64, 64)
    assert factors.shape == (8, 4)
    assert torch.equal(x, datamodule.observations_from_factors(factors))


def test_bad_options_are_refused_in_one_line():
    with pytest.raises(VaelabError, match="palette"):
        XYObjectDataModule("unused", palette="sepia")
    with pytest.raises(VaelabError, match="a pair can differ in 1 … 4"):
        XYObjectDataModule("unused", changed_factors=5)
