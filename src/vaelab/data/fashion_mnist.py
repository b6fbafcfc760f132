"""Fashion-MNIST (Xiao et al. 2017): same format and sizes as MNIST, ten clothing classes."""

from __future__ import annotations

from torchvision.datasets import FashionMNIST

from vaelab.data.idx_datamodule import IDXDataModule

DEBIAN_DATASET_DIR = "/usr/share/datasets/fashion-mnist"


class FashionMNISTDataModule(IDXDataModule):
    """Fashion-MNIST from ``<data_dir>/FashionMNIST/raw`` or Debian's ``dataset-fashion-mnist``
    package (its files are recompressed, so they are read directly, not md5-checked)."""

    folder = "FashionMNIST"
    torchvision_class = FashionMNIST
    extra_search_dirs = (DEBIAN_DATASET_DIR,)
