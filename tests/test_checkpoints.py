"""vaelab.checkpoints: any bytes in a checkpoint's place are refused with one message; an
interrupted write leaves the previous checkpoint intact; resume=auto picks the newest of last.ckpt
and SLURM's hpc checkpoints."""

from __future__ import annotations

import os

import pytest
import torch

from vaelab.checkpoints import load_checkpoint
from vaelab.errors import VaelabError


@pytest.mark.parametrize("content", [b"a" * 64, b"\x80\x02}q\x00.", b"PK\x03\x04 torn"])
def test_any_bytes_in_a_checkpoints_place_are_refused(tmp_path, content):
    path = tmp_path / "last.ckpt"
    path.write_bytes(content)
    with pytest.raises(VaelabError, match="refused to load"):
        load_checkpoint(path)


def test_interrupted_checkpoint_write_leaves_the_previous_one_intact(tmp_path, monkeypatch):
    """vaelab's checkpoint IO writes a temp file beside the target and renames it over."""
    from tests.conftest import failing_writes
    from vaelab.checkpoints import AtomicCheckpointIO

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
