"""Reliability II (docs/reliability.md): no work lost to a resume typo, a full disk, a torn
checkpoint or a second run in the same dir; values are refused instead of silently fixed;
one line for every mistake. Each test fails on the code before issue 16."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Annotated, Literal

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from tests.conftest import FAST, compose_config, failing_writes
from vaelab import atomic_io
from vaelab.atomic_io import DiskFullError
from vaelab.checkpoints import AtomicCheckpointIO
from vaelab.cli import run_reporting_errors
from vaelab.config_checks import EvalSettings, config_problems, validate_config
from vaelab.errors import VaelabError
from vaelab.paths import CONFIG_DIR
from vaelab.report import main as report_main
from vaelab.run_files import CHECKPOINT_DIR, CONFIG_FILE, LAST_CHECKPOINT, METRICS_FILE
from vaelab.run_lock import RunDirInUseError, RunDirLock
from vaelab.schema import Range, check_targets
from vaelab.train import train

#: a digits run small enough for a unit test: 2 training steps per epoch
DIGITS = [
    *FAST,
    "data=digits",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "callbacks.image_logger=null",
    "callbacks.encoding_snapshot=null",
    "callbacks.hparams_logger=null",
    "logger=csv",
]


def _config(tmp_path: Path, *overrides: str, name: str = "run"):
    return compose_config([*DIGITS, *overrides], tmp_path / name)


def _refused(cfg) -> str:
    with pytest.raises(VaelabError) as err:
        train(cfg)
    return str(err.value)


# -- work lost with exit 0: resume is a closed set -------------------------------------------
@pytest.mark.parametrize("value", ["true", "Auto", "no", "1", "never_"])
def test_resume_is_auto_or_never_and_a_typo_loses_nothing(tmp_path, value):
    run_dir = tmp_path / "run"
    (run_dir / CHECKPOINT_DIR).mkdir(parents=True)
    (run_dir / CONFIG_FILE).write_text("the earlier attempt's config\n")
    (run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT).write_bytes(b"the earlier attempt's weights")
    message = _refused(_config(tmp_path, f"resume={value}"))
    assert f"resume={value} must be one of auto, never" in message
    assert (run_dir / CONFIG_FILE).read_text() == "the earlier attempt's config\n"
    assert sorted(p.name for p in run_dir.iterdir()) == [CHECKPOINT_DIR, CONFIG_FILE]


# -- silently "fixed" values and wrong types are refused before any data is loaded ----------
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.max_epochs=0", "trainer.max_epochs=0 must be an integer >= 1, or -1"),
        ("trainer.max_steps=0", "trainer.max_steps=0 must be an integer >= 1, or -1"),
        ("trainer.limit_train_batches=0", "trainer.limit_train_batches=0 must be an integer >= 1"),
        ("trainer.max_epochs=2.5", "trainer.max_epochs=2.5 must be an integer"),
        ("trainer.devices=0", "trainer.devices=0 must be an integer >= 1, or -1"),
        ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps=0 must be an integer >= 1"),
        ("model.latent_dim=2.7", "model.latent_dim=2.7 must be an integer"),
        ("model.latent_dim=true", "model.latent_dim=true must be an integer"),
        ("data.batch_size=1e2", "data.batch_size=100.0 must be an integer (write 100, not"),
        ("seed=-1", "seed=-1 must be an integer in [0, 4294967295]"),
        ("test=maybe", "test=maybe must be true or false"),
        ("data.shuffle=yes", "data.shuffle=yes must be true or false"),
        ("data.binarize=Dynamic", "must be one of none, dynamic, static (did you mean dynamic?)"),
        ("objective.kl=analytical", "objective.kl=analytical must be one of auto, analytic, monte"),
        ("trainer.precision=33", "trainer.precision=33 must be one of 64, 32, 16"),
        ("callbacks.model_checkpoint.mode=maximum", "mode=maximum must be one of min, max"),
        ("optimizer.betas=[0.9]", "optimizer.betas=[0.9] must be a list of 2 values"),
        ("+model.hidden=3", "model.hidden=3 is not a known key; known: input_shape, latent_dim"),
        ("+trainer.max_epoch=3", "trainer.max_epoch=3 is not a known key (did you mean max_epochs"),
        ("+foo=1", "foo=1 is not a known key; known: ckpt_path"),
    ],
)
def test_values_that_were_silently_fixed_or_wrongly_typed_are_refused(tmp_path, override, expected):
    # data=mnist in a data dir that does not exist: the config error must come first
    cfg = compose_config(
        [*FAST, f"paths.data_dir={tmp_path / 'absent'}", override], tmp_path / "run"
    )
    message = _refused(cfg)
    assert message.startswith("invalid config:"), message
    assert expected in message, message


class _Marked:
    """A target with ranges and a closed set declared next to its parameters."""

    def __init__(
        self, size: Annotated[int, Range(ge=1)], mode: Literal["fast", "exact"] = "fast"
    ) -> None:
        self.size, self.mode = size, mode


class _Forwarding(_Marked):
    def __init__(self, scale: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = scale


def test_the_schema_follows_the_target_wherever_a_config_puts_it():
    target = f"{__name__}._Marked"
    for where in ("model", "model.prior", "callbacks.extra"):
        tree: dict = {}
        node = tree
        for part in where.split("."):
            node = node.setdefault(part, {})
        node.update({"_target_": target, "size": 0, "mode": "Fast", "sise": 3})
        problems = {p.key: p.requirement for p in check_targets(tree).problems}
        assert problems == {
            f"{where}.size": "must be an integer >= 1",
            f"{where}.mode": "must be one of fast, exact (did you mean fast?)",
            f"{where}.sise": "is not a known key (did you mean size?); known: mode, size",
        }
    # **kwargs passed on to the base class: the base's parameters are the known keys
    forwarded = {"_target_": f"{__name__}._Forwarding", "size": 2, "scale": 0.5, "other": 1}
    assert [str(p) for p in check_targets({"m": forwarded}).problems] == [
        "m.other=1 is not a known key; known: mode, scale, size"
    ]


@pytest.mark.slow  # ~70 compositions, and every target imported (wandb among them)
def test_every_shipped_config_passes_the_schema(tmp_path):
    """No false refusals: every option of every group, and every experiment, validates."""
    from vaelab.config_checks import TrainSettings

    choices = [[]] + [
        [f"{group.name}={option.stem}"]
        for group in sorted(CONFIG_DIR.iterdir())
        if group.is_dir() and group.name not in ("hydra", "paths", "hparams_search")
        for option in sorted(group.glob("*.yaml"))
    ]
    assert len(choices) > 60
    for overrides in choices:
        cfg = compose_config(overrides, tmp_path / "run")
        tree = validate_config(cfg, TrainSettings)
        assert not config_problems(tree, TrainSettings), overrides
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        validate_config(compose("eval"), EvalSettings)
        with pytest.raises(VaelabError, match=r"eval.num_samples=0 must be an integer >= 1"):
            validate_config(compose("eval", overrides=["eval.num_samples=0"]), EvalSettings)


def test_a_monitored_metric_the_model_never_logs_is_refused_before_training(tmp_path):
    message = _refused(_config(tmp_path, "callbacks.model_checkpoint.monitor=val/elbbo"))
    assert "callbacks.model_checkpoint.monitor=val/elbbo is not a metric this model logs" in message
    assert "val/elbo" in message
    assert not (tmp_path / "run" / CHECKPOINT_DIR).exists()  # no training started
    message = _refused(_config(tmp_path, "optimized_metric=val/elb", name="other"))
    assert "optimized_metric=val/elb is not a metric this model logs" in message


def _checkpoint(step: int, size: int = 1000) -> dict:
    return {"state_dict": {"w": torch.full((size,), float(step))}, "global_step": step}


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_how_much_space_is_needed(
    tmp_path, monkeypatch
):
    """The usual cluster layout: a cross-device move would copy over (and truncate) the old
    file. vaelab never moves across directories, and a write that runs out of space leaves the
    previous checkpoint untouched."""
    path = tmp_path / CHECKPOINT_DIR / LAST_CHECKPOINT
    checkpoint_io = AtomicCheckpointIO()
    checkpoint_io.save_checkpoint(_checkpoint(1), path)
    real_replace = os.replace

    def replace_on_one_filesystem(src, dst):
        if Path(src).parent != Path(dst).parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_on_one_filesystem)
    failing_writes(monkeypatch, 4096, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(DiskFullError) as err:
        checkpoint_io.save_checkpoint(_checkpoint(2, size=250_000), path)
    monkeypatch.undo()
    message = str(err.value)
    assert "no space left on the disk holding" in message
    assert "writing last.ckpt needs 97" in message
    assert "KB" in message
    assert "the previous version is kept" in message
    assert f"resume later from {path}" in message
    assert torch.load(path, weights_only=True)["global_step"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == [LAST_CHECKPOINT]  # no temp left

    # free space known in advance: refused before a byte is written
    monkeypatch.setattr(atomic_io, "free_bytes", lambda _folder: 100_000)
    with pytest.raises(DiskFullError, match=r"needs 97\d\.\d KB, 97\.7 KB free"):
        checkpoint_io.save_checkpoint(_checkpoint(3, size=250_000), path)
    assert torch.load(path, weights_only=True)["global_step"] == 1


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


def test_training_onto_a_really_full_disk_keeps_last_ckpt_and_reports_in_one_line(tmp_path, capsys):
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "12m")
    try:
        run_dir = disk / "run"
        first = compose_config([*DIGITS, "test=false"], run_dir)
        train(first)
        last = run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
        size = last.stat().st_size
        (run_dir / METRICS_FILE).unlink()  # unfinished: resume=auto continues it
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * (free - size // 2))  # room for half a checkpoint
        again = compose_config([*DIGITS, "trainer.max_epochs=2", "test=false"], run_dir)
        with pytest.raises(SystemExit) as stopped:
            run_reporting_errors(lambda: train(again), run_dir)
        assert stopped.value.code == 1
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.startswith("vaelab: error:")]
        assert len(lines) == 1
        assert "Traceback" not in err
        assert "no space left on the disk holding" in lines[0]
        assert "needs 2." in lines[0]
        assert f"resume later from {last}" in lines[0]
        state = torch.load(last, weights_only=True)  # the epoch-0 checkpoint, intact
        assert state["global_step"] == 2
        assert state["epoch"] == 0
        assert not list((run_dir / CHECKPOINT_DIR).glob(".*.tmp"))
        # space freed: the same command continues from last.ckpt
        (disk / "filler").unlink()
        metrics = train(compose_config([*DIGITS, "trainer.max_epochs=2", "test=false"], run_dir))
        assert torch.load(last, weights_only=True)["global_step"] == 4
        assert metrics["val/elbo"] == json.loads((run_dir / METRICS_FILE).read_text())["val/elbo"]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


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


def test_a_torn_last_ckpt_is_reported_and_the_last_good_checkpoint_used(tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(_config(tmp_path, "trainer.max_epochs=2", "test=false"))
    checkpoints = run_dir / CHECKPOINT_DIR
    good = checkpoints / "epoch_001.ckpt"  # the best (val/elbo) of the two epochs
    if not good.exists():
        good = checkpoints / "epoch_000.ckpt"
    good_step = torch.load(good, weights_only=True)["global_step"]
    last = checkpoints / LAST_CHECKPOINT
    last.write_bytes(last.read_bytes()[:5000])  # what a copy cut short by a full disk leaves
    (run_dir / METRICS_FILE).unlink()
    capsys.readouterr()
    train(_config(tmp_path, "trainer.max_epochs=3", "test=false"))
    captured = capsys.readouterr()
    assert f"{last} is torn or unreadable" in captured.err
    assert f"resuming from the last good checkpoint {good}" in captured.err
    assert f"Resuming from {good}" in captured.out
    assert (checkpoints / "last.ckpt.torn").stat().st_size == 5000  # kept, out of the way
    assert good_step in (2, 4)
    assert torch.load(last, weights_only=True)["global_step"] == 6  # 3 epochs in the end


def test_a_torn_checkpoint_with_no_good_one_left_is_one_clear_error(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / CHECKPOINT_DIR).mkdir(parents=True)
    (run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT).write_bytes(b"PK\x03\x04 torn")
    message = _refused(_config(tmp_path))
    assert "is torn or unreadable" in message
    assert "no good checkpoint is left" in message
    assert "resume=never" in message


# -- two runs in one run dir -----------------------------------------------------------------
HOLD_LOCK = """
import sys
from vaelab.run_lock import RunDirLock
RunDirLock(sys.argv[1]).acquire()
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_run_into_a_locked_run_dir_is_refused_and_a_dead_holders_lock_taken_over(
    tmp_path,
):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"  # the holder signals, no sleep
        with pytest.raises(RunDirInUseError) as err:
            train(_config(tmp_path))
        assert f"in use by another vaelab run (pid {holder.pid} on" in str(err.value)
        assert not (run_dir / CONFIG_FILE).exists()  # the second run wrote nothing
    finally:
        holder.kill()  # SIGKILL: the holder cannot clean up
        holder.wait()
    lock = RunDirLock(run_dir).acquire()
    try:
        assert lock.taken_over is not None
        assert f"pid {holder.pid} on" in lock.taken_over
    finally:
        lock.release()
    assert RunDirLock(run_dir).acquire().taken_over is None  # a clean release leaves no holder


