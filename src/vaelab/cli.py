"""How entry points report a user's mistake: one ``vaelab: error: …`` line, no traceback.

A mistake the user can fix (:class:`~vaelab.errors.VaelabError`, a value Lightning or torch
refused, a full disk, an unwritable folder, a config Hydra cannot compose) ends in one line
and exit status 1, in every entry point and at every stage, Hydra's own set-up included;
``HYDRA_FULL_ERROR=1`` shows the full traceback instead. Anything else is a bug and keeps its
traceback.

In a multirun, a failing job must not stop or lose the others: its error (with traceback) is
written to ``<job dir>/error.txt`` and the job returns NaN; :mod:`vaelab.sweep_summary` lists
the failed jobs when the sweep ends and exits non-zero.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import os
import shutil
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hydra.errors import HydraException, InstantiationException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from vaelab.atomic_io import NO_SPACE_ERRNOS, atomic_write_text
from vaelab.errors import VaelabError
from vaelab.interruption import INTERRUPTED_EXIT_STATUS, interrupted_line, reset_stage
from vaelab.run_files import CONFIG_FILE, ERROR_FILE, HYDRA_DIR, LOCK_FILE

T = TypeVar("T")
FULL_ERROR = "HYDRA_FULL_ERROR"
#: OS errors that are about the user's folders, not about vaelab's code
USER_OS_ERRNOS = NO_SPACE_ERRNOS | {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR}
#: set while an entry point has asked Hydra to raise its set-up errors (see hydra_entry_point)
_entry_point_set_full_error = False

__all__ = [
    "ERROR_FILE",
    "hydra_entry_point",
    "launch",
    "raise_user_error",
    "run_reporting_errors",
    "user_error_message",
]


def one_line(text: str) -> str:
    """A multi-line message as one line: tab-indented lines become a comma-separated list."""
    parts: list[str] = []
    for raw in str(text).splitlines():
        line = raw.strip()
        if not line:
            continue
        if raw.startswith("\t") and parts:
            parts[-1] += (" " if parts[-1].endswith(":") else ", ") + line
        else:
            parts.append(line)
    return "; ".join(parts)


def _lightning_misconfiguration() -> tuple[type[BaseException], ...]:
    try:
        from lightning.fabric.utilities.exceptions import MisconfigurationException
    except ImportError:  # pragma: no cover
        return ()
    return (MisconfigurationException,)


def _os_error_message(err: OSError) -> str:
    where = err.filename or "a file"
    if err.errno in NO_SPACE_ERRNOS:
        return (
            f"no space left to write {where} ({err.strerror or err}); free disk space or set "
            "paths.log_dir to a folder on a disk with room, then run the same command again"
        )
    return (
        f"cannot write {where} ({err.strerror or err}); make the folder writable or set "
        "paths.log_dir (or hydra.run.dir) to a writable folder"
    )


def user_error_message(err: BaseException) -> str | None:
    """The message for an error the user can fix, or None for a bug (keep its traceback)."""
    misconfiguration = _lightning_misconfiguration()
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, VaelabError):
            return str(current)
        if misconfiguration and isinstance(current, misconfiguration):
            return (
                f"Lightning refused a setting: {one_line(str(current))} (fix the trainer.* or "
                "callbacks.* value it names)"
            )
        if isinstance(current, ValueError | TypeError) and isinstance(err, InstantiationException):
            return one_line(str(err))
        if isinstance(current, OSError) and current.errno in USER_OS_ERRNOS:
            return _os_error_message(current)
        if type(current).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError
            return (
                f"out of memory on the device ({one_line(str(current))[:200]}); lower "
                "data.batch_size (or data.eval_batch_size), or use a smaller model"
            )
        current = current.__cause__ or current.__context__
    return None


def setup_error_message(err: BaseException) -> str:
    """Errors that reach an entry point from Hydra itself (composing the config, creating the
    run dir, configuring logging) are the user's to fix: one line each."""
    if isinstance(err, HydraException | OmegaConfBaseException):
        return one_line(str(err))  # Hydra's message names the key or option and the fix
    if isinstance(err, OSError):
        return _os_error_message(err)
    message = user_error_message(err)
    if message is not None:
        return message
    return f"{type(err).__name__}: {one_line(str(err))}"


