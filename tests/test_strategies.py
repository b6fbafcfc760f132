"""vaelab.strategies, trainer=ddp_cpu: two gloo processes train like one process with the same
global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from vaelab.builders import build_module
from vaelab.data.mnist import MNISTDataModule
from vaelab.paths import PROJECT_ROOT
from vaelab.train import METRICS_FILE, RESOLVED_CONFIG_FILE

# two gloo processes per test
pytestmark = pytest.mark.slow

VAELAB_TRAIN = Path(sys.executable).parent / "vaelab-train"
PER_DEVICE_BATCH = 50
STEPS = 10
VAL_BATCHES_PER_RANK = 2
EVAL_BATCH = 500
#: nats: the spread of the one-process val ELBO over seeds 7, 8, 9 after these 10 steps
ELBO_TOLERANCE = 6.0
#: the runs' common settings; val/test batches are counted per rank
COMMON = [
    "print_config=false",
    "callbacks.progress_bar=null",
    "data.download=false",
    "trainer.enable_model_summary=false",
    "data.shuffle=false",
    "model.latent_dim=10",
    "seed=7",
    "trainer.max_epochs=1",
    f"trainer.limit_train_batches={STEPS}",
    f"data.eval_batch_size={EVAL_BATCH}",
    "trainer.limit_test_batches=1",
    "trainer.log_every_n_steps=5",
    "callbacks.image_logger=null",
]


class ParameterDigest(L.Callback):
    """Test probe: each rank writes the sum of |θ| of its final weights to ``<dir>/rank<r>``."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer, pl_module) -> None:
        digest = sum(p.detach().double().abs().sum().item() for p in pl_module.parameters())
        (self.dirpath / f"rank{trainer.global_rank}").write_text(repr(digest))


def _ddp_run(run_dir: Path, data_dir: Path, *extra: str) -> dict[str, float]:
    """``vaelab-train trainer=ddp_cpu`` in a subprocess (Lightning re-launches it for rank 1)."""
    args = [
        str(VAELAB_TRAIN),
        "trainer=ddp_cpu",
        *COMMON,
        f"paths.data_dir={data_dir}",
        f"data.batch_size={PER_DEVICE_BATCH}",
        f"trainer.limit_val_batches={VAL_BATCHES_PER_RANK}",
        f"hydra.run.dir={run_dir}",
        f"+callbacks.digest._target_={__name__}.ParameterDigest",
        f"+callbacks.digest.dirpath={run_dir}",
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        args, capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((run_dir / METRICS_FILE).read_text())


def _one_process_run(make_config, data_dir: Path, name: str, *extra: str) -> dict[str, float]:
    """The same training on one process with the DDP run's global batch."""
    from vaelab.train import train

    cfg = make_config(
        *COMMON[3:],
        f"data.batch_size={2 * PER_DEVICE_BATCH}",
        f"trainer.limit_val_batches={2 * VAL_BATCHES_PER_RANK}",
        *extra,
        data_dir=data_dir,
        name=name,
    )
    return train(cfg)


@pytest.fixture(scope="module")
def ddp_run(mnist_data_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ddp") / "run"
    return run_dir, _ddp_run(run_dir, mnist_data_dir)


def test_ddp_cpu_matches_one_process_with_the_same_global_batch(
    ddp_run, make_config, mnist_data_dir
):
    _run_dir, ddp = ddp_run
    single = _one_process_run(make_config, mnist_data_dir, "single")
    # same data in the same global batches, same initial weights; only the reparameterisation
    # noise differs (each rank draws its own ε). Seeds 7, 8, 9 of the one-process run spread
    # over 6 nats at this point; the two runs must agree to within that
    assert ddp["val/elbo"] == pytest.approx(single["val/elbo"], abs=ELBO_TOLERANCE)
    assert ddp["val/elbo"] > -400  # and it trained: an untrained decoder scores ≈ −545
    assert abs(ddp["val/elbo"] + ddp["val/recon"] + ddp["val/kl"]) < 1e-3


def test_the_ranks_end_with_identical_weights(ddp_run):
    """DDP all-reduces gradients: both ranks, each on its own half of every batch, take the
    same optimizer steps. (Without the sync their weights would differ.)"""
    run_dir, _ = ddp_run
    digests = [float((run_dir / f"rank{rank}").read_text()) for rank in range(2)]
    assert digests[0] == digests[1]


def test_ddp_checkpoint_loads_and_scores_like_the_logged_val_elbo(ddp_run, mnist_data_dir):
    run_dir, ddp = ddp_run
    cfg = OmegaConf.load(run_dir / RESOLVED_CONFIG_FILE)
    datamodule = MNISTDataModule(str(mnist_data_dir), download=False)
    datamodule.setup()
    model = build_module(cfg, datamodule.dims)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    assert checkpoint["global_step"] == STEPS
    # the synced val/elbo is the mean over both ranks' shards: the first 2 × 2 × 500 images
    val = datamodule.splits["val"].images[: 2 * VAL_BATCHES_PER_RANK * EVAL_BATCH].float() / 255
    torch.manual_seed(0)
    with torch.no_grad():
        elbo = model(val).bound.mean().item()
    assert elbo == pytest.approx(ddp["val/elbo"], abs=0.5)


def test_ddp_on_device_shards_give_the_one_process_batches(make_config, mnist_data_dir, tmp_path):
    """Shuffled, device-resident data: rank r takes positions r, r + 2, … of the epoch's
    permutation, so both ranks' batches together are the one-process batch."""
    ddp = _ddp_run(
        tmp_path / "ddp_on_device", mnist_data_dir, "data.on_device=true", "data.shuffle=true"
    )
    single = _one_process_run(
        make_config, mnist_data_dir, "single_on_device", "data.on_device=true", "data.shuffle=true"
    )
    assert ddp["val/elbo"] == pytest.approx(single["val/elbo"], abs=ELBO_TOLERANCE)
