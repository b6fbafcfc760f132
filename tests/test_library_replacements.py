"""Configs and readers that now use a library class instead of vaelab's own code, checked
against what the replaced code did (formulas written out here, not the deleted code)."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import compose_config
from vaelab.callbacks.throughput import IMAGES_SEEN, logged_rate, logged_scalars
from vaelab.data.fashion_mnist import FashionMNISTDataModule
from vaelab.data.idx_datamodule import read_images, read_labels
from vaelab.data.mnist import MNISTDataModule
from vaelab.errors import VaelabError
from vaelab.train import train

# -- lr_scheduler=burda: torch's MultiStepLR ----------------------------------------------------
BURDA_LR = 1e-3
BURDA_STAGES = 8
BURDA_EPOCHS = sum(3**i for i in range(BURDA_STAGES))


def burda_rate(epoch: int) -> float:
    """Burda et al. (2015, §5): 3^i epochs at lr₀·10^(−i/7), i = 0 … 7; the last rate is kept."""
    stage, stage_end = 0, 1
    while epoch >= stage_end and stage < BURDA_STAGES - 1:
        stage += 1
        stage_end += 3**stage
    return BURDA_LR * 10 ** (-stage / 7)


def test_burda_rate_formula_has_the_papers_stage_lengths():
    rates = [burda_rate(e) for e in range(BURDA_EPOCHS + 10)]
    lengths = [rates.count(BURDA_LR * 10 ** (-i / 7)) for i in range(BURDA_STAGES)]
    assert lengths[:-1] == [3**i for i in range(BURDA_STAGES - 1)]
    assert lengths[-1] == 3 ** (BURDA_STAGES - 1) + 10  # the last rate is kept after 3280
    assert BURDA_EPOCHS == 3280
    assert rates[-1] == pytest.approx(BURDA_LR / 10, rel=1e-12)


def test_burda_yaml_gives_the_papers_rate_every_epoch(tmp_path):
    cfg = compose_config(
        ["lr_scheduler=burda", f"optimizer.lr={BURDA_LR}", "optimizer=adam"], tmp_path
    )
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = instantiate(cfg.optimizer)(params=[parameter])
    scheduler = instantiate(cfg.lr_scheduler)(optimizer=optimizer)
    rates = []
    for _ in range(BURDA_EPOCHS + 5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()  # once per epoch, as optimizer_config's interval "epoch" steps it
    expected = [burda_rate(e) for e in range(len(rates))]
    assert rates == pytest.approx(expected, rel=1e-12)


# -- +callbacks.throughput: Lightning's ThroughputMonitor --------------------------------------
DIGITS_TRAIN_IMAGES = 1797 - 180 - 180  # conf/data/digits.yaml: val_size and test_size 180
DIGITS_BATCH = 100


def test_throughput_callback_counts_images_and_logs_a_rate(make_config):
    cfg = make_config(
        "data=digits",
        f"data.batch_size={DIGITS_BATCH}",
        "trainer.max_epochs=1",
        "test=false",
        "callbacks.image_logger=null",
        "trainer.log_every_n_steps=5",
        "+callbacks.throughput._target_=vaelab.callbacks.throughput.TrainThroughput",
        "+callbacks.throughput.window_size=4",
    )
    train(cfg)
    run_dir = cfg.paths.output_dir
    # 15 batches (the last of 37 images), logged at steps 5, 10 and 15: images are counted,
    # not (x, y) pairs
    seen = logged_scalars(run_dir, IMAGES_SEEN)
    assert seen == [5 * DIGITS_BATCH, 10 * DIGITS_BATCH, DIGITS_TRAIN_IMAGES]
    rate = logged_rate(run_dir)
    assert rate is not None
    assert rate > 0


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
