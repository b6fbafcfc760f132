"""Datamodules of issue 4 on real files (private copies) or tiny files in the real format:
Frey Face (.mat and .npy), CIFAR-10 (pickled batches, read by torchvision), scikit-learn digits,
binarized MNIST."""

from __future__ import annotations

import hashlib
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from hydra.utils import instantiate
from sklearn.datasets import load_digits
from torchvision.datasets import CIFAR10

from vaelab.data.cifar10 import CIFAR10DataModule
from vaelab.data.digits import DigitsDataModule
from vaelab.data.frey_face import FreyFaceDataModule
from vaelab.data.image_datamodule import PIXEL_MAX
from vaelab.errors import VaelabError

FREY_FRAMES, FREY_H, FREY_W = 1965, 28, 20


def _frey(data_dir: Path, **kwargs) -> FreyFaceDataModule:
    settings = {"batch_size": 100, "val_size": 197, "download": False, **kwargs}
    return FreyFaceDataModule(str(data_dir), **settings)


def _frame_counts(images: torch.Tensor) -> Counter:
    """Multiset of frames (by content), to compare splits without indices."""
    return Counter(hashlib.sha1(frame.numpy().tobytes()).hexdigest() for frame in images)


def _batch_on_device(datamodule, split: str) -> list[torch.Tensor]:
    batch = next(iter(getattr(datamodule, f"{split}_dataloader")()))
    return datamodule.on_after_batch_transfer(list(batch), 0)


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
    assert _frame_counts(dm.splits["train"].images) + _frame_counts(
        dm.splits["val"].images
    ) == _frame_counts(pool.images)
    x, labels = _batch_on_device(dm, "val")
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
    together = sum((_frame_counts(s.images) for s in dm.splits.values()), Counter())
    assert together == _frame_counts(dm.load_pool().images)


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


# -- CIFAR-10 -----------------------------------------------------------------------------
CIFAR_PIXELS = 3 * 32 * 32
CIFAR_CLASSES = [f"class_{i}" for i in range(10)]


