"""A stand-in for a ``vaelab-train experiment=feature_classifier_mnist`` run: its config.yaml and
an untrained classifier's checkpoint, where a test needs a loadable classifier without training
one (the feature-perceptual loss's config option)."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.conftest import FAST, compose_config
from vaelab.builders import build_module, data_info_before_setup


def write_feature_classifier_run(run_dir: Path, data: str = "mnist") -> Path:
    """A classifier run dir for ``data`` (feature width 16, channels [4, 8]) at ``run_dir``."""
    cfg = compose_config(
        [
            *FAST,
            "experiment=feature_classifier_mnist",
            f"data={data}",
            "model.feature_dim=16",
            "model.channels=[4,8]",
        ],
        run_dir,
    )
    datamodule = instantiate(cfg.data)
    torch.manual_seed(0)
    module = build_module(cfg, datamodule.dims, data_info_before_setup(datamodule))
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": module.state_dict()}, run_dir / "checkpoints" / "last.ckpt")
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    return run_dir
