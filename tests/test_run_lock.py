"""vaelab.run_lock: a second run into a locked run dir is refused and writes nothing; a dead
holder's lock is taken over."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.tiny_digits_run import digits_config
from vaelab.run_files import CONFIG_FILE
from vaelab.run_lock import RunDirInUseError, RunDirLock
from vaelab.train import train

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
            train(digits_config(tmp_path))
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
