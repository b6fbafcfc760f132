"""The VQ-VAE's two stages as vaelab-train runs them: a fast_dev_run on digits, then on real
MNIST stage 1 (improving, and resumed 2 + 2 = 4 epochs exactly), stage 2 from its checkpoint
(resumed 1 + 1 = 2 epochs exactly, its learned prior beating the uniform one) and vaelab-eval
on the stage-2 run (bits/dim with the learned prior, samples of the data's shape)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from tests.conftest import FAST, compose_config
from vaelab.eval import evaluate
from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
from vaelab.paths import CONFIG_DIR
from vaelab.train import train

pytestmark = pytest.mark.slow

#: K and the 7×7 grid of MNIST in experiment=vqvae_mnist
NUM_CODES, GRID_POSITIONS = 64, 49
SMALL = [
    *FAST,
    "trainer.deterministic=true",
    "data.batch_size=32",
    "data.eval_batch_size=200",
    "trainer.limit_train_batches=8",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "callbacks.encoding_snapshot=null",
    "callbacks.image_logger.num_samples=4",
    "model.net.hidden=16",
    "model.net.residual_hidden=8",
    "optimizer.lr=2e-3",
]
STAGE2 = [
    "model.prior_net.channels=16",
    "model.prior_net.layers=3",
    "model.prior_net.kernel_size=3",
]


def _run(run_dir: Path, *overrides: str) -> dict[str, float]:
    return train(compose_config([*SMALL, *overrides], run_dir))


def _last(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.ckpt"


def test_stage1_fast_dev_run_on_digits(tmp_path):
    metrics = train(
        compose_config(
            [*FAST, "data=digits", "model=vqvae", "trainer.fast_dev_run=true"], tmp_path / "run"
        )
    )
    assert all(math.isfinite(v) for v in metrics.values())
    # the uniform prior over 64 codes on a 2×2 grid: KL = 4 log 64 exactly
    assert metrics["test/kl"] == pytest.approx(4 * math.log(64), rel=1e-6)
    assert metrics["test/elbo"] == pytest.approx(-(metrics["test/recon"] + metrics["test/kl"]))
    assert 1.0 <= metrics["test/perplexity"] <= 64


def _eval_config(ckpt_path: Path, data_dir: Path):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(
            "eval",
            overrides=[
                f"ckpt_path={ckpt_path}",
                f"data_dir={data_dir}",
                "eval.num_samples=4",
                "eval.chunk_size=4",
                "eval.elbo_samples=2",
                "eval.batch_size=100",
                "eval.limit_batches=2",
                "eval.tensorboard=false",
                "eval.pictures.num_prior_samples=4",
                "eval.pictures.scatter_points=200",
                "print_summary=false",
            ],
        )


def test_two_stages_on_mnist_improve_resume_exactly_and_sample(mnist_data_dir, tmp_path):
    data = f"paths.data_dir={mnist_data_dir}"
    stage1 = ["experiment=vqvae_mnist", data]
    two = _run(tmp_path / "s1_first", *stage1, "trainer.max_epochs=2")
    four = _run(tmp_path / "s1_straight", *stage1, "trainer.max_epochs=4")
    resumed = _run(
        tmp_path / "s1_resumed",
        *stage1,
        "trainer.max_epochs=4",
        f"ckpt_path={_last(tmp_path / 's1_first')}",
    )
    assert all(math.isfinite(v) for v in four.values())
    assert four["val/elbo"] > two["val/elbo"]  # training improves the bound
    assert four["val/recon"] < two["val/recon"]
    assert resumed["val/elbo"] == pytest.approx(four["val/elbo"], abs=1e-6, rel=0)
    straight_book = torch.load(_last(tmp_path / "s1_straight"), weights_only=True)["state_dict"]
    resumed_book = torch.load(_last(tmp_path / "s1_first"), weights_only=True)["state_dict"]
    for name in ("vectors", "ema_count", "ema_sum"):
        key = f"model.quantizer.{name}"
        assert torch.equal(resumed_book[key], straight_book[key]), key
    assert four["val/kl"] == pytest.approx(GRID_POSITIONS * math.log(NUM_CODES), rel=1e-6)

    stage2 = [
        "experiment=vqvae_prior_mnist",
        data,
        f"model.stage1_checkpoint={_last(tmp_path / 's1_straight')}",
        *STAGE2,
    ]
    prior_one = _run(tmp_path / "s2_first", *stage2, "trainer.max_epochs=1")
    prior_two = _run(tmp_path / "s2_straight", *stage2, "trainer.max_epochs=2")
    prior_resumed = _run(
        tmp_path / "s2_resumed",
        *stage2,
        "trainer.max_epochs=2",
        f"ckpt_path={_last(tmp_path / 's2_first')}",
    )
    assert prior_resumed["val/elbo"] == pytest.approx(prior_two["val/elbo"], abs=1e-6, rel=0)
    assert prior_two["val/kl"] < prior_one["val/kl"]
    # the learned prior's code length is shorter than the uniform prior's 49 log 64 nats
    assert prior_two["test/kl"] < four["test/kl"]
    assert prior_two["test/elbo"] > four["test/elbo"]

    run_dir = tmp_path / "s2_straight"
    metrics = evaluate(_eval_config(run_dir, mnist_data_dir))
    assert math.isfinite(metrics["bits_per_dim"])
    # a one-hot q: the IW estimate is the ELBO, −log p(x|z_q) − log p(k)
    assert metrics["iw_nll"] == pytest.approx(metrics["neg_elbo"], rel=1e-6)
    assert metrics["bits_per_dim"] == pytest.approx(metrics["iw_nll"] / (784 * math.log(2)))
    assert "prior_samples" in metrics["figures"]
    run = load_run(locate_checkpoint(run_dir), torch.device("cpu"))
    samples = run.module.model.sample(3)
    assert samples.shape == (3, *run.datamodule.dims)
    assert ((samples >= 0) & (samples <= 1)).all()
