"""Where the configs and the project live, so they are found from any working directory.

From a checkout (or an editable install of one) the configs are the project's top-level
conf/ and the project root is the checkout. From an installed wheel the configs are the copy
it carries (vaelab/conf, put there by setup.py) and the project root, under which logs/ and
data/ go, is the working directory (override with VAELAB_ROOT)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: src/vaelab → the checkout, if vaelab runs from one
CHECKOUT_ROOT = PACKAGE_DIR.parents[1]
RUNS_FROM_CHECKOUT = (CHECKOUT_ROOT / "pyproject.toml").is_file() and (
    CHECKOUT_ROOT / "conf" / "train.yaml"
).is_file()

PROJECT_ROOT = CHECKOUT_ROOT if RUNS_FROM_CHECKOUT else Path.cwd()
CONFIG_DIR = CHECKOUT_ROOT / "conf" if RUNS_FROM_CHECKOUT else PACKAGE_DIR / "conf"


def export_project_root() -> None:
    """Expose the root to the configs as ``${oc.env:VAELAB_ROOT}`` (a user's value wins)."""
    os.environ.setdefault("VAELAB_ROOT", str(PROJECT_ROOT))
