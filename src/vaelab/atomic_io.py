"""Atomic file writes: a temp file beside the target, fsync, ``os.replace``.

The temp file lives in the target's own directory, so the final rename never crosses a
filesystem (a cross-device "move" is a copy that first truncates the target). A kill or a
full disk therefore leaves either the previous file or the new one, never a torn one, and
never destroys the previous file. A full disk is reported as :class:`DiskFullError`, which
names the file, the bytes it needed and the bytes free.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from vaelab.errors import VaelabError

#: errors that mean "no room for this file" (EFBIG: a file-size limit, RLIMIT_FSIZE)
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: bytes kept free beyond the file itself (filesystem metadata, the directory entry)
SPACE_MARGIN = 64 * 1024


class DiskFullError(VaelabError):
    """There was no room for a file; the previous version of it (if any) is intact."""

    def __init__(self, path: Path, needed: int | None, free: int | None, note: str = "") -> None:
        self.path, self.needed, self.free = path, needed, free
        need = f"needs {format_bytes(needed)}" if needed is not None else "needs more space"
        have = f", {format_bytes(free)} free" if free is not None else ""
        kept = "the previous version is kept" if path.exists() else "nothing was written"
        super().__init__(
            f"no space left on the disk holding {path.parent}: writing {path.name} {need}"
            f"{have}; {kept}{note}. Free at least {format_bytes(shortfall(needed, free))} there "
            "(or set paths.log_dir to a folder on a disk with room) and run the same command "
            "again"
        )


def format_bytes(size: int | None) -> str:
    if size is None:
        return "an unknown amount"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def shortfall(needed: int | None, free: int | None) -> int | None:
    if needed is None:
        return None
    return max(needed + SPACE_MARGIN - (free or 0), SPACE_MARGIN)


def free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically; raise :class:`DiskFullError` if it does not fit
    (checked before writing when the free space is known, and on ENOSPC while writing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = len(data)
    free = free_bytes(path.parent)
    if free is not None and size + SPACE_MARGIN > free:
        raise DiskFullError(path, size, free)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():  # keep the previous file's permissions
            with contextlib.suppress(OSError):
                shutil.copymode(path, temp)
        else:
            os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    except OSError as err:
        _remove_quietly(temp)
        if err.errno in NO_SPACE_ERRNOS:
            raise DiskFullError(path, size, free_bytes(path.parent)) from err
        raise
    except BaseException:  # a kill (KeyboardInterrupt, SystemExit) mid-write
        _remove_quietly(temp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, value: Any) -> Path:
    return atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
