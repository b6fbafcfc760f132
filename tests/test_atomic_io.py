"""vaelab.atomic_io: a full disk keeps the previous checkpoint and says how much space is
needed, in one line, and the same command continues once space is freed."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import compose_config, failing_writes
from tests.tiny_digits_run import DIGITS, small_checkpoint
from vaelab import atomic_io
from vaelab.atomic_io import DiskFullError
from vaelab.checkpoints import AtomicCheckpointIO
from vaelab.cli import run_reporting_errors
from vaelab.run_files import CHECKPOINT_DIR, LAST_CHECKPOINT, METRICS_FILE
from vaelab.train import train


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_how_much_space_is_needed(
    tmp_path, monkeypatch
):
    """The usual cluster layout: a cross-device move would copy over (and truncate) the old
    file. vaelab never moves across directories, and a write that runs out of space leaves the
    previous checkpoint untouched."""
    path = tmp_path / CHECKPOINT_DIR / LAST_CHECKPOINT
    checkpoint_io = AtomicCheckpointIO()
    checkpoint_io.save_checkpoint(small_checkpoint(1), path)
    real_replace = os.replace

    def replace_on_one_filesystem(src, dst):
        if Path(src).parent != Path(dst).parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_on_one_filesystem)
    failing_writes(monkeypatch, 4096, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(DiskFullError) as err:
        checkpoint_io.save_checkpoint(small_checkpoint(2, size=250_000), path)
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
        checkpoint_io.save_checkpoint(small_checkpoint(3, size=250_000), path)
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
