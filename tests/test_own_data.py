"""``data=image_folder`` and ``data=npz``: files written here are read back equal, with labels,
factors, seeded splits and one clear error for each kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vaelab.data.ground_truth import GroundTruthData, sample_with_fixed_factor
from vaelab.data.image_folder import ImageFolderDataModule
from vaelab.data.npz import FactorNpzDataModule, NpzDataModule
from vaelab.errors import VaelabError


def _folder(path, **options) -> ImageFolderDataModule:
    options = {"image_size": None, "val_size": 1, "test_size": 1, "batch_size": 2, **options}
    return ImageFolderDataModule("unused", path=str(path), **options)


def _npz(path, **options) -> NpzDataModule:
    options = {"val_size": 1, "test_size": 1, "batch_size": 2, **options}
    return NpzDataModule("unused", path=str(path), **options)


def _random_images(count: int, *shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *shape), dtype=np.uint8)


def _write_pngs(folder, images: np.ndarray, names=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        name = names[index] if names else f"{index:03d}.png"
        Image.fromarray(image).save(folder / name)


# -- image folders ------------------------------------------------------------------------------
def test_flat_grey_folder_round_trips_unlabelled(tmp_path):
    images = _random_images(6, 5, 7)
    _write_pngs(tmp_path / "faces", images)
    (tmp_path / "faces" / "notes.txt").write_text("not an image: ignored")
    datamodule = _folder(tmp_path / "faces")
    pool = datamodule.load_pool()
    np.testing.assert_array_equal(pool.images[:, 0].numpy(), images)
    assert (pool.labels == -1).all()
    assert datamodule.dims == (1, 5, 7)
    assert datamodule.num_classes is None


def test_class_subfolders_round_trip_rgb_with_sorted_class_labels(tmp_path):
    cats, dogs = _random_images(2, 4, 4, 3, seed=1), _random_images(3, 4, 4, 3, seed=2)
    _write_pngs(tmp_path / "pets" / "dog", dogs)
    _write_pngs(tmp_path / "pets" / "cat", cats)
    datamodule = _folder(tmp_path / "pets", channels=3)
    pool = datamodule.load_pool()
    expected = np.concatenate([cats, dogs]).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(pool.images.numpy(), expected)
    assert pool.labels.tolist() == [0, 0, 1, 1, 1]
    assert datamodule.class_names == ["cat", "dog"]
    datamodule.setup()
    assert datamodule.data_info()["num_classes"] == 2


def test_grey_conversion_is_pils_luma_and_rgb_keeps_grey_images_grey(tmp_path):
    _write_pngs(tmp_path / "red", np.full((1, 2, 2, 3), (255, 0, 0), dtype=np.uint8))
    grey = _folder(tmp_path / "red", val_size=0.5, test_size=None).load_pool().images
    assert (grey == 76).all()  # L = (299 R + 587 G + 114 B) / 1000 = 76.2
    _write_pngs(tmp_path / "grey", np.full((1, 2, 2), 99, dtype=np.uint8))
    rgb = _folder(tmp_path / "grey", channels=3, val_size=0.5, test_size=None).load_pool().images
    assert rgb.shape == (1, 3, 2, 2)
    assert (rgb == 99).all()


def test_crop_keeps_the_centre_and_stretch_squeezes_the_whole_image(tmp_path):
    """An 8×24 image of stripes black | white | black: crop to 8×8 is the white middle,
    stretch to 8×8 keeps all three stripes."""
    stripes = np.zeros((1, 8, 24), dtype=np.uint8)
    stripes[:, :, 8:16] = 255
    _write_pngs(tmp_path / "wide", stripes)
    crop = _folder(tmp_path / "wide", image_size=8, val_size=0.5, test_size=None)
    assert crop.dims == (1, 8, 8)
    assert (crop.load_pool().images == 255).all()
    stretch = _folder(
        tmp_path / "wide", image_size=[8, 8], resize="stretch", val_size=0.5, test_size=None
    )
    columns = stretch.load_pool().images[0, 0].float().mean(0)
    assert columns[0] < 64
    assert columns[-1] < 64
    assert columns[3:5].min() > 192
    tall = _folder(tmp_path / "wide", image_size=[4, 6], val_size=0.5, test_size=None)
    assert tall.load_pool().images.shape == (1, 1, 4, 6)


def test_folder_splits_are_seeded_and_disjoint(tmp_path):
    _write_pngs(tmp_path / "many", _random_images(20, 3, 3))
    datamodule = _folder(tmp_path / "many", val_size=4, test_size=0.25)
    datamodule.setup()
    info = datamodule.data_info()
    assert (info["num_train"], info["num_val"], info["num_test"]) == (11, 4, 5)
    rows = torch.cat([split.images.flatten(1) for split in datamodule.splits.values()])
    assert len(rows.unique(dim=0)) == 20
    again = _folder(tmp_path / "many", val_size=4, test_size=0.25)
    again.setup()
    assert torch.equal(again.splits["val"].images, datamodule.splits["val"].images)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", "is not a folder"),
        ("empty", "holds no image files"),
        ("unreadable", "not a readable image"),
        ("mixed", "use one layout"),
        ("sizes", "differ in size"),
        ("empty_class", "every class subfolder must hold images"),
    ],
)
def test_bad_image_folders_are_one_clear_error(tmp_path, layout, message):
    root = tmp_path / "images"
    if layout != "missing":
        root.mkdir()
    if layout == "unreadable":
        _write_pngs(root, _random_images(2, 4, 4))
        (root / "002.png").write_bytes(b"not a png at all")
    if layout == "mixed":
        _write_pngs(root, _random_images(1, 4, 4))
        _write_pngs(root / "class_a", _random_images(1, 4, 4))
    if layout == "sizes":
        _write_pngs(root, _random_images(1, 4, 4))
        _write_pngs(root, _random_images(1, 5, 4), names=["other.png"])
    if layout == "empty_class":
        _write_pngs(root / "a", _random_images(1, 4, 4))
        (root / "b").mkdir()
    with pytest.raises(VaelabError, match=message) as raised:
        _folder(root).load_pool()
    assert "\n" not in str(raised.value)


# -- npz files ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stored", "layout"),
    [
        ("NHW", "auto"),
        ("NHWC", "auto"),
        ("NCHW", "auto"),
        ("NHWC", "NHWC"),
    ],
)
def test_npz_layouts_round_trip(tmp_path, stored, layout):
    images = _random_images(5, 3, 6, 7)  # [N, C, H, W]
    x = {"NHW": images[:, 0], "NHWC": images.transpose(0, 2, 3, 1), "NCHW": images}[stored]
    np.savez(tmp_path / "d.npz", x=x)
    pool = _npz(tmp_path / "d.npz", layout=layout).load_pool()
    expected = images[:, :1] if stored == "NHW" else images
    np.testing.assert_array_equal(pool.images.numpy(), expected)
    assert (pool.labels == -1).all()


def test_npz_floats_and_bools_become_grey_levels(tmp_path):
    x = np.array([[[0.0, 0.5], [1.0, 0.2]]], dtype=np.float32)
    np.savez(tmp_path / "f.npz", x=np.repeat(x, 3, 0))
    pool = _npz(tmp_path / "f.npz").load_pool()
    assert pool.images[0, 0].tolist() == [[0, 128], [255, 51]]  # round(255 x)
    np.savez(tmp_path / "b.npz", x=np.repeat(x > 0.3, 3, 0))
    assert _npz(tmp_path / "b.npz").load_pool().images[0, 0].tolist() == [[0, 255], [255, 0]]


def test_npz_labels_set_num_classes_and_reach_the_batches(tmp_path):
    images = _random_images(10, 4, 4)
    labels = np.arange(10) % 4
    np.savez(tmp_path / "l.npz", x=images, y=labels)
    datamodule = _npz(tmp_path / "l.npz", val_size=2, test_size=2, shuffle=False)
    datamodule.setup()
    assert datamodule.data_info()["num_classes"] == 4
    assert not isinstance(datamodule, GroundTruthData)
    x, y = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    for image, label in zip(x, y, strict=True):
        row = np.flatnonzero((images == np.rint(image[0].numpy() * 255)).all((1, 2)))
        assert labels[row].tolist() == [label.item()]


def test_npz_factors_implement_ground_truth_data_over_the_rows_present(tmp_path):
    grid = np.stack(np.meshgrid(np.arange(3), np.arange(4), indexing="ij"), -1).reshape(-1, 2)
    present = grid[grid.sum(1) != 3]  # (0, 3), (1, 2), (2, 1) absent
    images = _random_images(len(present), 4, 4)
    np.savez(tmp_path / "f.npz", x=images, factors=present, factor_names=np.array(["a", "b"]))
    datamodule = _npz(tmp_path / "f.npz")
    assert isinstance(datamodule, FactorNpzDataModule)
    assert isinstance(datamodule, GroundTruthData)
    assert datamodule.factor_sizes == (3, 4)
    assert datamodule.factor_names == ("a", "b")
    looked_up = datamodule.observations_from_factors(torch.from_numpy(present[::-1].copy()))
    np.testing.assert_array_equal(np.rint(looked_up[:, 0].numpy() * 255), images[::-1])
    drawn = datamodule.sample_factors(500, torch.Generator().manual_seed(0))
    assert {tuple(row) for row in drawn.tolist()} == {tuple(row) for row in present.tolist()}
    fixed = sample_with_fixed_factor(datamodule, 50, 0, torch.Generator().manual_seed(1))
    assert fixed[:, 0].unique().numel() == 1
    with pytest.raises(VaelabError, match=r"holds no image with factors \[0, 3\]"):
        datamodule.observations_from_factors(torch.tensor([[0, 0], [0, 3]]))
    datamodule.setup()
    x, factors = datamodule.on_after_batch_transfer(next(iter(datamodule.test_dataloader())), 0)
    assert factors.shape == (1, 2)
    torch.testing.assert_close(x, datamodule.observations_from_factors(factors))
    assert datamodule.data_info()["factor_sizes"] == [3, 4]


def _bad_npz(path, kind: str) -> None:
    x = _random_images(4, 3, 3)
    arrays = {
        "no_x": {"images": x},
        "lengths": {"x": x, "y": np.arange(3)},
        "dtype": {"x": x.astype(np.int64)},
        "range": {"x": x / 100.0},
        "nan": {"x": np.full((4, 3, 3), np.nan)},
        "ambiguous": {"x": np.zeros((4, 3, 5, 3), np.uint8)},
        "both": {"x": x, "y": np.arange(4), "factors": np.zeros((4, 1), int)},
        "negative": {"x": x, "factors": -np.ones((4, 1), int)},
        "labels_2d": {"x": x, "y": np.zeros((4, 2), int)},
        "float_labels": {"x": x, "y": np.zeros(4)},
        "shape": {"x": np.zeros((4, 3), np.uint8)},
    }
    if kind == "not_npz":
        path.write_bytes(b"plain text")
    elif kind != "missing":
        np.savez(path, **arrays[kind])


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "no such file"),
        ("not_npz", "not a readable .npz file"),
        ("no_x", "no array x"),
        ("lengths", "y has 3 rows but x has 4 images"),
        ("dtype", "x has dtype int64"),
        ("range", r"floats outside \[0, 1\]"),
        ("nan", "NaN/Inf"),
        ("ambiguous", "set data.layout"),
        ("both", "both y and factors"),
        ("negative", "negative values"),
        ("labels_2d", r"y must be class labels \[N\]"),
        ("float_labels", "y has dtype float64"),
        ("shape", "x has shape"),
    ],
)
def test_bad_npz_files_are_one_clear_error(tmp_path, kind, message):
    path = tmp_path / "data.npz"
    _bad_npz(path, kind)
    with pytest.raises(VaelabError, match=message) as raised:
        _npz(path).load_pool()
    assert "\n" not in str(raised.value)


# -- training runs --------------------------------------------------------------------------------
def _write_option_data(option: str, root) -> list[str]:
    """Tiny data for ``option`` under ``root`` and the overrides that point the config at it."""
    images = _random_images(24, 8, 8)
    if option == "image_folder":
        _write_pngs(root / "digits" / "a", images[:12])
        _write_pngs(root / "digits" / "b", images[12:])
        return [f"data.path={root / 'digits'}", "data.image_size=8"]
    arrays = {"x": images, "y": np.arange(24) % 3}
    if option == "npz_factors":
        arrays = {"x": images, "factors": np.stack([np.arange(24) % 4, np.arange(24) // 4], 1)}
    np.savez(root / "tiny.npz", **arrays)
    return [f"data.path={root / 'tiny.npz'}"]


@pytest.mark.slow
@pytest.mark.parametrize("option", ["image_folder", "npz", "npz_factors"])
def test_one_training_batch_on_your_own_data(make_config, tmp_path, option):
    from vaelab.train import train

    overrides = _write_option_data(option, tmp_path)
    cfg = make_config(
        f"data={option.removesuffix('_factors')}",
        *overrides,
        "data.batch_size=8",
        "data.val_size=4",
        "data.test_size=4",
        "trainer.fast_dev_run=true",
    )
    metrics = train(cfg)
    torch.testing.assert_close(
        metrics["test/elbo"], -(metrics["test/recon"] + metrics["test/kl"]), rtol=1e-4, atol=1e-3
    )
    # a Bernoulli likelihood on grey levels: −ELBO ≥ the pixels' own entropy > 0
    assert metrics["test/recon"] > 0
