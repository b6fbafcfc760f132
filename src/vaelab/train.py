"""``vaelab-train``: fit a model with the composed config, test the best checkpoint.

Usage: ``vaelab-train [group=option ...] [key=value ...]`` (Hydra overrides), e.g.
``vaelab-train model.latent_dim=20 data=fashion_mnist``; ``--multirun`` sweeps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vaelab.builders import build_module, instantiate_each
from vaelab.cli import run_reporting_errors
from vaelab.errors import VaelabError
from vaelab.paths import CONFIG_DIR, export_project_root
from vaelab.utils.config_tree import print_config_tree

METRICS_FILE = "metrics.json"
RESOLVED_CONFIG_FILE = "config.yaml"


def _writable_output_dir(output_dir: Path) -> None:
    """Fail before any data is loaded if the run dir cannot take files."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = output_dir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise VaelabError(f"cannot write to the run directory {output_dir} ({err.strerror}); "
                          "free disk space or set paths.log_dir to a writable folder") from err


def _as_floats(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


def train(cfg: DictConfig) -> dict[str, float]:
    """Build data, model, callbacks, loggers and trainer from ``cfg``; fit; test; return the
    final metrics (also written to ``<run dir>/metrics.json``)."""
    output_dir = Path(cfg.paths.output_dir)
    _writable_output_dir(output_dir)
    if cfg.get("print_config", True):
        print_config_tree(cfg)
    OmegaConf.save(cfg, output_dir / RESOLVED_CONFIG_FILE, resolve=True)
    print(f"Run directory: {output_dir}")
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    model = build_module(cfg, datamodule.dims)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=instantiate_each(cfg.get("callbacks")),
                                     logger=instantiate_each(cfg.get("logger")) or False)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = _as_floats(trainer.callback_metrics)

    if cfg.get("test", True):
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint is not None else ""
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update(_as_floats(trainer.callback_metrics))

    (output_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True))
    print(f"Run finished: {output_dir}\nOpen TensorBoard with:  tensorboard --logdir "
          f"{cfg.paths.log_dir}")
    return metrics


def optimized_value(metrics: dict[str, float], name: str | None) -> float | None:
    """The value a sweeper optimises; NaN if the run did not log it."""
    if not name:
        return None
    return metrics.get(name, math.nan)


export_project_root()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``optimized_metric`` for sweepers (Optuna)."""
    output_dir = HydraConfig.get().runtime.output_dir
    metrics = run_reporting_errors(lambda: train(cfg), output_dir)
    return optimized_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
