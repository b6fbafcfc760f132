"""vaelab.data.image_folder (``data=image_folder``): folders of images written here are read back
equal, with class labels, grey conversion, crop or stretch, seeded splits and one clear error for
each kind of bad folder; and one training batch on your own data (``data=image_folder`` and
``data=npz``, with and without factors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import random_images
from vaelab.data.image_folder import ImageFolderDataModule
from vaelab.errors import VaelabError


def _folder(path, **options) -> ImageFolderDataModule:
    options = {"image_size": None, "val_size": 1, "test_size": 1, "batch_size": 2, **options}
    return ImageFolderDataModule("unused", path=str(path), **options)


def _write_pngs(folder, images: np.ndarray, names=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        name = names[index] if names else f"{index:03d}.png"
        Image.fromarray(image).save(folder / name)


# -- image folders ------------------------------------------------------------------------------
def test_flat_grey_folder_round_trips_unlabelled(tmp_path):
    images = random_images(6, 5, 7)
    _write_pngs(tmp_path / "faces", images)
    (tmp_path / "faces" / "notes.txt").write_text("not an image: ignored")
    datamodule = _folder(tmp_path / "faces")
    pool = datamodule.load_pool()
    np.testing.assert_array_equal(pool.images[:, 0].numpy(), images)
    assert (pool.labels == -1).all()
    assert datamodule.dims == (1, 5, 7)
    assert datamodule.num_classes is None


def test_class_subfolders_round_trip_rgb_with_sorted_class_labels(tmp_path):
    cats, dogs = random_images(2, 4, 4, 3, seed=1), random_images(3, 4, 4, 3, seed=2)
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


def test_resizing_is_said_once_with_both_sizes_and_how_to_keep_the_native_one(tmp_path, capsys):
    _write_pngs(tmp_path / "digits", random_images(3, 28, 28))
    resized = _folder(tmp_path / "digits", image_size=64)
    assert resized.load_pool().images.shape[1:] == (1, 64, 64)
    said = capsys.readouterr().err.strip().splitlines()
    assert said == [
        f"vaelab: note: data=image_folder resized the images of {tmp_path / 'digits'} from "
        "28×28 to 64×64 (data.image_size=64, resize=crop); data.image_size=null keeps their "
        "native size"
    ]
    for same_size in (_folder(tmp_path / "digits", image_size=28), _folder(tmp_path / "digits")):
        same_size.load_pool()
        assert capsys.readouterr().err == ""  # nothing resized, nothing said


def test_folder_splits_are_seeded_and_disjoint(tmp_path):
    _write_pngs(tmp_path / "many", random_images(20, 3, 3))
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
        _write_pngs(root, random_images(2, 4, 4))
        (root / "002.png").write_bytes(b"not a png at all")
    if layout == "mixed":
        _write_pngs(root, random_images(1, 4, 4))
        _write_pngs(root / "class_a", random_images(1, 4, 4))
    if layout == "sizes":
        _write_pngs(root, random_images(1, 4, 4))
        _write_pngs(root, random_images(1, 5, 4), names=["other.png"])
    if layout == "empty_class":
        _write_pngs(root / "a", random_images(1, 4, 4))
        (root / "b").mkdir()
    with pytest.raises(VaelabError, match=message) as raised:
        _folder(root).load_pool()
    assert "\n" not in str(raised.value)


# -- training runs --------------------------------------------------------------------------------
def _write_option_data(option: str, root) -> list[str]:
    """Tiny data for ``option`` under ``root`` and the overrides that point the config at it."""
    images = random_images(24, 8, 8)
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
