"""vaelab.train, vaelab-train end to end: Hydra entry point, a short real MNIST run, TensorBoard
output, multirun, the offline missing-data error, a finished run dir skipped only for the run
that made it, a corrupt metrics.json set aside; runs survive interruption (an exact 2 + 2 =
4-epoch resume, sweeps that skip finished jobs, resume interrupted ones and isolate failures);
and the hierarchical VAE, the Ladder VAE and the conditional VAE trained by it (a fast_dev_run
on digits, a short real-MNIST run that improves, an exact 2 + 2 = 4-epoch resume)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import DETERMINISTIC, FAST, compose_config
from tests.signal_at_step import SIGNAL_CALLBACK, SIGNALLED_RUN_FAST, signalled_run_env
from tests.tiny_digits_run import digits_config
from vaelab.callbacks.image_logger import LATENT_MANIFOLD, PRIOR_SAMPLES, RECONSTRUCTIONS
from vaelab.errors import VaelabError
from vaelab.evaluation.learning_curves import tensorboard_dir
from vaelab.paths import CONFIG_DIR, PROJECT_ROOT
from vaelab.run_files import CONFIG_FILE
from vaelab.train import METRICS_FILE, RESOLVED_CONFIG_FILE, _finished_metrics, train

CLI_FAST = [
    "print_config=false",
    "callbacks.progress_bar=null",
    "data.download=false",
    "trainer.enable_model_summary=false",
]


def _cli(args: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env_extra or {})}
    env.pop("HYDRA_FULL_ERROR")
    return subprocess.run(
        [sys.executable, "-m", "vaelab.train", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=300,
    )


@pytest.fixture(scope="module")
def short_run(mnist_data_dir, tmp_path_factory):
    """~330 optimiser steps of the default (lecture) VAE on real MNIST."""
    from tests.conftest import FAST, compose_config

    run_dir = tmp_path_factory.mktemp("short") / "run"
    cfg = compose_config(
        [
            *FAST,
            f"paths.data_dir={mnist_data_dir}",
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=165",
            "trainer.limit_val_batches=5",
            "trainer.limit_test_batches=2",
            "trainer.log_every_n_steps=10",
        ],
        run_dir,
    )
    metrics = train(cfg)
    return run_dir, metrics


def test_short_real_run_learns(short_run):
    run_dir, metrics = short_run
    # an untrained decoder gives ≈ 540 nats (784 pixels × ln 2); trained, far below 200
    assert metrics["val/elbo"] > -200.0, metrics
    assert metrics["test/elbo"] > -200.0
    assert metrics["val/kl"] > 0.0
    assert metrics["val/recon"] > 0.0
    assert abs(metrics["val/elbo"] + metrics["val/recon"] + metrics["val/kl"]) < 1e-3
    saved = json.loads((run_dir / METRICS_FILE).read_text())
    assert saved["val/elbo"] == pytest.approx(metrics["val/elbo"])
    assert (run_dir / RESOLVED_CONFIG_FILE).is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_tensorboard_has_images_and_scalars(short_run):
    run_dir, _ = short_run
    events = EventAccumulator(str(tensorboard_dir(run_dir)), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    assert {RECONSTRUCTIONS, PRIOR_SAMPLES, LATENT_MANIFOLD} <= set(tags["images"])
    assert {"val/elbo", "val/kl", "val/recon", "train/loss", "beta"} <= set(tags["scalars"])
    first, last = events.Scalars("val/elbo")[0].value, events.Scalars("val/elbo")[-1].value
    assert last > first  # the bound improved between the two validation epochs
    manifold = events.Images(LATENT_MANIFOLD)[-1]
    assert (manifold.width, manifold.height) == (20 * 28, 20 * 28)
    assert sorted(p.name for p in (run_dir / "images").glob("*epoch001.png")) == [
        "latent_manifold_epoch001.png",
        "prior_samples_epoch001.png",
        "reconstructions_epoch001.png",
    ]


def test_cli_fast_dev_run_through_hydra_entry_point(mnist_data_dir, tmp_path):
    result = _cli(
        [
            *CLI_FAST,
            f"paths.data_dir={mnist_data_dir}",
            f"paths.log_dir={tmp_path}",
            "trainer.fast_dev_run=true",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dirs = list((tmp_path / "train" / "runs").iterdir())
    assert len(run_dirs) == 1
    assert "test/elbo" in json.loads((run_dirs[0] / METRICS_FILE).read_text())
    assert f"tensorboard --logdir {tmp_path}" in result.stdout


@pytest.mark.slow
def test_multirun_creates_one_run_dir_per_job(mnist_data_dir, tmp_path):
    sweep = tmp_path / "sweep"
    result = _cli(
        [
            "--multirun",
            "beta.value=0.5,1.0",
            *CLI_FAST,
            f"paths.data_dir={mnist_data_dir}",
            f"hydra.sweep.dir={sweep}",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=20",
            "trainer.limit_val_batches=2",
            "trainer.limit_test_batches=1",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    betas = []
    for job in jobs:
        assert "val/elbo" in json.loads((job / METRICS_FILE).read_text())
        betas.append((job / RESOLVED_CONFIG_FILE).read_text().split("beta:")[1].split("\n")[2])
    assert ["value: 0.5" in b for b in betas] == [True, False]


def test_default_run_dir_layout_is_under_logs(monkeypatch):
    monkeypatch.setenv("VAELAB_ROOT", str(PROJECT_ROOT))
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    assert cfg.hydra.run.dir.startswith(f"{PROJECT_ROOT}/logs/train/runs/20")
    assert cfg.hydra.sweep.dir.startswith(f"{PROJECT_ROOT}/logs/train/multiruns/20")
    raw = OmegaConf.to_container(cfg.hydra.sweep, resolve=False)
    assert raw["subdir"] == "${hydra.job.num}"


def test_missing_data_offline_gives_one_clear_error(tmp_path):
    empty = tmp_path / "empty_data"
    result = _cli([*CLI_FAST, f"paths.data_dir={empty}", f"paths.log_dir={tmp_path / 'logs'}"])
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("vaelab: error: MNIST data not found")
    assert str(empty / "MNIST" / "raw") in line
    assert "train-images-idx3-ubyte" in line
    assert "VAELAB_DATA_DIR" in line


def test_download_failure_is_reported_without_reaching_the_network(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    from vaelab.data.mnist import MNISTDataModule

    def offline_download(_mnist):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(MNIST, "download", offline_download)
    datamodule = MNISTDataModule(data_dir=str(tmp_path), download=True)
    with pytest.raises(VaelabError, match=r"downloading failed .*name resolution") as err:
        datamodule.setup()
    assert "connect to the network" in str(err.value)
    assert not any(Path(tmp_path).rglob("*.gz"))


def _finished_run(tmp_path, *overrides: str):
    cfg = compose_config([*FAST, "data=digits", *overrides], tmp_path / "run")
    run_dir = tmp_path / "run"
    (run_dir / CONFIG_FILE).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (run_dir / METRICS_FILE).write_text(json.dumps({"val/elbo": -30.0}))
    return run_dir


def test_the_same_run_is_skipped_with_its_metrics(tmp_path):
    _finished_run(tmp_path, "model.latent_dim=3")
    again = compose_config([*FAST, "data=digits", "model.latent_dim=3"], tmp_path / "run")
    assert _finished_metrics(again) == {"val/elbo": -30.0}


def test_another_run_in_a_finished_run_dir_is_refused_not_given_its_metrics(tmp_path):
    _finished_run(tmp_path, "model.latent_dim=3")
    other = compose_config([*FAST, "data=digits", "model.latent_dim=5"], tmp_path / "run")
    with pytest.raises(VaelabError, match=r"another config .*model\.latent_dim: 3 in the run, 5"):
        train(other)


# -- the hierarchical VAE, the Ladder VAE and the conditional VAE through vaelab-train ----------
#: every new option, with what it is trained with
OPTIONS = {
    "hierarchical_elbo": ["model=hierarchical_mlp"],
    "hierarchical_iwae": ["model=hierarchical_mlp", "objective=iwae", "objective.num_samples=5"],
    "ladder_warmup": ["model=ladder_mlp", "beta=linear_warmup", "beta.warmup_steps=20"],
    "cvae_mlp": ["model=cvae_mlp"],
    "cvae_conv": ["model=cvae_conv"],
}
IDS = list(OPTIONS)
#: the fast suite runs a fast_dev_run of these two (every code path of the new models: the
#: ladder is a hierarchy, cvae_conv the label planes and the class grid); the rest are slow
FAST_DEV_RUN = [
    option
    if option in ("ladder_warmup", "cvae_conv")
    else pytest.param(option, marks=pytest.mark.slow)
    for option in IDS
]


def _val_curve(run_dir: Path, name: str) -> list[float]:
    events = EventAccumulator(str(tensorboard_dir(run_dir)))
    events.Reload()
    return [event.value for event in events.Scalars(f"val/{name}")]


def _bound_name(overrides: list[str]) -> str:
    return "iwae_bound" if "objective=iwae" in overrides else "elbo"


@pytest.mark.parametrize("option", FAST_DEV_RUN)
def test_fast_dev_run_on_digits(option, tmp_path):
    overrides = OPTIONS[option]
    metrics = train(
        compose_config([*FAST, "data=digits", "trainer.fast_dev_run=true", *overrides], tmp_path)
    )
    assert all(math.isfinite(value) for value in metrics.values())
    bound = metrics[f"test/{_bound_name(overrides)}"]
    assert -8 * 8 * math.log(2) * 2 < bound < 0  # a log-probability of 64 grey pixels
    class_grids = list((tmp_path / "images").glob("class_conditional_samples_epoch*.png"))
    assert len(class_grids) == (1 if option.startswith("cvae") else 0)


@pytest.mark.slow
@pytest.mark.parametrize("option", IDS)
def test_short_mnist_run_improves(option, mnist_data_dir, tmp_path):
    overrides = OPTIONS[option]
    cfg = compose_config(
        [
            *FAST,
            f"paths.data_dir={mnist_data_dir}",
            "data=binarized_mnist",
            "data.batch_size=50",
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=40",
            "trainer.limit_val_batches=5",
            "trainer.limit_test_batches=5",
            "callbacks.image_logger.every_n_epochs=3",
            *overrides,
        ],
        tmp_path,
    )
    metrics = train(cfg)
    assert all(math.isfinite(value) for value in metrics.values())
    curve = _val_curve(tmp_path, _bound_name(overrides))
    assert len(curve) == 3
    # the bound the run optimises gains nats in 80 steps (hierarchies leave the ≈ 206-nat
    # plateau of the pixel-marginal model slowly: docs/experiments.md)
    assert max(curve[1:]) > curve[0] + 1, curve
    assert -250 < metrics["test/elbo"] < -100  # MNIST's ELBO range early in training


#: DETERMINISTIC on the digits: six steps an epoch
DIGITS_DETERMINISTIC = [
    *FAST,
    "data=digits",
    "data.binarize=dynamic",
    "trainer.deterministic=true",
    "trainer.limit_train_batches=6",
    "trainer.limit_val_batches=2",
    "trainer.log_every_n_steps=2",
    "test=false",
]


@pytest.mark.slow
@pytest.mark.parametrize("option", IDS)
def test_resume_after_two_epochs_reproduces_four(option, tmp_path):
    overrides = [*DIGITS_DETERMINISTIC, *OPTIONS[option]]
    straight = train(compose_config([*overrides, "trainer.max_epochs=4"], tmp_path / "straight"))
    train(compose_config([*overrides, "trainer.max_epochs=2"], tmp_path / "first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed = train(
        compose_config(
            [*overrides, "trainer.max_epochs=4", "resume=force", f"ckpt_path={last}"],
            tmp_path / "second",
        )
    )
    assert resumed["val/elbo"] == pytest.approx(straight["val/elbo"], abs=1e-6, rel=0)
    ends = [
        torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
        for run in (tmp_path / "straight", tmp_path / "first")  # the resumed run continues here
    ]
    assert ends == [4 * 6, 4 * 6]  # four epochs of six steps, both ways


TINY = ["trainer.limit_train_batches=15", "trainer.limit_val_batches=3", "trainer.test=false"]


def _beta_by_step(run_dir: Path) -> dict[int, float]:
    events = EventAccumulator(str(tensorboard_dir(run_dir)))
    events.Reload()
    return {e.step: e.value for e in events.Scalars("beta")}


def test_resume_after_two_epochs_reproduces_four_straight_epochs(mnist_data_dir, tmp_path):
    data = f"paths.data_dir={mnist_data_dir}"
    straight = train(
        compose_config([*DETERMINISTIC, data, "trainer.max_epochs=4"], tmp_path / "straight")
    )
    train(compose_config([*DETERMINISTIC, data, "trainer.max_epochs=2"], tmp_path / "first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert last.is_file()
    # a new Hydra run dir; the checkpoint brings the run back to its own folder
    resumed = train(
        compose_config(
            [*DETERMINISTIC, data, "trainer.max_epochs=4", "resume=force", f"ckpt_path={last}"],
            tmp_path / "second",
        )
    )
    assert resumed["val/elbo"] == pytest.approx(straight["val/elbo"], abs=1e-6, rel=0)
    assert straight["val/elbo"] > -400  # it did learn something
    assert not list((tmp_path / "second").glob("events.out.tfevents.*"))
    betas_straight = _beta_by_step(tmp_path / "straight")
    betas_resumed = _beta_by_step(tmp_path / "first")  # the same TensorBoard folder, continued
    assert len(betas_straight) == 12  # 60 steps, one point every 5
    assert betas_resumed == pytest.approx(betas_straight)


@pytest.mark.slow
def test_relaunched_sweep_skips_finished_resumes_interrupted_and_isolates_failure(
    mnist_data_dir, tmp_path
):
    sweep = tmp_path / "sweep"
    args = [
        sys.executable,
        "-m",
        "vaelab.train",
        "--multirun",
        *SIGNALLED_RUN_FAST,
        f"paths.data_dir={mnist_data_dir}",
        f"hydra.sweep.dir={sweep}",
        "optimizer.lr=1e-3,-1.0,2e-3",
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=40",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2",
    ]
    # the whole sweep dies (SIGKILL to its process group) at step 45 of job 2, which has
    # saved last.ckpt at the end of epoch 0 (step 40)
    killer = [
        SIGNAL_CALLBACK,
        "+callbacks.signal_at_step.step=45",
        "+callbacks.signal_at_step.signal_name=SIGKILL",
        "+callbacks.signal_at_step.to=group",
        "+callbacks.signal_at_step.only_in='2'",
    ]
    killed = subprocess.run(
        [*args, *killer],
        capture_output=True,
        text=True,
        env=signalled_run_env(),
        cwd=PROJECT_ROOT,
        start_new_session=True,
        timeout=400,
    )
    assert killed.returncode == -9, killed.stderr[-3000:]
    interrupted_ckpt = sweep / "2" / "checkpoints" / "last.ckpt"
    assert torch.load(interrupted_ckpt, weights_only=True)["global_step"] == 40
    assert (sweep / "0" / METRICS_FILE).is_file()
    assert (sweep / "1" / "error.txt").is_file()
    assert interrupted_ckpt.is_file()
    assert not (sweep / "2" / METRICS_FILE).exists()
    finished_before = (sweep / "0" / METRICS_FILE).stat().st_mtime_ns

    again = subprocess.run(
        args, capture_output=True, text=True, env=signalled_run_env(), cwd=PROJECT_ROOT, timeout=400
    )
    assert again.returncode == 1, again.stderr[-3000:]
    assert (sweep / "0" / METRICS_FILE).stat().st_mtime_ns == finished_before  # skipped
    assert "already finished" in again.stdout
    assert f"Resuming from {interrupted_ckpt}" in again.stdout
    assert "test/elbo" in json.loads((sweep / "2" / METRICS_FILE).read_text())
    error = (sweep / "1" / "error.txt").read_text()
    assert "optimizer.lr=-1.0 must be a number > 0" in error
    assert "1 job(s) of the sweep" in again.stderr
    assert "job 1: invalid config" in again.stderr


# -- corrupt files vaelab wrote earlier ------------------------------------------------------
def test_a_finished_run_with_torn_metrics_is_completed_without_training(tmp_path, capsys):
    """A full disk at the very end: the relaunch tests the best checkpoint, writes
    metrics.json and trains nothing (before: Lightning refused the finished checkpoint, or
    metrics.json lacked the validation metrics)."""
    run_dir = tmp_path / "run"
    first = train(digits_config(tmp_path))
    last = run_dir / "checkpoints" / "last.ckpt"
    last_bytes = last.read_bytes()
    (run_dir / METRICS_FILE).write_text('{"val/elbo": -12')  # cut short
    metrics = train(digits_config(tmp_path))
    err = capsys.readouterr().err
    assert "metrics.json is unreadable" in err
    assert "completing it without training" in err
    assert json.loads((run_dir / METRICS_FILE).read_text())["test/elbo"] == metrics["test/elbo"]
    assert (run_dir / "metrics.json.torn").read_text() == '{"val/elbo": -12'
    assert metrics["test/elbo"] == pytest.approx(first["test/elbo"])  # the same best checkpoint
    # the last weights validated again: a one-sample Monte Carlo ELBO of one batch, redrawn
    assert metrics["val/elbo"] == pytest.approx(first["val/elbo"], abs=1.0)
    assert last.read_bytes() == last_bytes  # nothing was trained


@pytest.mark.slow
def test_a_finished_run_without_metrics_json_is_completed_without_training(tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(digits_config(tmp_path))
    last_bytes = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    (run_dir / METRICS_FILE).unlink()  # a kill between the test and writing it
    again = train(digits_config(tmp_path))
    assert "completing it without training" in capsys.readouterr().err
    assert json.loads((run_dir / METRICS_FILE).read_text()) == pytest.approx(again)
    assert {"val/elbo", "test/elbo"} <= again.keys()
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == last_bytes