# -- corrupt files vaelab wrote earlier ------------------------------------------------------
def test_a_corrupt_metrics_json_is_set_aside_and_the_run_finishes_again(tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(_config(tmp_path))
    (run_dir / METRICS_FILE).write_text('{"val/elbo": -12')  # cut short
    metrics = train(_config(tmp_path))
    assert "metrics.json is unreadable" in capsys.readouterr().err
    assert json.loads((run_dir / METRICS_FILE).read_text())["test/elbo"] == metrics["test/elbo"]
    assert (run_dir / "metrics.json.torn").read_text() == '{"val/elbo": -12'


def test_a_corrupt_run_config_is_one_clear_error_in_eval(tmp_path):
    from vaelab.eval import evaluate

    run_dir = tmp_path / "run"
    train(_config(tmp_path, "test=false"))
    (run_dir / CONFIG_FILE).write_text("model: [unclosed\n  latent_dim: 2\n")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=[f"ckpt_path={run_dir}", "print_summary=false"])
    with pytest.raises(VaelabError, match=r"config .*config.yaml is unreadable .*\.hydra"):
        evaluate(cfg)


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
    cfg = _config(tmp_path, "+trainer.strategy=dpp")
    with pytest.raises(SystemExit) as stopped:
        run_reporting_errors(lambda: train(cfg), tmp_path / "run")
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("vaelab: error:")]
    assert len(lines) == 1
    assert "dpp" in lines[0]


