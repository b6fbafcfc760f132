"""vaelab.api.run: ``vaelab.load`` and :class:`Run` on a short digits run — the model's
interface through the run, its data read lazily, its files — and the same one-line errors as
``vaelab-eval`` for what cannot be loaded. Slow: ``vaelab.train`` against a ``vaelab-train``
subprocess (identical metrics.json and weights) and ``Run.evaluate`` against ``vaelab-eval``."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import vaelab
from tests.conftest import FAST, SHORT_RUN_EPOCHS
from tests.entry_points import cli_error
from vaelab.checkpoints import load_checkpoint
from vaelab.paths import PROJECT_ROOT
from vaelab.run_files import CONFIG_FILE


@pytest.fixture(scope="module")
def digits(digits_run):
    """The session's short digits run, loaded."""
    run_dir, metrics, _ = digits_run
    return vaelab.load(run_dir), metrics


def test_load_gives_the_runs_files_config_and_metrics(digits, digits_run):
    run, metrics = digits
    run_dir = digits_run[0]
    assert run.path == run_dir.resolve()
    assert run.checkpoint in run.checkpoints
    assert {p.name for p in run.checkpoints} >= {"last.ckpt"}
    assert run.images
    assert all(p.suffix == ".png" and p.parent.name == "images" for p in run.images)
    assert run.events
    assert all(p.name.startswith("events.out.tfevents") for p in run.events)
    assert run.metrics == pytest.approx(metrics)
    assert run.config.data._target_.endswith("DigitsDataModule")
    assert run.epoch == SHORT_RUN_EPOCHS - 1
    assert not run.model.training
    weights = load_checkpoint(run.checkpoint)["state_dict"]
    for name, value in run.model.state_dict().items():
        torch.testing.assert_close(value, weights[f"model.{name}"], rtol=0, atol=0)


def test_the_run_answers_through_the_models_interface(digits):
    run, _ = digits
    x, y = run.batch("test", 8)
    assert x.shape == (8, *run.datamodule.dims)
    assert x.shape[0] == y.shape[0] == 8
    assert x.min() >= 0
    assert x.max() <= 1
    q = run.encode(x)
    assert q.batch_shape == (8,)
    torch.testing.assert_close(q.mean, run.model.encode(x).mean)
    means = run.decode(q.mean).mean
    assert means.shape == x.shape
    torch.testing.assert_close(run.reconstruct(x), means)
    assert not q.mean.requires_grad
    # a generator draws the same pictures again and leaves the global RNG alone
    state = torch.get_rng_state()
    first = run.sample(5, torch.Generator().manual_seed(3))
    again = run.sample(5, torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert first.shape == (5, *x.shape[1:])
    # the latent codes of a split are its examples' q(z|x) in loader order
    codes = run.latent_codes("test", limit=8)
    torch.testing.assert_close(codes.mean, q.mean)
    torch.testing.assert_close(codes.stddev, q.stddev)
    assert torch.equal(codes.labels, y)
    more = run.batch("train", run.datamodule.batch_size + 3)  # beyond one loader batch
    assert len(more.x) == len(more.y) == run.datamodule.batch_size + 3
    everything = run.latent_codes("val")
    assert len(everything) == len(run.datamodule.splits["val"])
    with pytest.raises(vaelab.VaelabError, match="use one of train, val, test"):
        run.latent_codes("validation")


def test_the_data_are_read_when_first_used(digits_run, monkeypatch):
    reads = []
    import vaelab.data.digits as digits_module

    real = digits_module.load_digits
    monkeypatch.setattr(digits_module, "load_digits", lambda: reads.append(1) or real())
    run = vaelab.load(digits_run[0])
    assert reads == []
    run.batch("train", 4)
    run.batch("test", 4)
    assert reads == [1]


# -- what cannot be loaded: vaelab-eval's errors, raised ---------------------------------------
def _copy_of_run(run_dir: Path, target: Path) -> Path:
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("events.out.*", "images"))
    return target


def _same_error_as_vaelab_eval(path: Path, monkeypatch, capsys) -> str:
    from vaelab.eval import main

    with pytest.raises(vaelab.VaelabError) as raised:
        vaelab.load(path)
    assert "\n" not in str(raised.value)
    assert str(raised.value) == cli_error(
        main, ["vaelab-eval", f"ckpt_path={path}"], monkeypatch, capsys
    )
    return str(raised.value)


def test_a_folder_without_a_run_is_vaelab_evals_error(tmp_path, monkeypatch, capsys):
    message = _same_error_as_vaelab_eval(tmp_path, monkeypatch, capsys)
    assert "has no checkpoints/ folder" in message


