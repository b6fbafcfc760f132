"""vaelab.interruption: Ctrl-C in every entry point (vaelab-train, vaelab-eval, vaelab-report)
ends in one line — the stage, what is kept, how to go on — and exit status 130, no traceback.
The interrupt is a real SIGINT sent at a chosen step (tests/signal_at_step.py), never a sleep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.signal_at_step import SIGNAL_CALLBACK, SIGNALLED_RUN_FAST, signalled_run_env
from tests.test_cli import _entry_point
from tests.tiny_digits_run import DIGITS
from vaelab.interruption import INTERRUPTED_EXIT_STATUS
from vaelab.paths import PROJECT_ROOT
from vaelab.run_files import CHECKPOINT_DIR, LAST_CHECKPOINT


@pytest.fixture(autouse=True)
def _ctrl_c_restored():
    """Lightning ignores SIGINT once it has seen one: each test starts and ends with Python's
    own handler."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _ctrl_c(*args, **kwargs):
    """Stands in for a function of an entry point: the user presses Ctrl-C while it runs."""
    os.kill(os.getpid(), signal.SIGINT)
    raise AssertionError("SIGINT did not interrupt")  # pragma: no cover


def _the_one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("vaelab: interrupted")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.slow  # a short training run (~7 s on a busy 2-core machine)
def test_ctrl_c_while_vaelab_train_trains_says_what_is_kept_and_how_to_resume(
    tmp_path, capsys, monkeypatch
):
    from vaelab.train import main

    run_dir = tmp_path / "run"
    argv = [
        "vaelab-train",
        *DIGITS,
        "trainer.max_epochs=3",
        f"hydra.run.dir={run_dir}",
        SIGNAL_CALLBACK,
        "+callbacks.signal_at_step.step=3",  # epoch 2 of 3; epoch 1 saved last.ckpt
        "+callbacks.signal_at_step.signal_name=SIGINT",
    ]
    with pytest.raises(SystemExit) as stopped:
        _entry_point(main, argv, monkeypatch)
    assert stopped.value.code == INTERRUPTED_EXIT_STATUS
    line = _the_one_line(capsys)
    last = run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
    assert line.startswith("vaelab: interrupted during training; ")
    assert f"kept: {last} (the weights at the end of the last epoch it finished)" in line
    assert line.endswith(f"resume with: vaelab-train ckpt_path={run_dir}")
    assert last.is_file()


def test_ctrl_c_in_vaelab_eval_is_one_line(tmp_path, capsys, monkeypatch):
    from vaelab.eval import main

    monkeypatch.setattr("vaelab.eval.locate_checkpoint", _ctrl_c)
    with pytest.raises(SystemExit) as stopped:
        _entry_point(main, ["vaelab-eval", f"ckpt_path={tmp_path}"], monkeypatch)
    assert stopped.value.code == INTERRUPTED_EXIT_STATUS
    line = _the_one_line(capsys)
    assert line.startswith("vaelab: interrupted during loading the run; kept: the run's files")
    assert line.endswith(
        f"resume with: vaelab-eval ckpt_path={tmp_path} (it starts the evaluation over)"
    )


def test_ctrl_c_in_vaelab_report_is_one_line(tmp_path, capsys, monkeypatch):
    from vaelab.report import main

    monkeypatch.setattr("vaelab.report.write_report", _ctrl_c)
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path), "--metric", "val/elbo"])
    assert stopped.value.code == INTERRUPTED_EXIT_STATUS
    line = _the_one_line(capsys)
    assert line.startswith("vaelab: interrupted during reading the sweep and writing the report")
    assert line.endswith(f"resume with: vaelab-report {tmp_path} --metric val/elbo")


def test_ctrl_c_while_hydra_composes_the_config_is_one_line(capsys, monkeypatch):
    from vaelab.train import main

    monkeypatch.setattr(
        "hydra._internal.config_loader_impl.ConfigLoaderImpl.load_configuration", _ctrl_c
    )
    with pytest.raises(SystemExit) as stopped:
        _entry_point(main, ["vaelab-train", "data=digits"], monkeypatch)
    assert stopped.value.code == INTERRUPTED_EXIT_STATUS
    assert _the_one_line(capsys).startswith("vaelab: interrupted during start-up; kept: nothing")


@pytest.mark.slow
def test_ctrl_c_in_the_vaelab_train_command_exits_130_without_a_traceback(tmp_path):
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vaelab.train",
            *SIGNALLED_RUN_FAST,
            *[o for o in DIGITS if o not in SIGNALLED_RUN_FAST],
            "trainer.max_epochs=3",
            f"hydra.run.dir={run_dir}",
            SIGNAL_CALLBACK,
            "+callbacks.signal_at_step.step=3",
            "+callbacks.signal_at_step.signal_name=SIGINT",
        ],
        capture_output=True,
        text=True,
        env=signalled_run_env(),
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    assert done.returncode == INTERRUPTED_EXIT_STATUS, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert f"resume with: vaelab-train ckpt_path={run_dir}" in done.stderr
    resumed = subprocess.run(
        [sys.executable, "-m", "vaelab.train", f"ckpt_path={run_dir}", "print_config=false"],
        capture_output=True,
        text=True,
        env=signalled_run_env(),
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]  # the printed command goes on
    assert (run_dir / "metrics.json").is_file()


def test_the_line_asks_what_is_kept_when_the_interrupt_arrives_and_never_fails():
    from vaelab.interruption import enter_stage, interrupted_line, reset_stage

    on_disk = []
    reset_stage()
    enter_stage("training", kept=lambda: ", ".join(on_disk), resume="vaelab-train ckpt_path=run")
    assert interrupted_line() == (
        "vaelab: interrupted during training; kept: nothing new; "
        "resume with: vaelab-train ckpt_path=run"
    )
    on_disk.append("run/checkpoints/last.ckpt")
    assert "kept: run/checkpoints/last.ckpt;" in interrupted_line()
    enter_stage("testing", kept=lambda: 1 / 0)  # a broken description is left out, not raised
    assert interrupted_line().startswith("vaelab: interrupted during testing; kept: nothing new")
    reset_stage()
