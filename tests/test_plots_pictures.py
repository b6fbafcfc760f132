"""vaelab.plots.pictures: class names from the dataset for the pictures' labels, and the most
active latent dimensions traversed first."""

from __future__ import annotations

import torch

from vaelab.data.fashion_mnist import FashionMNISTDataModule
from vaelab.data.mnist import MNISTDataModule
from vaelab.plots.pictures import dataset_class_names, traversal_dims


def test_class_names_come_from_the_dataset():
    assert dataset_class_names(FashionMNISTDataModule)[:2] == ["T-shirt/top", "Trouser"]
    assert dataset_class_names(MNISTDataModule) == [str(d) for d in range(10)]
    assert dataset_class_names(object()) is None


def test_traversals_show_the_most_active_dimensions_first():
    activity = torch.tensor([0.0, 2.0, 0.001, 0.5, 1.0])
    assert traversal_dims(activity, 5, 3) == [1, 4, 3]
    assert traversal_dims(None, 32, 10) == list(range(10))
