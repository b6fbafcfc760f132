"""Run a console-script entry point in this process, as the shell would, and read the one
line it prints for a user error (for comparing the command line with the Python API)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import pytest
from hydra.core.global_hydra import GlobalHydra


def run_entry_point(main: Callable[[], object], argv: list[str], monkeypatch) -> None:
    """``main()`` with ``sys.argv = argv``; Hydra's global state and logging are undone after."""
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    GlobalHydra.instance().clear()
    handlers = logging.root.handlers[:]
    try:
        main()
    finally:
        GlobalHydra.instance().clear()
        for handler in logging.root.handlers:  # Hydra pointed the root logger at this test
            if handler not in handlers:
                handler.close()
        logging.root.handlers = handlers


def cli_error(main: Callable[[], object], argv: list[str], monkeypatch, capsys) -> str:
    """The message of the one ``vaelab: error: …`` line the entry point ends with."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        run_entry_point(main, argv, monkeypatch)
    assert stopped.value.code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if "vaelab: error:" in line]
    assert len(lines) == 1, lines
    return lines[0].split("vaelab: error: ", 1)[1]
