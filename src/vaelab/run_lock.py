"""One process per run directory: an ``flock``'d ``.vaelab.lock`` held for the whole run.

A second ``vaelab-train`` into the same directory is refused with the holder's pid, host and
start time. The kernel drops an flock when its process dies, however it dies, so the lock of
a killed run is free: the next run takes it over and says whose it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from vaelab.errors import VaelabError
from vaelab.run_files import LOCK_FILE

#: environment variables that give a process's rank in a distributed run (torchrun, SLURM)
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK")


class RunDirInUseError(VaelabError):
    """Another live process holds this run directory's lock."""


def is_main_process() -> bool:
    """False in the extra processes of a distributed run (ranks > 0), which share the run dir
    of rank 0 and must not take its lock."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit() and int(value) != 0:
            return False
    return True


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (ValueError, KeyError, TypeError):
        return "another process"


class RunDirLock:
    """``with RunDirLock(run_dir):`` — raise :class:`RunDirInUseError` if a live process holds
    the directory; ``taken_over`` names the dead holder whose lock was taken over, if any."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.taken_over: str | None = None
        self._fd: int | None = None

    def acquire(self) -> RunDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(os.pread(fd, 4096, 0).decode(errors="replace"))
            os.close(fd)
            raise RunDirInUseError(
                f"the run directory {self.path.parent} is in use by another vaelab run "
                f"({holder}); wait for it to finish, or give this run its own directory "
                "(leave hydra.run.dir at its default, or choose another one)"
            ) from None
        except OSError:
            os.close(fd)
            raise
        previous = os.pread(fd, 4096, 0).decode(errors="replace")
        if previous.strip():
            self.taken_over = _holder(previous)
        record = json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        ).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Unlock; the file is emptied (a clean exit leaves no holder behind) but kept, so a
        process waiting on the same inode never locks a deleted file."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def run_dir_lock(run_dir: str | Path) -> Iterator[RunDirLock | None]:
    """Hold the run dir's lock in the main process; a no-op on ranks > 0."""
    if not is_main_process():
        yield None
        return
    lock = RunDirLock(run_dir).acquire()
    try:
        if lock.taken_over:
            print(
                f"vaelab: took over the lock of {lock.path.parent} from {lock.taken_over}, "
                "which is no longer running",
                flush=True,
            )
        yield lock
    finally:
        lock.release()
