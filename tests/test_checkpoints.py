"""vaelab.checkpoints: any bytes in a checkpoint's place are refused with one message; an
interrupted write leaves the previous checkpoint intact; resume=auto picks the newest of
last.ckpt and SLURM's hpc checkpoints; a torn last.ckpt is reported and the last good checkpoint
used, and with no good one left it is one clear error."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from tests.conftest import failing_writes
from tests.tiny_digits_run import digits_config, refused, small_checkpoint
from vaelab.checkpoints import AtomicCheckpointIO, checkpoint_to_continue, load_checkpoint
from vaelab.errors import VaelabError
from vaelab.run_files import CHECKPOINT_DIR, CONFIG_FILE, LAST_CHECKPOINT, METRICS_FILE
from vaelab.train import train


@pytest.mark.parametrize("content", [b"a" * 64, b"\x80\x02}q\x00.", b"PK\x03\x04 torn"])
def test_any_bytes_in_a_checkpoints_place_are_refused(tmp_path, content):
    path = tmp_path / "last.ckpt"
    path.write_bytes(content)
    with pytest.raises(VaelabError, match="refused to load"):
        load_checkpoint(path)


def test_interrupted_checkpoint_write_leaves_the_previous_one_intact(tmp_path, monkeypatch):
    """vaelab's checkpoint IO writes a temp file beside the target and renames it over."""

    path = tmp_path / "last.ckpt"
    checkpoint_io = AtomicCheckpointIO()
    checkpoint_io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 1}, path)
    # what a kill during the write looks like to Python
    failing_writes(monkeypatch, 2000, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        checkpoint_io.save_checkpoint(
            {"state_dict": {"w": torch.zeros(1000)}, "global_step": 2}, path
        )
    monkeypatch.undo()
    reloaded = torch.load(path, weights_only=True)
    assert reloaded["global_step"] == 1
    assert torch.equal(reloaded["state_dict"]["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temp file left


def test_resume_auto_picks_the_newest_of_last_and_slurm_hpc_checkpoints(tmp_path):
    from vaelab.checkpoints import last_checkpoint

    assert last_checkpoint(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.write_bytes(b"epoch end")
    assert last_checkpoint(tmp_path) == last
    hpc = tmp_path / "hpc_ckpt_1.ckpt"  # written later by Lightning's SIGUSR1 handler
    hpc.write_bytes(b"requeue")
    os.utime(hpc, ns=(last.stat().st_mtime_ns + 10**9,) * 2)
    assert last_checkpoint(tmp_path) == hpc


def test_a_torn_last_ckpt_is_reported_and_the_last_good_checkpoint_used(tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(digits_config(tmp_path, "trainer.max_epochs=2", "test=false"))
    checkpoints = run_dir / CHECKPOINT_DIR
    good = checkpoints / "epoch_001.ckpt"  # the best (val/elbo) of the two epochs
    if not good.exists():
        good = checkpoints / "epoch_000.ckpt"
    good_step = torch.load(good, weights_only=True)["global_step"]
    last = checkpoints / LAST_CHECKPOINT
    last.write_bytes(last.read_bytes()[:5000])  # what a copy cut short by a full disk leaves
    (run_dir / METRICS_FILE).unlink()
    capsys.readouterr()
    train(digits_config(tmp_path, "trainer.max_epochs=3", "test=false"))
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
    message = refused(digits_config(tmp_path))
    assert "is torn or unreadable" in message
    assert "no good checkpoint is left" in message
    assert "resume=never" in message


def test_a_run_dir_as_ckpt_path_gives_its_newest_checkpoint_or_says_what_is_missing(tmp_path):
    run_dir = tmp_path / "run"
    folder = run_dir / CHECKPOINT_DIR
    folder.mkdir(parents=True)
    (run_dir / CONFIG_FILE).write_text("seed: 1\n")
    with pytest.raises(VaelabError, match=r"its checkpoints/ folder holds no \.ckpt file"):
        checkpoint_to_continue(run_dir)
    torch.save(small_checkpoint(4), folder / "epoch_001.ckpt")
    with pytest.raises(VaelabError, match=r"has no last\.ckpt; pass one of .*epoch_001\.ckpt"):
        checkpoint_to_continue(run_dir)
    torch.save(small_checkpoint(6), folder / LAST_CHECKPOINT)
    assert checkpoint_to_continue(run_dir) == folder / LAST_CHECKPOINT
    assert checkpoint_to_continue(folder) == folder / LAST_CHECKPOINT
    assert checkpoint_to_continue(folder / "epoch_001.ckpt") == folder / "epoch_001.ckpt"
    shutil.rmtree(folder)
    with pytest.raises(VaelabError, match=r"holds config\.yaml but no checkpoints/ folder"):
        checkpoint_to_continue(run_dir)
    with pytest.raises(VaelabError, match=r"ckpt_path=.*nowhere does not exist"):
        checkpoint_to_continue(tmp_path / "nowhere")