def traceback_requested() -> bool:
    """True if the user set ``HYDRA_FULL_ERROR=1`` (not the entry point, for Hydra)."""
    return os.environ.get(FULL_ERROR) == "1" and not _entry_point_set_full_error


@contextlib.contextmanager
def _user_environment() -> Iterator[None]:
    """Inside the task, the environment is the user's: the entry point's HYDRA_FULL_ERROR
    does not reach the processes the task starts (DDP ranks)."""
    global _entry_point_set_full_error
    if not _entry_point_set_full_error:
        yield
        return
    os.environ.pop(FULL_ERROR, None)
    _entry_point_set_full_error = False
    try:
        yield
    finally:
        os.environ[FULL_ERROR] = "1"
        _entry_point_set_full_error = True


@contextlib.contextmanager
def hydra_raising() -> Iterator[None]:
    """While Hydra runs, make it raise its set-up errors (composing the config, creating the
    run dir) instead of printing a traceback and exiting: Hydra does so under
    ``HYDRA_FULL_ERROR=1``, which is set meanwhile unless the user set it already."""
    global _entry_point_set_full_error
    if os.environ.get(FULL_ERROR) == "1":  # the user asked for tracebacks, or already set
        yield
        return
    os.environ[FULL_ERROR] = "1"
    _entry_point_set_full_error = True
    try:
        yield
    finally:
        if _entry_point_set_full_error:
            os.environ.pop(FULL_ERROR, None)
        _entry_point_set_full_error = False


def hydra_entry_point(
    hydra_main: Callable[[], T], config_name: str | None = None
) -> Callable[[], T]:
    """Wrap a ``@hydra.main`` function so that errors in Hydra's own set-up (composing the
    config, creating the run dir) end in one ``vaelab: error:`` line too (see
    :func:`hydra_raising`). With ``config_name`` (the primary config), an override naming an
    unknown group or key is answered first, with the closest known name."""

    @functools.wraps(hydra_main)
    def entry() -> T:
        if config_name is not None:
            from vaelab.config_checks import unknown_override_message

            unknown = unknown_override_message(sys.argv[1:], config_name)
            if unknown is not None:
                print(f"vaelab: error: {unknown}", file=sys.stderr)
                raise SystemExit(1)
        if os.environ.get(FULL_ERROR) == "1":  # the user asked for tracebacks
            return hydra_main()
        reset_stage()
        with hydra_raising():
            try:
                return hydra_main()
            except KeyboardInterrupt:
                print(interrupted_line(), file=sys.stderr)
                raise SystemExit(INTERRUPTED_EXIT_STATUS) from None
            except Exception as err:
                print(f"vaelab: error: {setup_error_message(err)}", file=sys.stderr)
                raise SystemExit(1) from None

    return entry


def launch(
    task_function: Callable[[DictConfig], Any], config_name: str, args: Sequence[str]
) -> None:
    """What ``@hydra.main`` does for a command line, for ``args`` given from Python: Hydra
    composes ``conf/<config_name>.yaml`` with the overrides, creates the run dir and its
    ``.hydra/`` files, configures logging and calls ``task_function`` there. Hydra's set-up
    errors (an unknown option, a key that does not compose, an unwritable folder) are raised as
    :class:`VaelabError` with the command line's one-line message; ``task_function`` must
    return its own errors, not raise them. The job's name (its log file's) is the module of
    ``task_function``, as for ``@hydra.main``."""
    from hydra import version
    from hydra._internal.utils import _run_hydra, get_args_parser

    from vaelab.paths import CONFIG_DIR

    version.setbase("1.3")
    parser = get_args_parser()
    parsed = parser.parse_args(list(args))
    with hydra_raising():
        try:
            _run_hydra(
                args=parsed,
                args_parser=parser,
                task_function=task_function,
                config_path=str(CONFIG_DIR),
                config_name=config_name,
            )
        except Exception as err:  # the task function raises nothing: this is Hydra's set-up
            raise VaelabError(setup_error_message(err)) from err


