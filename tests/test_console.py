"""The console around a run: a short config tree, silenced notices, runnable commands."""

from __future__ import annotations

import json
import logging
import shlex
import warnings
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vaelab.console import silence_known_notices, tensorboard_command
from vaelab.sweep_summary import SweepSummary
from vaelab.utils.config_tree import default_config, differences, print_run_config


def test_config_tree_shows_only_what_differs(make_config, capsys):
    cfg = make_config("data=digits", "model.latent_dim=5", "optimizer.lr=0.003")
    changed = differences(cfg, default_config())
    assert changed["model"] == {"latent_dim": 5}
    assert changed["optimizer"] == {"lr": 0.003}
    assert changed["data"]["_target_"] == "vaelab.data.digits.DigitsDataModule"
    assert "paths" not in changed
    assert "likelihood" not in changed
    # interpolated run paths are the same as written: not a difference
    assert "dirpath" not in changed.get("callbacks", {}).get("model_checkpoint", {})

    print_run_config(cfg, True)
    short = capsys.readouterr().out
    print_run_config(cfg, "full")
    full = capsys.readouterr().out
    assert "latent_dim: 5" in short
    assert "print_config=full" in short
    assert len(short.splitlines()) < len(full.splitlines()) / 3
    print_run_config(cfg, False)
    assert capsys.readouterr().out == ""


def test_tensorboard_command_runs_as_printed(tmp_path):
    program, flag, log_dir = shlex.split(tensorboard_command(tmp_path / "logs"))[-3:]
    assert Path(program).is_absolute() or program.endswith("tensorboard.main")
    assert flag == "--logdir"
    assert Path(log_dir) == (tmp_path / "logs").resolve()


def test_known_notices_are_silenced(caplog):
    silence_known_notices()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        silence_known_notices()  # after the reset above, as train() does at every start
        warnings.warn(
            "The `srun` command is available on your system but is not used.", stacklevel=1
        )
        warnings.warn("an unrelated warning", stacklevel=1)
    assert [str(w.message) for w in caught] == ["an unrelated warning"]

    summary = logging.getLogger("lightning.pytorch.callbacks.model_summary")
    tips = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO):
        tips.info("💡 Tip: For seamless cloud logging, try installing [litlogger](https://x)")
        summary.info("\n12.3 K    Trainable params\n0         Total Flops")
    assert "litlogger" not in caplog.text
    assert "Trainable params" in caplog.text
    assert "Total Flops" not in caplog.text


def _job(sweep_dir: Path, name: str, beta: float, elbo: float | None, error: str | None = None):
    job = sweep_dir / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(f"- beta.value={beta}\n- data=digits\n")
    (job / "config.yaml").write_text("optimized_metric: val/elbo\n")
    if elbo is not None:
        (job / "metrics.json").write_text(json.dumps({"val/elbo": elbo}))
    if error is not None:
        (job / "error.txt").write_text(f"{error}\n\nTraceback ...")


def test_sweep_summary_names_best_and_failed_jobs(tmp_path, capsys):
    sweep_dir = tmp_path / "multiruns" / "2026-01-01_00-00-00"
    _job(sweep_dir, "0", 0.5, -30.25)
    _job(sweep_dir, "1", 1.0, -27.5)
    _job(sweep_dir, "2", 4.0, None, error="data.batch_size=5000 is larger than the training split")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}})
    with pytest.raises(SystemExit) as exit_status:
        SweepSummary().on_multirun_end(config)
    assert exit_status.value.code == 1
    out, err = capsys.readouterr()
    assert f"Sweep finished: {sweep_dir.resolve()}" in out
    assert "3 jobs: 2 done, 1 failed" in out
    assert "best val/elbo (highest): -27.5 (job 1: beta.value=1.0)" in out
    report = next(line for line in out.splitlines() if "report:" in line).split()[-2:]
    assert report[0].endswith("vaelab-report")
    assert Path(report[1]) == sweep_dir.resolve()
    assert "job 2: data.batch_size=5000 is larger than the training split" in err
