"""vaelab.baselines.closed_form: model=pca under trainer=ddp_cpu (two gloo processes, each with
half of the training split) fits the same components as one process and as numpy/scikit-learn on
the whole split."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from vaelab.data.digits import DigitsDataModule
from vaelab.data.image_datamodule import PIXEL_MAX
from vaelab.paths import PROJECT_ROOT
from vaelab.train import train

VAELAB_TRAIN = Path(sys.executable).parent / "vaelab-train"
COMPONENTS = 5
#: digits: 1797 − 181 − 180 = 1436 training images, split evenly over the two ranks (an odd
#: count would make the distributed sampler repeat one image on one rank)
VAL_SIZE = 181
TRAIN_IMAGES = 1436
SETTINGS = [
    "model=pca",
    f"model.latent_dim={COMPONENTS}",
    "data=digits",
    f"data.val_size={VAL_SIZE}",
    "test=false",
    "print_config=false",
    "callbacks.progress_bar=null",
    "callbacks.image_logger=null",
    "trainer.enable_progress_bar=false",
]


def _fitted(run_dir: Path) -> dict[str, np.ndarray]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    state = checkpoint["state_dict"]
    return {
        "mean": state["model.mean"].double().numpy(),
        "components": state["model.components"].double().numpy(),
        "fitted_on": float(state["model.fitted_on"]),
    }


def _training_pixels() -> np.ndarray:
    """The training split as the datamodule scales it (float32 in [0, 1]), [N, 64]."""
    datamodule = DigitsDataModule("unused", batch_size=100, val_size=VAL_SIZE, test_size=180)
    datamodule.setup("fit")
    images = datamodule.splits["train"].images.float() / PIXEL_MAX
    return images.flatten(start_dim=1).double().numpy()


def _same_directions(found: np.ndarray, reference: np.ndarray) -> None:
    """Unit columns equal up to each column's sign: |found_kᵀ reference_k| = 1."""
    overlap = np.abs(np.sum(found * reference, axis=0))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-8)


@pytest.mark.slow
def test_pca_under_ddp_fits_the_whole_training_split(make_config, tmp_path):
    ddp_dir = tmp_path / "ddp"
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [str(VAELAB_TRAIN), "trainer=ddp_cpu", *SETTINGS, f"hydra.run.dir={ddp_dir}"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=480,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = _fitted(ddp_dir)

    one_process_cfg = make_config(*SETTINGS, name="one_process")
    train(one_process_cfg)
    one = _fitted(Path(one_process_cfg.paths.output_dir))

    # each rank saw half of the images; the fit saw all of them
    assert ddp["fitted_on"] == one["fitted_on"] == TRAIN_IMAGES
    np.testing.assert_allclose(ddp["mean"], one["mean"], atol=1e-10)
    np.testing.assert_allclose(ddp["components"], one["components"], atol=1e-8)

    x = _training_pixels()
    assert len(x) == TRAIN_IMAGES
    np.testing.assert_allclose(ddp["mean"], x.mean(axis=0), atol=1e-10)
    variances, vectors = np.linalg.eigh(np.cov(x.T, bias=True))
    _same_directions(ddp["components"], vectors[:, ::-1][:, :COMPONENTS])
    _same_directions(ddp["components"], PCA(COMPONENTS).fit(x).components_.T)
    assert variances[-COMPONENTS - 1] < 0.99 * variances[-COMPONENTS]  # distinct directions
