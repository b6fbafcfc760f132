"""vaelab.data.cifar10: CIFAR-10's pickled batches (tiny files in the real format, read by
torchvision) plane by plane; missing, corrupt and code-carrying batches are clear errors and never
unpickled."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10

from tests.datamodule_checks import batch_on_device
from vaelab.data.cifar10 import CIFAR10DataModule
from vaelab.data.image_datamodule import PIXEL_MAX
from vaelab.errors import VaelabError

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
    x, _ = batch_on_device(dm, "test")
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
