"""vaelab.data.image_datamodule: binarization (data=binarized_mnist is dynamic MNIST; dynamic draws
fresh bits with the grey level's mean; static is one fixed seeded sample)."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from vaelab.data.image_datamodule import PIXEL_MAX


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
