"""vaelab: a PyTorch Lightning + Hydra experiment framework for variational autoencoders.

From Python (the same code as ``vaelab-train``, ``vaelab-eval`` and ``vaelab-report``)::

    import vaelab

    run = vaelab.train("data=digits", "trainer.max_epochs=5")   # a Run, as vaelab-train does
    x, y = run.batch("test", 16)
    codes = run.encode(x).mean                                  # E_q[z|x]
    pictures = run.sample(16)                                   # E[x|z], z ~ p(z)
    numbers = run.evaluate(num_samples=1000)                    # vaelab-eval's metrics

``vaelab.load(<run dir or .ckpt>)`` opens a trained run, ``vaelab.load_sweep(<sweep dir>)`` a
sweep, ``vaelab.compose(*overrides)`` shows the config a run would get. Errors are the command
line's one-line messages, raised as :class:`VaelabError`. The names below are the public API;
they are imported on first use, so ``import vaelab`` stays light.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from vaelab.errors import VaelabError

if TYPE_CHECKING:
    from vaelab.api import Run, Sweep, compose, load, load_sweep, train

__version__ = "0.1.0"

__all__ = ["Run", "Sweep", "VaelabError", "compose", "load", "load_sweep", "train"]

#: the public names that live in vaelab.api (torch and Lightning are imported with them)
_FROM_API = frozenset(__all__) - {"VaelabError"}


class _Package(types.ModuleType):
    """``vaelab`` itself: a submodule named like a public function (``vaelab/train.py``, the
    module of ``vaelab-train``) does not replace the function as the package's attribute when
    it is imported; the module stays ``importlib.import_module("vaelab.train")``."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FROM_API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in _FROM_API:
        value = getattr(importlib.import_module("vaelab.api"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vaelab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
