"""vaelab.eval (vaelab-eval) end to end on checkpoints of short real MNIST runs: its metrics,
pictures and TensorBoard output, checkpoint safety, and, read from the same runs, the epoch-0
encoding snapshot and the TensorBoard HPARAMS record."""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from tests.conftest import FAST, compose_config, eval_config
from vaelab.builders import build_module
from vaelab.cli import run_reporting_errors
from vaelab.errors import VaelabError
from vaelab.eval import evaluate
from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
from vaelab.evaluation.encodings import encode_split, load_encodings
from vaelab.evaluation.iw_nll import importance_weighted_log_likelihood
from vaelab.evaluation.learning_curves import tensorboard_dir
from vaelab.train import train

# every test here evaluates MNIST runs trained once per module (tens of seconds)
pytestmark = pytest.mark.slow

FIGURE_PIXELS = {  # figsize × dpi of each matplotlib figure in vaelab.plots.figures
    "latent_manifold": (800, 800),
    "latent_scatter": (900, 600),
    "learning_curves": (1500, 450),
    "before_after": (1500, 600),
}
METRIC_KEYS = {
    "elbo",
    "recon",
    "kl",
    "kl_per_dim",
    "iw_nll",
    "iw_nll_stderr",
    "bits_per_dim",
    "bits_per_dim_elbo",
    "active_units",
    "posterior_mean_variance",
    "exact_nll",
    "num_points",
    "num_importance_samples",
    "likelihood_is_continuous",
    "notes",
    "figures",
    "checkpoint",
    "global_step",
    "iw_samples_per_second",
}
SNAPSHOT_POINTS = 300
STEPS_PER_EPOCH = 70


def _train(mnist_data_dir: Path, run_dir: Path, *overrides: str) -> Path:
    cfg = compose_config(
        [
            *FAST,
            f"paths.data_dir={mnist_data_dir}",
            "callbacks.image_logger=null",
            f"callbacks.encoding_snapshot.num_points={SNAPSHOT_POINTS}",
            "trainer.limit_val_batches=2",
            "trainer.limit_test_batches=1",
            "data.eval_batch_size=500",
            "trainer.log_every_n_steps=25",
            *overrides,
        ],
        run_dir,
    )
    train(cfg)
    return run_dir


@pytest.fixture(scope="module")
def run_2d(mnist_data_dir, tmp_path_factory) -> Path:
    """210 optimiser steps (3 epochs × 70 batches) of the lecture VAE (latent_dim = 2)."""
    return _train(
        mnist_data_dir,
        tmp_path_factory.mktemp("eval2d") / "run",
        "trainer.max_epochs=3",
        f"trainer.limit_train_batches={STEPS_PER_EPOCH}",
    )


@pytest.fixture(scope="module")
def run_5d(mnist_data_dir, tmp_path_factory) -> Path:
    """A short latent_dim = 5 run (traversals instead of the 2-D manifold)."""
    return _train(
        mnist_data_dir,
        tmp_path_factory.mktemp("eval5d") / "run",
        "model.latent_dim=5",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=40",
    )


def _png_size(path: str | Path) -> tuple[int, int]:
    assert Path(path).stat().st_size > 1000, f"{path} is (nearly) empty"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


@pytest.fixture(scope="module")
def evaluated_2d(run_2d, mnist_data_dir) -> dict:
    return evaluate(eval_config(run_2d, mnist_data_dir))


@pytest.mark.usefixtures("evaluated_2d")
def test_metrics_json_has_every_key_and_consistent_numbers(run_2d):
    saved = json.loads((run_2d / "eval" / "metrics.json").read_text())
    assert set(saved) >= METRIC_KEYS, METRIC_KEYS - set(saved)
    assert saved["num_points"] == 500
    assert saved["num_importance_samples"] == 64
    # the IW estimate closes part of the ELBO's gap: IW-NLL ≤ −ELBO
    assert saved["iw_nll"] < -saved["elbo"]
    assert 0.0 < -saved["elbo"] - saved["iw_nll"] < 10.0
    assert saved["elbo"] == pytest.approx(-(saved["recon"] + saved["kl"]))
    assert sum(saved["kl_per_dim"]) == pytest.approx(saved["kl"], rel=1e-6)
    assert saved["bits_per_dim"] == pytest.approx(saved["iw_nll"] / (784 * math.log(2)))
    assert 90.0 < saved["iw_nll"] < 250.0  # a trained, not a random, decoder (≈ 543 nats)
    assert saved["active_units"] in (1, 2)
    assert len(saved["posterior_mean_variance"]) == 2
    assert saved["exact_nll"] is None
    assert saved["likelihood_is_continuous"] is False
    assert "grey levels" in saved["notes"]["bits_per_dim"]
    assert Path(saved["checkpoint"]).parent.name == "checkpoints"