def _write_cifar(root: Path, per_batch: int = 3, test_size: int = 4) -> dict[str, np.ndarray]:
    """Six tiny batches and batches.meta in torchvision's ``cifar-10-batches-py`` format."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        count = test_size if name == "test_batch" else per_batch
        data = rng.integers(0, 256, size=(count, CIFAR_PIXELS), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count).tolist()
        with (folder / name).open("wb") as handle:
            pickle.dump(
                {
                    "batch_label": name,
                    "labels": labels,
                    "data": data,
                    "filenames": [f"{name}_{i}.png" for i in range(count)],
                },
                handle,
            )
        written[name] = data
        written[name + "_labels"] = np.array(labels)
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump({"label_names": CIFAR_CLASSES, "num_vis": CIFAR_PIXELS}, handle)
    return written


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch) -> dict[str, np.ndarray]:
    """A tiny CIFAR-10 in tmp_path that torchvision accepts. torchvision reads only files whose
    md5 is the official release's, so no generated file can pass its check: the test points
    its md5 list at the generated files instead (the reading code is torchvision's own)."""
    written = _write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    monkeypatch.setattr(
        CIFAR10, "train_list", [[n, _md5(folder / n)] for n, _ in CIFAR10.train_list]
    )
    monkeypatch.setattr(CIFAR10, "test_list", [[n, _md5(folder / n)] for n, _ in CIFAR10.test_list])
    monkeypatch.setattr(
        CIFAR10, "meta", {**CIFAR10.meta, "md5": _md5(folder / CIFAR10.meta["filename"])}
    )
    return written


def test_cifar10_reads_pickled_batches_plane_by_plane(tmp_path, fake_cifar):
    written = fake_cifar
    dm = CIFAR10DataModule(str(tmp_path), batch_size=4, val_size=3, download=False)
    assert dm.dims == (3, 32, 32)
    assert dm.num_classes == 10
    train = dm.load_train()
    assert train.images.shape == (15, 3, 32, 32)
    assert train.images.dtype == torch.uint8
    row = written["data_batch_2"][1]  # the 5th image of the pool (batches of 3)
    image = train.images[4]
    # a row holds the red plane, then green, then blue, each 32×32 row-major
    for channel in range(3):
        plane = row[channel * 1024 : (channel + 1) * 1024].reshape(32, 32)
        assert torch.equal(image[channel], torch.from_numpy(plane))
    assert train.labels[4] == written["data_batch_2_labels"][1]
    assert train.labels.dtype == torch.int64
    test = dm.load_test()
    assert torch.equal(test.labels, torch.from_numpy(written["test_batch_labels"]))
    dm.setup("fit")
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [12, 3, 4]
    x, _ = _batch_on_device(dm, "test")
    torch.testing.assert_close(x, test.images.float() / PIXEL_MAX)


def test_cifar10_missing_batch_is_a_clear_error(tmp_path):
    _write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    dm = CIFAR10DataModule(str(tmp_path), batch_size=4, val_size=3, download=False)
    with pytest.raises(VaelabError, match=r"test_batch missing.*VAELAB_DATA_DIR"):
        dm.setup("fit")


@pytest.mark.usefixtures("fake_cifar")
def test_cifar10_corrupt_batch_is_a_clear_error(tmp_path):
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x04garbage")
    dm = CIFAR10DataModule(str(tmp_path), batch_size=4, val_size=3, download=False)
    with pytest.raises(VaelabError, match=r"data_batch_3 in .*not the official CIFAR-10"):
        dm.setup("fit")


class _WritesMarker:
    """A pickle payload: unpickling it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.usefixtures("fake_cifar")
def test_cifar10_batch_with_a_code_payload_is_never_unpickled(tmp_path):
    marker = tmp_path / "payload_ran"
    with (tmp_path / "cifar-10-batches-py" / "data_batch_1").open("wb") as handle:
        pickle.dump({"data": _WritesMarker(marker), "labels": [0]}, handle)
    dm = CIFAR10DataModule(str(tmp_path), batch_size=4, val_size=3, download=False)
    with pytest.raises(VaelabError, match=r"data_batch_1 in .*md5 differs.*download it again"):
        dm.load_train()
    assert not marker.exists()


# -- scikit-learn digits ---------------------------------------------------------------------
def test_digits_scale_grey_levels_honestly_and_keep_labels():
    reference = load_digits()
    dm = DigitsDataModule("unused", batch_size=100, val_size=180, test_size=180)
    assert dm.dims == (1, 8, 8)
    assert dm.num_classes == 10
    pool = dm.load_pool()
    assert pool.images.shape == (1797, 1, 8, 8)
    assert pool.images.dtype == torch.uint8
    expected = np.rint(reference.images * 255 / 16)
    assert np.array_equal(pool.images[:, 0].numpy(), expected)
    assert np.array_equal(pool.labels.numpy(), reference.target)
    # 0 → 0, 16 → 255, and /255 recovers v/16 to within half a grey level
    assert pool.images.min() == 0
    assert pool.images.max() == 255
    recovered = pool.images[:, 0].double().numpy() / 255
    assert np.abs(recovered - reference.images / 16).max() <= 0.5 / 255 + 1e-12
    dm.setup("fit")
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [1437, 180, 180]
    together = sum((_frame_counts(s.images) for s in dm.splits.values()), Counter())
    assert together == _frame_counts(pool.images)


def test_digits_test_size_must_leave_training_data():
    dm = DigitsDataModule("unused", batch_size=10, val_size=10, test_size=1797)
    with pytest.raises(VaelabError, match="test_size"):
        dm.setup("fit")


# -- binarized MNIST ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grey_mnist(mnist_data_dir):
    from vaelab.data.mnist import MNISTDataModule

    dm = MNISTDataModule(str(mnist_data_dir), batch_size=1000, download=False)
    dm.setup("fit")
    return dm


def test_binarized_mnist_config_is_dynamic_mnist(make_config, mnist_data_dir):
    cfg = make_config("data=binarized_mnist", data_dir=mnist_data_dir)
    dm = instantiate(cfg.data)
    assert type(dm).__name__ == "MNISTDataModule"
    assert dm.binarize == "dynamic"
    assert dm.dims == (1, 28, 28)
    assert dm.num_classes == 10


def test_dynamic_binarization_draws_fresh_bits_with_the_grey_level_mean(
    make_config, mnist_data_dir
):
    dm = instantiate(make_config("data=binarized_mnist", data_dir=mnist_data_dir).data)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    first, _ = dm.on_after_batch_transfer(list(batch), 0)
    second, _ = dm.on_after_batch_transfer(list(batch), 0)
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(first, second)
    grey = batch[0].float() / PIXEL_MAX
    # E[bit] = grey level: 784k Bernoullis, standard error < 5e-4
    assert abs(first.mean() - grey.mean()) < 3e-3
    # pixels that are always 0 or 1 stay so
    assert (first[grey == 0] == 0).all()
    assert (first[grey == 1] == 1).all()


def test_static_binarization_is_one_fixed_seeded_sample(make_config, mnist_data_dir, grey_mnist):
    cfg = make_config("data=binarized_mnist", "data.binarize=static", data_dir=mnist_data_dir)
    first, again = instantiate(cfg.data), instantiate(cfg.data)
    first.setup("fit")
    again.setup("fit")
    bits = first.splits["train"].images
    assert torch.equal(bits, again.splits["train"].images)
    assert set(bits.unique().tolist()) == {0, PIXEL_MAX}
    grey = grey_mnist.splits["train"].images.float() / PIXEL_MAX
    assert abs(bits.float().mean() / PIXEL_MAX - grey.mean()) < 1e-3
    batch = next(iter(first.val_dataloader()))
    x1, _ = first.on_after_batch_transfer(list(batch), 0)
    x2, _ = first.on_after_batch_transfer(list(batch), 0)
    assert torch.equal(x1, x2)
