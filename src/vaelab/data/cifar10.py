"""CIFAR-10 (Krizhevsky 2009): 50k train (split into train/val), 10k test, 3×32×32 colour."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10

from vaelab.data.image_datamodule import ImageDataModule, ImageSplit
from vaelab.errors import VaelabError

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10 from torchvision's layout, ``<data_dir>/cifar-10-batches-py``: five pickled
    training batches and one test batch, each a dict with ``data`` (uint8 [N, 3·32·32], the
    red, green and blue planes of each image in turn) and ``labels`` (N ints in 0..9).

    Read offline; if the folder is missing and ``download`` is true, torchvision downloads it.
    """

    image_shape = (3, 32, 32)
    num_classes = 10

    @property
    def folder(self) -> Path:
        return Path(self.data_dir) / FOLDER

    def _paths(self, names: tuple[str, ...]) -> list[Path]:
        paths = [self.folder / name for name in names]
        if not all(p.is_file() for p in paths) and self.download:
            self._download()
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise VaelabError(
                f"CIFAR-10 data not found: {', '.join(missing)} missing in {self.folder}. Fix: "
                f"set VAELAB_DATA_DIR to a folder that holds {FOLDER}/ (torchvision's "
                "extracted cifar-10-python.tar.gz), or keep data.download=true on a machine with "
                "network access."
            )
        return paths

    def _download(self) -> None:
        try:
            CIFAR10(self.data_dir, train=True, download=True)
        except Exception as err:  # offline: URLError, socket errors, HTTP errors …
            raise VaelabError(
                f"CIFAR-10 data not found in {self.folder} and downloading failed "
                f"({type(err).__name__}: {err}). Fix: point VAELAB_DATA_DIR at a folder that "
                f"holds {FOLDER}/ with data_batch_1..5 and test_batch."
            ) from err

    def _read_batch(self, path: Path) -> ImageSplit:
        def corrupt(problem: str) -> VaelabError:
            return VaelabError(
                f"{path} is not a CIFAR-10 batch ({problem}); delete {self.folder} "
                "and download it again, or point VAELAB_DATA_DIR at an intact copy"
            )

        try:
            with path.open("rb") as handle:
                entry = pickle.load(handle, encoding="latin1")
        except (
            OSError,
            EOFError,
            pickle.UnpicklingError,
            ValueError,
            TypeError,
            AttributeError,
            ImportError,
            IndexError,
        ) as err:
            raise corrupt(f"cannot be unpickled: {type(err).__name__}: {err}") from err
        if not isinstance(entry, dict) or "data" not in entry or "labels" not in entry:
            raise corrupt("expected a dict with 'data' and 'labels'")
        data, labels = np.asarray(entry["data"]), np.asarray(entry["labels"])
        pixels = int(np.prod(self.image_shape))
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != pixels:
            raise corrupt(f"'data' is {data.dtype} {data.shape}, expected uint8 (N, {pixels})")
        if labels.shape != (len(data),):
            raise corrupt(f"{len(labels)} labels for {len(data)} images")
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise corrupt(f"labels outside 0..{self.num_classes - 1}")
        images = torch.from_numpy(data.reshape(-1, *self.image_shape).copy())
        return ImageSplit(images, torch.from_numpy(labels.astype(np.int64)))

    def _read_all(self, names: tuple[str, ...]) -> ImageSplit:
        parts = [self._read_batch(p) for p in self._paths(names)]
        return ImageSplit(
            torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts])
        )

    def load_train(self) -> ImageSplit:
        return self._read_all(TRAIN_BATCHES)

    def load_test(self) -> ImageSplit:
        return self._read_all((TEST_BATCH,))