# -- vaelab-report reads what it can ---------------------------------------------------------
def _job(root: Path, name: str, lr: float, metrics: str | None) -> Path:
    folder = root / name
    (folder / ".hydra").mkdir(parents=True)
    overrides = [f"optimizer.lr={lr}", "model.net.hidden_dims=[400,200]", "ckpt_path=null"]
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / CONFIG_FILE).write_text(yaml.safe_dump({"optimized_metric": "val/elbo"}))
    if metrics is not None:
        (folder / METRICS_FILE).write_text(metrics)
    return folder


def test_report_ranks_the_readable_jobs_and_lists_the_unreadable_ones_with_why(tmp_path, capsys):
    _job(tmp_path, "0", 0.01, json.dumps({"val/elbo": -150.0}))
    _job(tmp_path, "1", 0.001, json.dumps({"val/elbo": -140.0}))
    _job(tmp_path, "2", 0.1, '{"val/elbo": -1')  # cut short
    bad_config = _job(tmp_path, "3", 0.2, json.dumps({"val/elbo": -130.0}))
    (bad_config / CONFIG_FILE).write_text("optimized_metric: [unclosed\n")
    bad_overrides = _job(tmp_path, "4", 0.3, json.dumps({"val/elbo": -120.0}))
    (bad_overrides / ".hydra" / "overrides.yaml").write_text("- optimizer.lr=[0.3\n")
    report_main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "job 2 is unreadable: metrics.json:" in out
    markdown = (tmp_path / "report.md").read_text()
    assert "5 jobs: 2 finished, 0 failed, 3 unreadable" in markdown
    assert "**Best: job 1**" in markdown
    unreadable = markdown.split("## Unreadable jobs (3)", 1)[1]
    assert "[2](2/) | metrics.json: Expecting" in unreadable
    assert "[3](3/) | config.yaml:" in unreadable
    assert "[4](4/) | .hydra/overrides.yaml:" in unreadable