def test_random_bytes_are_vaelab_evals_error(digits_run, tmp_path, monkeypatch, capsys):
    run_dir = _copy_of_run(digits_run[0], tmp_path / "run")
    checkpoint = run_dir / "checkpoints" / "random.ckpt"
    checkpoint.write_bytes(os.urandom(4096))
    message = _same_error_as_vaelab_eval(checkpoint, monkeypatch, capsys)
    assert f"refused to load {checkpoint}: it is not a valid" in message


def test_a_checkpoint_of_another_config_is_vaelab_evals_error(
    digits_run, tmp_path, monkeypatch, capsys
):
    run_dir = _copy_of_run(digits_run[0], tmp_path / "run")
    config = OmegaConf.load(run_dir / CONFIG_FILE)
    config.model.latent_dim = config.model.latent_dim + 3
    (run_dir / CONFIG_FILE).write_text(OmegaConf.to_yaml(config))
    message = _same_error_as_vaelab_eval(run_dir, monkeypatch, capsys)
    assert "was written by a different model or config" in message
    assert "has shape" in message


# -- slow: the API and the command lines give the same runs and numbers ------------------------
TRAIN_OVERRIDES = [
    *FAST,
    "data=digits",
    "seed=7",
    "threads=1",
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
    "callbacks.image_logger.every_n_epochs=5",
]


def _vaelab(program: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", f"vaelab.{program}", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        check=False,
        timeout=600,
    )


def _layout(run_dir: Path) -> set[str]:
    """The run dir's files, TensorBoard's (named after host, process and time) as one name."""
    return {
        "events" if path.name.startswith("events.out.") else path.relative_to(run_dir).as_posix()
        for path in run_dir.rglob("*")
        if path.is_file()
    }


@pytest.fixture(scope="module")
def trained_both_ways(tmp_path_factory):
    """The same overrides trained by ``vaelab.train`` and by ``vaelab-train``."""
    root = tmp_path_factory.mktemp("api_vs_cli")
    run = vaelab.train(*TRAIN_OVERRIDES, output_dir=root / "api")
    done = _vaelab("train", *TRAIN_OVERRIDES, f"hydra.run.dir={root / 'cli'}")
    assert done.returncode == 0, done.stderr[-2000:]
    return run, root / "cli"


@pytest.mark.slow
def test_train_equals_vaelab_train(trained_both_ways):
    run, cli_dir = trained_both_ways
    api_metrics = json.loads((run.path / "metrics.json").read_text())
    assert api_metrics == json.loads((cli_dir / "metrics.json").read_text())
    assert run.metrics == api_metrics
    assert "test/elbo" in api_metrics
    names = sorted(p.name for p in (run.path / "checkpoints").glob("*.ckpt"))
    assert names == sorted(p.name for p in (cli_dir / "checkpoints").glob("*.ckpt"))
    for name in names:
        ours = load_checkpoint(run.path / "checkpoints" / name)
        theirs = load_checkpoint(cli_dir / "checkpoints" / name)
        assert ours["global_step"] == theirs["global_step"]
        assert ours["state_dict"].keys() == theirs["state_dict"].keys()
        for key, value in ours["state_dict"].items():
            assert torch.equal(value, theirs["state_dict"][key]), (name, key)
    # the same run dir layout: Hydra's files, the log named after the job, the config, …
    assert _layout(run.path) == _layout(cli_dir)
    assert {".hydra/overrides.yaml", "train.log", "config.yaml"} <= _layout(run.path)
    assert (run.path / ".hydra/overrides.yaml").read_text() == (
        cli_dir / ".hydra/overrides.yaml"
    ).read_text()
    # a finished run dir is skipped, as by vaelab-train, with the same metrics
    assert vaelab.train(*TRAIN_OVERRIDES, output_dir=run.path).metrics == api_metrics


@pytest.mark.slow
def test_evaluate_equals_vaelab_eval(trained_both_ways, tmp_path):
    run, _ = trained_both_ways
    options = {"num_samples": 32, "chunk_size": 16, "limit_batches": 2, "figures": False}
    ours = run.evaluate(**options, tensorboard=False, print_summary=False)
    done = _vaelab(
        "eval",
        f"ckpt_path={run.checkpoint}",
        *(f"eval.{key}={str(value).lower()}" for key, value in options.items()),
        "eval.tensorboard=false",
        "eval.device=cpu",
        f"output_dir={tmp_path}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads((tmp_path / "metrics.json").read_text())
    timing = {"wall_seconds", "iw_seconds", "iw_samples_per_second", "metrics_file"}
    assert ours.keys() == theirs.keys()
    for key in ours.keys() - timing:
        value = ours[key]
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(theirs[key]), key
        else:
            assert value == theirs[key], key
    assert math.isfinite(ours["iw_nll"])
    assert ours["metrics_file"] == str(run.path / "eval" / "metrics.json")