def test_every_picture_is_a_png_of_the_right_size(run_2d, evaluated_2d):
    figures = evaluated_2d["figures"]
    upscaled = 3 * 28  # 28-px digits upscaled ×3 for a slide
    expected = {
        # 8 digits per row, padding 6 (2 px × 3)
        "prior_samples": (8 * (upscaled + 6) + 6,) * 2,
        **FIGURE_PIXELS,
    }
    assert set(figures) == {*expected, "reconstructions"}, evaluated_2d["figures_skipped"]
    for name, size in expected.items():
        assert Path(figures[name]) == run_2d / "eval" / f"{name}.png"
        assert _png_size(figures[name]) == size, name
    # two blocks of 8 input/reconstruction pairs (padding 4), a label column on the left
    width, height = _png_size(figures["reconstructions"])
    assert height == 4 * (upscaled + 2 * 4)
    assert width > 8 * (upscaled + 4) + 4
    assert "latent_traversals" in evaluated_2d["figures_skipped"]


def test_scalars_and_images_reach_the_runs_tensorboard(run_2d, evaluated_2d):
    events = EventAccumulator(
        str(tensorboard_dir(run_2d)), size_guidance={"scalars": 0, "images": 0}
    )
    events.Reload()
    scalars = events.Tags()["scalars"]
    for name in ("iw_nll", "elbo", "kl", "recon", "bits_per_dim", "active_units"):
        [event] = events.Scalars(f"eval/{name}")
        assert event.value == pytest.approx(evaluated_2d[name], rel=1e-5)
        assert event.step == evaluated_2d["global_step"]  # the best epoch's checkpoint
        assert event.step % STEPS_PER_EPOCH == 0
        assert 0 < event.step <= 3 * STEPS_PER_EPOCH
    assert "val/elbo" in scalars  # training's own scalars are in the same run
    images = set(events.Tags()["images"])
    assert {f"eval/{name}" for name in evaluated_2d["figures"]} <= images


def test_hparams_tab_records_the_runs_parameters(run_2d):
    events = EventAccumulator(str(tensorboard_dir(run_2d)))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    session = HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    params = session.session_start_info.hparams
    assert params["model.latent_dim"].number_value == 2
    assert params["optimizer.lr"].number_value == pytest.approx(1e-3)
    assert params["likelihood"].string_value == "bernoulli"
    assert "trainer.max_epochs" in params
    assert "data.download" not in params
    # no experiment summary: TensorBoard builds the columns from every run's parameters and
    # scalars (one run's summary would decide them for all runs under --logdir)
    assert "_hparams_/experiment" not in content


def test_iw_nll_is_below_neg_elbo_and_non_increasing_in_k(run_2d, mnist_data_dir):
    run = load_run(
        locate_checkpoint(run_2d),
        torch.device("cpu"),
        {"data_dir": str(mnist_data_dir), "download": False},
    )
    images = next(iter(run.datamodule.test_dataloader()))[0][:200]
    x = images.float() / 255
    vae = run.module.model
    nll = {}
    for k in (1, 10, 100):
        torch.manual_seed(0)
        nll[k] = float(-importance_weighted_log_likelihood(vae, x, k, 50).log_likelihood.mean())
    with torch.no_grad():
        neg_elbo = float(-run.module(x).bound.mean())  # the training objective's ELBO
    assert nll[1] > nll[10] > nll[100]
    assert nll[100] < neg_elbo
    assert nll[1] == pytest.approx(neg_elbo, abs=2.0)  # k = 1 is a one-sample ELBO


def test_run_dir_resolves_to_the_best_checkpoint(run_2d):
    best = torch.load(run_2d / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]
    [best_path] = [s["best_model_path"] for s in best.values() if "best_model_path" in s]
    location = locate_checkpoint(run_2d)
    assert location.checkpoint == Path(best_path)
    assert location.checkpoint.name != "last.ckpt"
    assert location.run_dir == run_2d
    assert location.config == run_2d / "config.yaml"
    assert locate_checkpoint(run_2d / "checkpoints" / "last.ckpt").run_dir == run_2d


