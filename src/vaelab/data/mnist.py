"""MNIST (LeCun et al. 1998): 60k train (split into train/val), 10k test, 1×28×28."""

from __future__ import annotations

from torchvision.datasets import MNIST

from vaelab.data.idx_datamodule import IDXDataModule


class MNISTDataModule(IDXDataModule):
    """MNIST from ``<data_dir>/MNIST/raw`` (torchvision's layout)."""

    folder = "MNIST"
    torchvision_class = MNIST
