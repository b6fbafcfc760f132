"""vaelab.evaluation.feature_extractors, the domain FID on real MNIST: a briefly trained feature
classifier (experiment=feature_classifier_mnist), its features' FID and precision/recall between
real, blurred and noise images, and vaelab-eval finding the stored classifier for an MNIST
run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torchvision.transforms.functional import gaussian_blur

from tests.conftest import FAST, compose_config
from vaelab.evaluation.feature_extractors import (
    CLASSIFIER_DIR,
    find_feature_classifier,
    load_classifier_features,
)
from vaelab.evaluation.fid import frechet_distance
from vaelab.evaluation.precision_recall import precision_recall
from vaelab.evaluation.sample_quality import extract_features
from vaelab.train import train

pytestmark = pytest.mark.slow

BLUR_SIGMAS = (1.0, 1.5, 2.0)
NUM_IMAGES = 2000


@pytest.fixture(scope="module")
def log_dir(mnist_data_dir, tmp_path_factory) -> Path:
    """A log dir holding a feature classifier (250 steps) and a short VAE run."""
    root = tmp_path_factory.mktemp("domain_fid")
    common = [*FAST, f"paths.data_dir={mnist_data_dir}", f"paths.log_dir={root}"]
    classifier = compose_config(
        [
            *common,
            "experiment=feature_classifier_mnist",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=250",
            "trainer.limit_val_batches=2",
            "trainer.limit_test_batches=1",
        ],
        root / CLASSIFIER_DIR / "mnist",
    )
    metrics = train(classifier)
    assert metrics["test/error"] < 0.15
    vae = compose_config(
        [
            *common,
            "callbacks.image_logger=null",
            "callbacks.encoding_snapshot=null",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=50",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
        ],
        root / "vae",
    )
    train(vae)
    return root


def _images(mnist_data_dir: Path, split: str, run_dir: Path) -> torch.Tensor:
    """The first images of ``split`` in [0, 1], as the model sees them."""
    cfg = compose_config([*FAST, f"paths.data_dir={mnist_data_dir}"], run_dir)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    images = datamodule.splits[split].images[:NUM_IMAGES]
    return datamodule.on_after_batch_transfer([images, torch.zeros(len(images))], 0)[0]


def test_domain_fid_and_precision_recall_on_mnist(log_dir, mnist_data_dir):
    run = find_feature_classifier(log_dir, "vaelab.data.mnist.MNISTDataModule")
    assert run == log_dir / CLASSIFIER_DIR / "mnist"
    extractor = load_classifier_features(run, torch.device("cpu"), (1, 28, 28))
    test = _images(mnist_data_dir, "test", log_dir / "data")
    train_images = _images(mnist_data_dir, "train", log_dir / "data")
    noise = torch.rand(test.shape, generator=torch.Generator().manual_seed(0))

    def features(images):
        return extract_features(extractor, images.split(500))

    real, other = features(test), features(train_images)
    same = frechet_distance(real, other)
    against_noise = frechet_distance(real, features(noise))
    blurred = [
        frechet_distance(real, features(gaussian_blur(train_images, 5, s))) for s in BLUR_SIGMAS
    ]
    assert same < 0.05 * against_noise
    assert same < blurred[0] < blurred[1] < blurred[2]
    real_vs_real = precision_recall(real, other)
    assert real_vs_real.precision > 0.85
    assert real_vs_real.recall > 0.85
    real_vs_noise = precision_recall(real, features(noise))
    # in the classifier's feature space some noise images land inside the large k-NN balls of
    # outlying digits (0.24 with the 2-epoch classifier of docs/experiments.md); recall is 0
    assert real_vs_noise.precision < 0.5 * real_vs_real.precision
    assert real_vs_noise.recall < 0.05


def test_vaelab_eval_computes_the_fid_of_an_mnist_run(log_dir, mnist_data_dir):
    from tests.conftest import eval_config
    from vaelab.eval import evaluate

    metrics = evaluate(
        eval_config(log_dir / "vae", mnist_data_dir, "eval.sample_quality.num_samples=1000")
    )
    saved = json.loads((log_dir / "vae" / "eval" / "metrics.json").read_text())
    assert saved["fid"] == pytest.approx(metrics["fid"])
    assert saved["fid"] > 0
    assert 0 <= saved["precision"] <= 1
    assert saved["sample_quality"]["num_generated"] == 1000
    assert "feature classifier" in saved["sample_quality"]["feature_space"]
    assert "ground-truth factors" in saved["metrics_skipped"]["disentanglement"]