def test_report_overrides_keep_their_types(tmp_path):
    from vaelab.evaluation.sweep import parse_override, read_sweep

    assert parse_override("model.net.hidden_dims=[400,200]") == (
        "model.net.hidden_dims",
        [400, 200],
    )
    assert parse_override("ckpt_path=null") == ("ckpt_path", None)
    assert parse_override("task_name='007'") == ("task_name", "007")
    _job(tmp_path, "0", 0.01, json.dumps({"val/elbo": -150.0}))
    job = read_sweep(tmp_path).jobs[0]
    assert job.params == {
        "optimizer.lr": 0.01,
        "model.net.hidden_dims": [400, 200],
        "ckpt_path": None,
    }


def test_report_into_an_unwritable_folder_is_one_line(tmp_path, capsys):
    _job(tmp_path, "0", 0.01, json.dumps({"val/elbo": -150.0}))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    with pytest.raises(SystemExit):
        report_main([str(tmp_path), "--output-dir", str(blocker / f"out-{uuid.uuid4().hex}")])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("vaelab: error:")


def test_eval_of_a_run_dir_with_a_torn_last_ckpt_uses_its_good_checkpoint(tmp_path):
    from vaelab.evaluation.checkpoint import locate_checkpoint

    checkpoints = tmp_path / CHECKPOINT_DIR
    checkpoints.mkdir()
    (tmp_path / CONFIG_FILE).write_text("model: {}\ndata: {}\n")
    torch.save(_checkpoint(4), checkpoints / "epoch_001.ckpt")
    (checkpoints / LAST_CHECKPOINT).write_bytes(b"PK\x03\x04 torn")
    assert locate_checkpoint(tmp_path).checkpoint == checkpoints / "epoch_001.ckpt"
