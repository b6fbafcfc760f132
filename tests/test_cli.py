"""vaelab.cli: every error that reaches an entry point is one line (no traceback, no
HYDRA_FULL_ERROR hint), and the error handler never crashes on a full disk."""

from __future__ import annotations

import importlib
import logging
import math
import os
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from tests.tiny_digits_run import digits_config
from vaelab.atomic_io import DiskFullError
from vaelab.cli import run_reporting_errors
from vaelab.errors import VaelabError
from vaelab.train import train


def test_the_error_handler_never_crashes_on_a_full_disk(tmp_path, capsys, monkeypatch):
    def full(path, text):
        raise DiskFullError(Path(path), len(text), 0)

    monkeypatch.setattr("vaelab.cli.atomic_write_text", full)

    def fails():
        raise VaelabError("the user's mistake")

    with pytest.raises(SystemExit):
        run_reporting_errors(fails, tmp_path)
    err = capsys.readouterr().err
    assert "vaelab: could not write" in err
    assert "error.txt" in err
    assert "vaelab: error: the user's mistake" in err
    assert not (tmp_path / "error.txt").exists()


# -- errors that reach an entry point ----------------------------------------------------------
def _entry_point(main, argv: list[str], monkeypatch) -> None:
    """Run a console-script entry point in this process, as the shell would."""
    monkeypatch.setattr(sys, "argv", argv)
    GlobalHydra.instance().clear()
    handlers = logging.root.handlers[:]
    try:
        main()
    finally:
        GlobalHydra.instance().clear()
        # Hydra pointed the root logger at this test's captured stderr: undo that for the next
        for handler in logging.root.handlers:
            if handler not in handlers:
                handler.close()
        logging.root.handlers = handlers


def test_an_unwritable_log_dir_reached_through_hydra_is_one_line(tmp_path, capsys, monkeypatch):
    from vaelab.train import main

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    argv = ["vaelab-train", "data=digits", f"paths.log_dir={blocker}/logs"]
    with pytest.raises(SystemExit) as stopped:
        _entry_point(main, argv, monkeypatch)  # Hydra fails creating the run dir
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "HYDRA_FULL_ERROR" not in err
    assert err.count("vaelab: error:") == 1
    assert f"cannot write {blocker}/logs" in err
    assert "paths.log_dir" in err
    assert blocker.read_text() == "not a folder"
    assert "HYDRA_FULL_ERROR" not in os.environ  # the entry point leaves the environment as it was
    # the user's HYDRA_FULL_ERROR=1 gets the exception itself
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(NotADirectoryError):
        _entry_point(main, argv, monkeypatch)


def test_a_wrong_type_for_vaelab_eval_is_one_line(tmp_path, capsys, monkeypatch):
    from vaelab.eval import main

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit):
        _entry_point(
            main, ["vaelab-eval", f"ckpt_path={tmp_path}", "eval.num_samples=abc"], monkeypatch
        )
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("vaelab: error:") == 1
    assert "eval.num_samples=abc must be an integer" in err


def test_an_option_lightning_refuses_after_vaelab_accepted_it_is_one_line(tmp_path, capsys):
    cfg = digits_config(tmp_path, "+trainer.strategy=dpp")
    with pytest.raises(SystemExit) as stopped:
        run_reporting_errors(lambda: train(cfg), tmp_path / "run")
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("vaelab: error:")]
    assert len(lines) == 1
    assert "dpp" in lines[0]


# -- failed runs leave no empty folder behind -------------------------------------------------
def test_a_run_that_fails_before_it_holds_anything_leaves_no_folder(tmp_path, capsys, monkeypatch):
    from vaelab.train import main

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    run_dir = tmp_path / "runs" / "failed_run"
    empty_data = tmp_path / "no_data"
    empty_data.mkdir()
    argv = [
        "vaelab-train",
        "data.download=false",
        f"paths.data_dir={empty_data}",  # fails after config.yaml was written
        f"hydra.run.dir={run_dir}",
    ]
    with pytest.raises(SystemExit) as stopped:
        _entry_point(main, argv, monkeypatch)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.count("vaelab: error:") == 1
    assert "MNIST data not found" in err
    assert not run_dir.exists()
    assert (tmp_path / "runs").is_dir()  # only the run's own folder went


def test_only_a_folder_with_nothing_but_config_error_and_hydra_files_is_removed(tmp_path):
    from vaelab.cli import remove_failed_run_dir

    disposable = tmp_path / "disposable"
    (disposable / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "error.txt", "train.log", ".vaelab.lock", ".hydra/config.yaml"):
        (disposable / name).write_text("x")
    assert remove_failed_run_dir(disposable)
    assert not disposable.exists()
    valuable = tmp_path / "valuable"
    (valuable / "checkpoints").mkdir(parents=True)
    (valuable / "config.yaml").write_text("x")
    assert not remove_failed_run_dir(valuable)
    assert (valuable / "config.yaml").is_file()


def test_a_failed_sweep_job_keeps_its_error_for_the_summary(tmp_path):
    def fails():
        raise VaelabError("a bad value")

    assert math.isnan(run_reporting_errors(fails, tmp_path, in_sweep=True))
    assert "a bad value" in (tmp_path / "error.txt").read_text()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["vaelab-train", "modle=vqvae"],
            "vaelab: error: unknown config group 'modle': did you mean model? (model=vqvae)",
        ),
        (
            ["vaelab-train", "data=digits", "+modle=vqvae"],
            "vaelab: error: unknown config group 'modle': did you mean model? (model=vqvae)",
        ),
        (
            ["vaelab-eval", "evl.num_samples=3"],
            "vaelab: error: unknown key 'evl': did you mean eval? (eval.num_samples=3)",
        ),
    ],
)
def test_a_misspelt_group_or_key_is_answered_by_vaelab_before_hydra(
    argv, expected, capsys, monkeypatch
):
    entry_module = "vaelab.train" if argv[0] == "vaelab-train" else "vaelab.eval"
    main = importlib.import_module(entry_module).main
    with pytest.raises(SystemExit) as stopped:
        _entry_point(main, argv, monkeypatch)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.strip() == expected  # one line; nothing of Hydra's "+modle" advice
