"""vaelab.data.npz (``data=npz``): arrays written here are read back equal in every layout, with
grey levels from floats and bools, labels, factors implementing GroundTruthData over the rows
present, and one clear error for each kind of bad file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import random_images
from vaelab.data.ground_truth import GroundTruthData, sample_with_fixed_factor
from vaelab.data.npz import FactorNpzDataModule, NpzDataModule
from vaelab.errors import VaelabError


def _npz(path, **options) -> NpzDataModule:
    options = {"val_size": 1, "test_size": 1, "batch_size": 2, **options}
    return NpzDataModule("unused", path=str(path), **options)


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
    images = random_images(5, 3, 6, 7)  # [N, C, H, W]
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
    images = random_images(10, 4, 4)
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
    images = random_images(len(present), 4, 4)
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
    x = random_images(4, 3, 3)
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
