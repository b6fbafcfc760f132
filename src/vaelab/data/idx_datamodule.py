"""Datamodules for datasets stored as four IDX files (MNIST, Fashion-MNIST), read with
torchvision's IDX reader."""

from __future__ import annotations

import gzip
import shutil
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor
from torchvision.datasets import VisionDataset
from torchvision.datasets.mnist import read_image_file, read_label_file
from torchvision.datasets.utils import check_integrity

from vaelab.data.image_datamodule import ImageDataModule, ImageSplit
from vaelab.errors import VaelabError, first_line
from vaelab.schema import checked_arguments

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
PAD_TO = 32
FIX = "delete it and download it again, or point VAELAB_DATA_DIR at an intact copy"


def _read_idx(path: Path, reader: Callable[[str], Tensor], holds: str) -> Tensor:
    """torchvision's ``reader`` on a plain or gzipped IDX file (it reads plain files only, so a
    .gz is decompressed to a temporary file first); every failure is one clear error."""
    with tempfile.TemporaryDirectory(prefix="vaelab_idx_") as scratch:
        plain = path
        if path.suffix == ".gz":
            plain = Path(scratch) / path.stem
            try:
                with gzip.open(path, "rb") as packed, plain.open("wb") as unpacked:
                    shutil.copyfileobj(packed, unpacked)
            except (OSError, EOFError, zlib.error) as err:
                raise VaelabError(f"{path} is corrupted ({err}); {FIX}") from err
        try:
            return reader(str(plain))
        except (AssertionError, KeyError) as err:  # the reader's checks of the magic number
            raise VaelabError(
                f"{path} is not an IDX file (bad magic number); replace it with the original "
                "MNIST/Fashion-MNIST file"
            ) from err
        except (RuntimeError, ValueError, TypeError) as err:
            raise VaelabError(
                f"{path} is truncated or corrupted, or does not hold {holds} (torchvision's "
                f"IDX reader: {err}); {FIX}"
            ) from err


def read_images(path: Path) -> Tensor:
    """The uint8 images [N, H, W] of an IDX image file (plain or .gz)."""
    return _read_idx(path, read_image_file, "uint8 images [N, H, W]")


def read_labels(path: Path) -> Tensor:
    """The int64 labels [N] of an IDX label file (plain or .gz)."""
    return _read_idx(path, read_label_file, "uint8 labels [N]")


@checked_arguments("data")
class IDXDataModule(ImageDataModule):
    """Finds the IDX files in ``<data_dir>/<folder>/raw`` (plain or ``.gz``) or in the extra
    search folders; if absent and ``download`` is true, torchvision downloads them.

    ``pad_to_32`` pads 28×28 images with zeros to 32×32 (seed 000's Fashion-MNIST).
    """

    image_shape = (1, 28, 28)
    num_classes = 10
    folder: str
    torchvision_class: type[VisionDataset]
    #: folders searched after ``<data_dir>/<folder>/raw`` (e.g. Debian's dataset packages)
    extra_search_dirs: tuple[str, ...] = ()

    def __init__(self, *args, pad_to_32: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pad_to_32 = bool(pad_to_32)

    @property
    def search_dirs(self) -> list[Path]:
        return [Path(self.data_dir) / self.folder / "raw", *map(Path, self.extra_search_dirs)]

    def _find(self, name: str) -> Path | None:
        for folder in self.search_dirs:
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
        return None

    def _md5_of(self, path: Path) -> str | None:
        """torchvision's md5 for a file of the official release, if it lists one."""
        for _url, md5 in getattr(self.torchvision_class, "resources", []):
            if Path(_url).name == path.name:
                return md5
        return None

    def _load(self, split: str) -> ImageSplit:
        names = SPLIT_FILES[split]
        paths = [self._find(n) for n in names]
        if None in paths and self.download:
            self._download(split)
            paths = [self._find(n) for n in names]
        if None in paths:
            raise VaelabError(self._missing_message(names))
        for path in paths:
            md5 = self._md5_of(path)
            if path.parent == self.search_dirs[0] and md5 and not check_integrity(str(path), md5):
                raise VaelabError(
                    f"{path} is corrupted (md5 differs from the official {md5}); {FIX}"
                )
        images, labels = read_images(paths[0]), read_labels(paths[1])
        if len(images) != len(labels):
            raise VaelabError(
                f"{paths[0]} holds {len(images)} images but {paths[1]} holds "
                f"{len(labels)} labels; the files are from different releases"
            )
        return ImageSplit(images.unsqueeze(1).contiguous(), labels)

    def _download(self, split: str) -> None:
        try:
            self.torchvision_class(self.data_dir, train=(split == "train"), download=True)
        except Exception as err:  # offline: URLError, socket errors, HTTP errors …
            raise VaelabError(self._missing_message(SPLIT_FILES[split], err)) from err

    def _missing_message(self, names: tuple[str, ...], err: Exception | None = None) -> str:
        where = ", ".join(str(d) for d in self.search_dirs)
        # torchvision's error spans several lines (one per mirror tried): keep its first
        reason = f" and downloading failed ({type(err).__name__}: {first_line(err)})" if err else ""
        return (
            f"{self.folder} data not found{reason}. Expected {' and '.join(names)} (plain or "
            f".gz) in {where}. Fix: set VAELAB_DATA_DIR to a folder that holds "
            f"{self.folder}/raw/ with these files, or connect to the network and keep "
            "data.download=true so torchvision downloads them."
        )

    def load_train(self) -> ImageSplit:
        return self._load("train")

    def load_test(self) -> ImageSplit:
        return self._load("test")

    def transform_images(self, images: Tensor) -> Tensor:
        if not self.pad_to_32:
            return images
        pad_h, pad_w = PAD_TO - images.shape[-2], PAD_TO - images.shape[-1]
        return F.pad(images, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
