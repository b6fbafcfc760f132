"""A hand-made sweep job dir (its overrides, config and metrics.json, any of which may be
broken): shared by the tests of vaelab-report and of the sweep reader."""

from __future__ import annotations

from pathlib import Path

import yaml

from vaelab.run_files import CONFIG_FILE, METRICS_FILE


# -- vaelab-report reads what it can ---------------------------------------------------------
def sweep_job(root: Path, name: str, lr: float, metrics: str | None) -> Path:
    folder = root / name
    (folder / ".hydra").mkdir(parents=True)
    overrides = [f"optimizer.lr={lr}", "model.net.hidden_dims=[400,200]", "ckpt_path=null"]
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / CONFIG_FILE).write_text(yaml.safe_dump({"optimized_metric": "val/elbo"}))
    if metrics is not None:
        (folder / METRICS_FILE).write_text(metrics)
    return folder
