"""A hand-made sweep of real digits models for UDR (vaelab-report, evaluation/sweep_udr): each job
dir holds what vaelab-train leaves (overrides, the resolved config.yaml, metrics.json and a
checkpoint), the model built from the composed config with its seed's initial weights, so no
training is needed: shared by the tests of the report and of the sweep reader's UDR."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.conftest import FAST, compose_config
from vaelab.builders import build_module, data_info_before_setup
from vaelab.run_files import CHECKPOINT_DIR, CONFIG_FILE, LAST_CHECKPOINT, METRICS_FILE

#: how much the untrained encoder's last layer is scaled up
CODE_SPREAD = 30.0


def udr_job(root: Path, name: str, overrides: list[str], seed: int) -> Path:
    """Job ``name`` of the sweep at ``root``: ``data=digits`` (model=mlp) with ``overrides``
    and ``seed``, its model initialised from that seed and saved as its checkpoint. The
    encoder's last layer is scaled up so that its codes spread over the data (an untrained
    encoder's stay near the prior's mean, all latents uninformative to UDR's KL filter)."""
    folder = root / name
    swept = [*overrides, f"seed={seed}"]
    cfg = compose_config([*FAST, "data=digits", *swept], folder)
    (folder / ".hydra").mkdir(parents=True, exist_ok=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(swept))
    (folder / CONFIG_FILE).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (folder / METRICS_FILE).write_text(json.dumps({"val/elbo": -40.0 - seed}))
    datamodule = instantiate(cfg.data)
    torch.manual_seed(seed)
    module = build_module(cfg, datamodule.dims, data_info_before_setup(datamodule))
    with torch.no_grad():
        module.model.encoder[-1].weight.mul_(CODE_SPREAD)
    (folder / CHECKPOINT_DIR).mkdir()
    torch.save(
        {"state_dict": module.state_dict(), "global_step": 0, "epoch": 0},
        folder / CHECKPOINT_DIR / LAST_CHECKPOINT,
    )
    return folder