def test_snapshot_holds_the_untrained_encoders_codes(run_2d, mnist_data_dir):
    """The epoch-0 file equals the encodings of a freshly seeded, untrained model."""
    snapshot = load_encodings(run_2d / "encodings" / "epoch000.pt")
    assert snapshot.mean.shape == (SNAPSHOT_POINTS, 2)
    assert snapshot.global_step == 0
    cfg = compose_config([*FAST, f"paths.data_dir={mnist_data_dir}"], run_2d.parent / "fresh")
    L.seed_everything(cfg.seed)
    datamodule = instantiate(cfg.data)
    untrained = build_module(cfg, datamodule.dims).eval()
    datamodule.setup("fit")
    fresh = encode_split(untrained.model, datamodule, "test", SNAPSHOT_POINTS, torch.device("cpu"))
    torch.testing.assert_close(snapshot.mean, fresh.mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(snapshot.labels, fresh.labels)
    trained = load_run(
        locate_checkpoint(run_2d),
        torch.device("cpu"),
        {"data_dir": str(mnist_data_dir), "download": False},
    )
    after = encode_split(
        trained.module.model, trained.datamodule, "test", SNAPSHOT_POINTS, torch.device("cpu")
    )
    assert (after.mean - snapshot.mean).abs().mean() > 0.1  # training moved the codes


def test_latent_dim_5_gets_traversals_and_pca_scatter(run_5d, mnist_data_dir):
    metrics = evaluate(
        eval_config(
            run_5d / "checkpoints" / "last.ckpt",
            mnist_data_dir,
            "eval.limit_batches=1",
            "eval.tensorboard=false",
        )
    )
    figures = metrics["figures"]
    assert "latent_manifold" not in figures
    assert "latent_dim = 2" in metrics["figures_skipped"]["latent_manifold"]
    traversal_width = round(100 * (1.6 + 0.45 * 11))
    assert _png_size(figures["latent_traversals"]) == (traversal_width, round(100 * (1 + 0.45 * 5)))
    assert _png_size(figures["latent_scatter"]) == FIGURE_PIXELS["latent_scatter"]
    assert _png_size(figures["before_after"]) == FIGURE_PIXELS["before_after"]
    assert len(metrics["kl_per_dim"]) == 5
    assert 0 <= metrics["active_units"] <= 5


class WritesAMarker:
    """Unpickling this runs ``os.system("touch <marker>")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_is_refused_without_running_code(run_2d, tmp_path, capsys):
    run_dir = tmp_path / "stranger_run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(run_2d / "config.yaml", run_dir / "config.yaml")
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    marker = tmp_path / "code_ran"
    state = torch.load(run_2d / "checkpoints" / "last.ckpt", weights_only=True)
    torch.save({**state, "payload": WritesAMarker(marker)}, checkpoint)
    # the payload is live: an unsafe load would run it
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(WritesAMarker(proof)))
    assert proof.exists()

    cfg = eval_config(checkpoint, tmp_path)
    with pytest.raises(VaelabError, match=r"refused to load.*nothing in it was executed"):
        evaluate(cfg)
    with pytest.raises(SystemExit) as exit_info:
        run_reporting_errors(lambda: evaluate(cfg))
    assert exit_info.value.code == 1
    assert "vaelab: error: refused to load" in capsys.readouterr().err
    assert not marker.exists()


def test_missing_config_and_missing_path_are_clear_errors(run_2d, tmp_path):
    loose = tmp_path / "loose.ckpt"
    shutil.copy(run_2d / "checkpoints" / "last.ckpt", loose)
    with pytest.raises(VaelabError, match=r"no config\.yaml next to"):
        locate_checkpoint(loose)
    with pytest.raises(VaelabError, match="does not exist"):
        locate_checkpoint(tmp_path / "nope.ckpt")
    with pytest.raises(VaelabError, match="ckpt_path="):
        evaluate(eval_config("null", tmp_path))


def test_ppca_gets_its_exact_log_likelihood_next_to_the_estimate(mnist_data_dir, tmp_path):
    """PPCA's encoder is the exact posterior, so every importance weight equals p(x): the
    IW estimate must reproduce the closed-form log p(x) for any k."""
    run_dir = _train(
        mnist_data_dir,
        tmp_path / "ppca",
        "model=ppca",
        "model.latent_dim=2",
        "trainer.limit_train_batches=50",
    )
    metrics = evaluate(
        eval_config(
            run_dir,
            mnist_data_dir,
            "eval.num_samples=16",
            "eval.limit_batches=1",
            "eval.figures=false",
        )
    )
    assert metrics["exact_nll"] is not None
    assert metrics["likelihood_is_continuous"] is True
    assert metrics["iw_nll"] == pytest.approx(metrics["exact_nll"], abs=0.05)
    assert metrics["iw_nll_minus_exact"] == pytest.approx(0.0, abs=0.05)
    assert -metrics["elbo"] == pytest.approx(metrics["exact_nll"], abs=0.05)  # tight bound
    assert metrics["exact_bits_per_dim"] == pytest.approx(
        metrics["exact_nll"] / (784 * math.log(2))
    )
    assert "density" in metrics["notes"]["bits_per_dim"]


def test_checkpoint_of_another_model_is_refused_by_eval(run_2d, mnist_data_dir, tmp_path):
    """A run dir whose config says latent_dim = 3 next to a latent_dim = 2 checkpoint."""
    run_dir = tmp_path / "edited_run"
    (run_dir / "checkpoints").mkdir(parents=True)
    config = (run_2d / "config.yaml").read_text()
    assert "latent_dim: 2" in config
    (run_dir / "config.yaml").write_text(config.replace("latent_dim: 2", "latent_dim: 3"))
    shutil.copy(run_2d / "checkpoints" / "last.ckpt", run_dir / "checkpoints" / "last.ckpt")
    with pytest.raises(VaelabError, match=r"written by a different model or config.*shape"):
        evaluate(eval_config(run_dir / "checkpoints" / "last.ckpt", mnist_data_dir))
