"""vaelab's public API as a whole: the names ``vaelab.__all__`` promises, what each is, and
``import vaelab`` staying light (the functions import torch and Lightning on first use)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import vaelab

#: the stable public API: a name may be added here, never removed (issue 26)
PUBLIC_NAMES = ["Run", "Sweep", "VaelabError", "compose", "load", "load_sweep", "train"]


def test_every_public_name_is_listed_and_there():
    missing = sorted(set(PUBLIC_NAMES) - set(vaelab.__all__))
    assert not missing, f"{missing} left vaelab.__all__: the public API is stable"
    for name in vaelab.__all__:
        assert getattr(vaelab, name) is not None, name
        assert getattr(vaelab, name).__doc__, f"vaelab.{name} has no docstring"
    assert inspect.isclass(vaelab.Run)
    assert inspect.isclass(vaelab.Sweep)
    assert issubclass(vaelab.VaelabError, Exception)
    assert vaelab.VaelabError is importlib.import_module("vaelab.errors").VaelabError
    signature = inspect.signature(vaelab.train)
    assert list(signature.parameters) == ["overrides", "output_dir"]
    assert list(inspect.signature(vaelab.load).parameters) == ["path", "device"]
    assert "config" in inspect.signature(vaelab.compose).parameters


def test_train_is_the_function_even_after_the_cli_module_is_imported():
    module = importlib.import_module("vaelab.train")  # vaelab-train's module
    assert callable(vaelab.train)
    assert not inspect.ismodule(vaelab.train)
    assert inspect.ismodule(module)
    assert hasattr(module, "main")
    from vaelab import train

    assert train is vaelab.train


def test_import_vaelab_does_not_import_torch():
    code = "import sys, vaelab; print('torch' in sys.modules, 'lightning' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
