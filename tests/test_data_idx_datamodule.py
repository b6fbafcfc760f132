"""vaelab.data.idx_datamodule: MNIST / Fashion-MNIST read by torchvision's IDX reader, checked
against the IDX payload itself; truncated and swapped files are one clear error."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch

from vaelab.data.fashion_mnist import FashionMNISTDataModule
from vaelab.data.idx_datamodule import read_images, read_labels
from vaelab.data.mnist import MNISTDataModule
from vaelab.errors import VaelabError

# -- MNIST / Fashion-MNIST: torchvision's IDX reader ---------------------------------------------
IDX_IMAGE_HEADER_BYTES = 16  # magic number + 3 sizes, 4 bytes each
IDX_LABEL_HEADER_BYTES = 8  # magic number + 1 size
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"


def test_mnist_test_split_is_the_idx_payload(mnist_data_dir):
    raw = mnist_data_dir / "MNIST" / "raw"
    image_bytes = gzip.decompress((raw / f"{TEST_IMAGES}.gz").read_bytes())
    label_bytes = gzip.decompress((raw / f"{TEST_LABELS}.gz").read_bytes())
    expected_images = np.frombuffer(image_bytes, np.uint8, offset=IDX_IMAGE_HEADER_BYTES)
    expected_labels = np.frombuffer(label_bytes, np.uint8, offset=IDX_LABEL_HEADER_BYTES)
    split = MNISTDataModule(data_dir=str(mnist_data_dir), download=False).load_test()
    assert split.images.shape == (10_000, 1, 28, 28)
    assert split.images.dtype == torch.uint8
    assert np.array_equal(split.images.numpy().ravel(), expected_images)
    assert split.labels.dtype == torch.int64
    assert np.array_equal(split.labels.numpy(), expected_labels)
    # the plain (extracted) file reads the same as the .gz
    plain = mnist_data_dir.parent / "plain" / TEST_LABELS
    plain.parent.mkdir(exist_ok=True)
    plain.write_bytes(label_bytes)
    assert torch.equal(read_labels(plain), split.labels)


@pytest.fixture
def unchecked_folder(tmp_path, monkeypatch):
    """An extra search folder of Fashion-MNIST (like Debian's, whose files skip the md5 check)."""
    folder = tmp_path / "debian"
    folder.mkdir()
    monkeypatch.setattr(FashionMNISTDataModule, "extra_search_dirs", (str(folder),))
    return folder


def test_truncated_gz_outside_the_checked_folder_is_a_clear_error(
    mnist_data_dir, unchecked_folder, tmp_path
):
    for name in (TEST_IMAGES, TEST_LABELS):
        shutil.copy(mnist_data_dir / "MNIST" / "raw" / f"{name}.gz", unchecked_folder)
    images = unchecked_folder / f"{TEST_IMAGES}.gz"
    images.write_bytes(images.read_bytes()[:5000])
    datamodule = FashionMNISTDataModule(data_dir=str(tmp_path / "none"), download=False)
    with pytest.raises(VaelabError, match=rf"{TEST_IMAGES}.gz is corrupted .*download it again"):
        datamodule.load_test()


def test_labels_where_images_belong_are_named_as_such(mnist_data_dir, tmp_path):
    swapped = tmp_path / TEST_IMAGES
    swapped.write_bytes(
        gzip.decompress((mnist_data_dir / "MNIST/raw" / f"{TEST_LABELS}.gz").read_bytes())
    )
    with pytest.raises(
        VaelabError, match=r"does not hold uint8 images \[N, H, W\].*3 dimension instead of 1"
    ):
        read_images(swapped)
