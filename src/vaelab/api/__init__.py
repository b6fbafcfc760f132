"""vaelab from Python: compose a config, train, load a run or a sweep and explore it.

The functions and classes are re-exported by :mod:`vaelab` (``vaelab.train``, ``vaelab.load``,
…); they call the same functions as ``vaelab-train``, ``vaelab-eval`` and ``vaelab-report``,
so a run trained here is the run the command line would train, and an error is the command
line's one-line message, raised as :class:`~vaelab.errors.VaelabError`.
"""

from __future__ import annotations

from vaelab.api.compose import compose
from vaelab.api.run import Run, load, train
from vaelab.api.sweep import Sweep, load_sweep

__all__ = ["Run", "Sweep", "compose", "load", "load_sweep", "train"]