def raise_user_error(err: BaseException) -> None:
    """Raise ``err`` as the command line would report it: a user error as a
    :class:`VaelabError` holding its one-line message (chained to ``err``), a bug as itself."""
    message = user_error_message(err)
    if message is None:
        raise err
    if isinstance(err, VaelabError) and str(err) == one_line(message):
        raise err
    raise VaelabError(one_line(message)) from err


def _record_error(error_file: Path, summary: str) -> str | None:
    """Write error.txt atomically; on failure (a full disk) say why instead of crashing."""
    try:
        atomic_write_text(error_file, f"{summary}\n\n{traceback.format_exc()}")
    except Exception as err:  # never let the error handler fail
        return f"could not write {error_file} ({one_line(str(err))[:200]})"
    return None


#: what a failed run dir may hold and still be removed (and Hydra's ``<task>.log``)
DISPOSABLE_RUN_FILES = frozenset({CONFIG_FILE, ERROR_FILE, LOCK_FILE, HYDRA_DIR})


def _disposable(path: Path) -> bool:
    return path.name in DISPOSABLE_RUN_FILES or (path.is_file() and path.suffix == ".log")


def holds_only_disposable_files(run_dir: str | Path) -> bool:
    """True if ``run_dir`` holds only its config, the error, the lock, Hydra's ``.hydra/``
    and Hydra's ``<task>.log``: nothing a user would go back to."""
    try:
        return all(_disposable(path) for path in Path(run_dir).iterdir())
    except OSError:
        return False


def remove_failed_run_dir(run_dir: str | Path) -> bool:
    """Remove a run dir that failed before it held anything of value (its error was printed);
    only the files :func:`holds_only_disposable_files` allows are deleted, then the folder.
    Returns whether it is gone."""
    run_dir = Path(run_dir)
    if not holds_only_disposable_files(run_dir):
        return False
    with contextlib.suppress(OSError):
        for path in run_dir.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        run_dir.rmdir()
    return not run_dir.exists()


def run_reporting_errors(
    task: Callable[[], T],
    output_dir: str | Path | None = None,
    in_sweep: bool = False,
    raise_errors: bool = False,
    remove_if_empty: bool = False,
) -> T | float:
    """Run ``task``. A user error becomes one line on stderr and exit status 1
    (``HYDRA_FULL_ERROR=1`` re-raises it with the full traceback). In a sweep (``in_sweep``)
    any error is recorded in ``<output_dir>/error.txt`` and NaN is returned instead. With
    ``raise_errors`` (the Python API) the error is recorded, then raised: a user error as a
    :class:`VaelabError` with the same one-line message (:func:`raise_user_error`). With
    ``remove_if_empty`` (a single run's dir this command created), a run dir that holds
    nothing but its config and the error is removed. Ctrl-C prints where
    it stopped, what is kept and how to go on, and exits with status 130."""
    error_file = Path(output_dir, ERROR_FILE) if output_dir is not None else None
    if error_file is not None:
        with contextlib.suppress(OSError):
            error_file.unlink()  # a stale error of an earlier attempt of this job
    try:
        with _user_environment():
            return task()
    except KeyboardInterrupt:
        if raise_errors:  # Python (a notebook) handles its own interrupt
            raise
        print(interrupted_line(), file=sys.stderr, flush=True)
        raise SystemExit(INTERRUPTED_EXIT_STATUS) from None
    except Exception as err:
        message = user_error_message(err)
        summary = message or f"{type(err).__name__}: {err}"
        not_recorded = None
        if error_file is not None and error_file.parent.is_dir():
            not_recorded = _record_error(error_file, summary)
        if not_recorded:
            print(f"vaelab: {not_recorded}", file=sys.stderr)
        if remove_if_empty and output_dir is not None:
            remove_failed_run_dir(output_dir)  # the error is on the terminal; nothing else was
        if raise_errors:
            raise_user_error(err)
        if in_sweep:
            print(
                f"vaelab: error in this job (recorded in {error_file}): {one_line(summary)}",
                file=sys.stderr,
            )
            return math.nan
        if message is None or traceback_requested():
            raise
        print(f"vaelab: error: {one_line(message)}", file=sys.stderr)
        raise SystemExit(1) from None
