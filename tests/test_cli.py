"""vaelab.cli: every error that reaches an entry point is one line (no traceback, no
HYDRA_FULL_ERROR hint), and the error handler never crashes on a full disk."""

from __future__ import annotations

import logging
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
    from vaelab import eval as eval_entry
    from vaelab import train as train_entry

    main = train_entry.main if argv[0] == "vaelab-train" else eval_entry.main
    with pytest.raises(SystemExit) as stopped:
        _entry_point(main, argv, monkeypatch)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.strip() == expected  # one line; nothing of Hydra's "+modle" advice
