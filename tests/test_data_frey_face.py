"""vaelab.data.frey_face on private copies of the real files: .mat and .npy give the same
frames; seeded splits, their sizes and scaling; missing, corrupt and misshapen files are clear
errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from tests.datamodule_checks import batch_on_device, frame_counts
from vaelab.data.frey_face import FreyFaceDataModule
from vaelab.data.image_datamodule import PIXEL_MAX
from vaelab.errors import VaelabError

FREY_FRAMES, FREY_H, FREY_W = 1965, 28, 20


def _frey(data_dir: Path, **kwargs) -> FreyFaceDataModule:
    settings = {"batch_size": 100, "val_size": 197, "download": False, **kwargs}
    return FreyFaceDataModule(str(data_dir), **settings)


# -- Frey Face ------------------------------------------------------------------------------
def test_frey_mat_and_npy_give_the_same_frames(frey_data_dir, tmp_path):
    mat_only = tmp_path / "mat" / "frey"
    npy_only = tmp_path / "npy" / "frey"
    mat_only.mkdir(parents=True)
    npy_only.mkdir(parents=True)
    (mat_only / "frey_rawface.mat").write_bytes(
        (frey_data_dir / "frey/frey_rawface.mat").read_bytes()
    )
    (npy_only / "frey_faces.npy").write_bytes((frey_data_dir / "frey/frey_faces.npy").read_bytes())
    from_mat = _frey(mat_only.parent).load_pool()
    from_npy = _frey(npy_only.parent).load_pool()
    assert from_mat.images.shape == (FREY_FRAMES, 1, FREY_H, FREY_W)
    assert from_mat.images.dtype == torch.uint8
    assert torch.equal(from_mat.images, from_npy.images)
    # the .mat stores one flattened frame per column: frame 0 is column 0, row-major
    ff = scipy.io.loadmat(str(mat_only / "frey_rawface.mat"))["ff"]
    assert torch.equal(from_mat.images[0, 0], torch.from_numpy(ff[:, 0].reshape(FREY_H, FREY_W)))
    assert (from_mat.labels == -1).all()


def test_frey_split_sizes_scaling_and_test_equals_val(frey_data_dir):
    dm = _frey(frey_data_dir)
    assert dm.dims == (1, FREY_H, FREY_W)
    assert dm.num_classes is None
    dm.setup("fit")
    # seed 003: train_test_split(test_size=0.1) → 1768 / 197
    assert len(dm.splits["train"]) == 1768
    assert len(dm.splits["val"]) == 197
    assert torch.equal(dm.splits["test"].images, dm.splits["val"].images)
    pool = dm.load_pool()
    assert frame_counts(dm.splits["train"].images) + frame_counts(
        dm.splits["val"].images
    ) == frame_counts(pool.images)
    x, labels = batch_on_device(dm, "val")
    assert x.dtype == torch.float32
    assert x.min() >= 0.0
    assert x.max() <= 1.0
    torch.testing.assert_close(x, dm.splits["val"].images[: len(x)].float() / PIXEL_MAX)
    assert (labels == -1).all()


def test_frey_split_is_seeded(frey_data_dir):
    first, again, other = (_frey(frey_data_dir, split_seed=s) for s in (0, 0, 1))
    for dm in (first, again, other):
        dm.setup("fit")
    assert torch.equal(first.splits["val"].images, again.splits["val"].images)
    assert not torch.equal(first.splits["val"].images, other.splits["val"].images)


def test_frey_test_size_holds_out_a_disjoint_test_split(frey_data_dir):
    dm = _frey(frey_data_dir, test_size=100)
    dm.setup("fit")
    sizes = {name: len(split) for name, split in dm.splits.items()}
    assert sizes == {"train": FREY_FRAMES - 100 - 197, "val": 197, "test": 100}
    together = sum((frame_counts(s.images) for s in dm.splits.values()), Counter())
    assert together == frame_counts(dm.load_pool().images)


def test_frey_missing_files_are_a_clear_error(tmp_path):
    with pytest.raises(VaelabError, match=r"frey_rawface\.mat.*VAELAB_DATA_DIR"):
        _frey(tmp_path).setup("fit")


def test_frey_corrupt_mat_is_a_clear_error(tmp_path):
    folder = tmp_path / "frey"
    folder.mkdir()
    (folder / "frey_rawface.mat").write_bytes(b"MATLAB 5.0 but truncated" + bytes(40))
    with pytest.raises(VaelabError, match="not a valid Frey Face file"):
        _frey(tmp_path).setup("fit")


def test_frey_mat_without_ff_or_with_wrong_shape_is_rejected(tmp_path):
    folder = tmp_path / "frey"
    folder.mkdir()
    scipy.io.savemat(str(folder / "frey_rawface.mat"), {"faces": np.zeros((560, 3), np.uint8)})
    with pytest.raises(VaelabError, match="no variable 'ff'"):
        _frey(tmp_path).load_pool()
    scipy.io.savemat(str(folder / "frey_rawface.mat"), {"ff": np.zeros((561, 3), np.uint8)})
    with pytest.raises(VaelabError, match=r"expected \(560, N\)"):
        _frey(tmp_path).load_pool()


def test_frey_npy_with_wrong_shape_is_rejected(tmp_path):
    folder = tmp_path / "frey"
    folder.mkdir()
    np.save(folder / "frey_faces.npy", np.zeros((10, 28, 21), np.uint8))
    with pytest.raises(VaelabError, match=r"expected \(N, 28, 20\)"):
        _frey(tmp_path).load_pool()
