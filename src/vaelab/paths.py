"""Where the project lives, so configs and logs are found from any working directory."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "conf"


def export_project_root() -> None:
    """Expose the root to the configs as ``${oc.env:VAELAB_ROOT}`` (a user's value wins)."""
    os.environ.setdefault("VAELAB_ROOT", str(PROJECT_ROOT))
