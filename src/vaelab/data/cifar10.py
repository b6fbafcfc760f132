"""CIFAR-10 (Krizhevsky 2009): 50k train (split into train/val), 10k test, 3×32×32 colour."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import check_integrity

from vaelab.data.image_datamodule import ImageDataModule, ImageSplit
from vaelab.errors import VaelabError


def release_files() -> dict[str, str]:
    """File name → md5 of every file in torchvision's ``cifar-10-batches-py`` folder."""
    listed = [*CIFAR10.train_list, *CIFAR10.test_list]
    return {**dict(listed), CIFAR10.meta["filename"]: CIFAR10.meta["md5"]}


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10 read by ``torchvision.datasets.CIFAR10(download=False)`` from its layout,
    ``<data_dir>/cifar-10-batches-py``. torchvision unpickles the batches only after each
    file's md5 matches the official release's, so no other file is ever unpickled.

    If the folder is missing and ``download`` is true, torchvision downloads it.
    """

    image_shape = (3, 32, 32)
    num_classes = 10

    @property
    def folder(self) -> Path:
        return Path(self.data_dir) / CIFAR10.base_folder

    def _check_present(self) -> None:
        missing = [name for name in release_files() if not (self.folder / name).is_file()]
        if missing and self.download:
            self._download()
            missing = [name for name in release_files() if not (self.folder / name).is_file()]
        if missing:
            raise VaelabError(
                f"CIFAR-10 data not found: {', '.join(missing)} missing in {self.folder}. Fix: "
                f"set VAELAB_DATA_DIR to a folder that holds {CIFAR10.base_folder}/ "
                "(torchvision's extracted cifar-10-python.tar.gz), or keep data.download=true "
                "on a machine with network access."
            )

    def _download(self) -> None:
        try:
            CIFAR10(self.data_dir, train=True, download=True)
        except Exception as err:  # offline: URLError, socket errors, HTTP errors …
            raise VaelabError(
                f"CIFAR-10 data not found in {self.folder} and downloading failed "
                f"({type(err).__name__}: {err}). Fix: point VAELAB_DATA_DIR at a folder that "
                f"holds {CIFAR10.base_folder}/ with data_batch_1..5, test_batch and batches.meta."
            ) from err

    def _read(self, train: bool) -> ImageSplit:
        self._check_present()
        try:
            dataset = CIFAR10(self.data_dir, train=train, download=False)
        except RuntimeError as err:  # torchvision's md5 check of the batches and batches.meta
            differing = [
                name
                for name, md5 in release_files().items()
                if not check_integrity(str(self.folder / name), md5)
            ]
            raise VaelabError(
                f"{', '.join(differing) or self.folder} in {self.folder}: not the official "
                f"CIFAR-10 release (md5 differs; torchvision: {err}), so it was not read. Fix: "
                f"delete {self.folder} and download it again, or point VAELAB_DATA_DIR at an "
                "intact copy."
            ) from err
        # torchvision holds the images as uint8 [N, H, W, C]
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
        return ImageSplit(images, torch.tensor(dataset.targets, dtype=torch.int64))

    def load_train(self) -> ImageSplit:
        return self._read(train=True)

    def load_test(self) -> ImageSplit:
        return self._read(train=False)
