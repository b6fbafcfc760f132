"""``vaelab-train``: fit a model with the composed config, test the best checkpoint.

Usage: ``vaelab-train [group=option ...] [key=value ...]`` (Hydra overrides), e.g.
``vaelab-train model.latent_dim=20 data=fashion_mnist``; ``--multirun`` sweeps.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from typing_extensions import override

from vaelab.atomic_io import DiskFullError, atomic_write_json, atomic_write_text
from vaelab.builders import (
    build_module,
    data_info_before_setup,
    instantiate_each,
    trainer_overrides,
)
from vaelab.callbacks.preemption import PreemptionCheckpoint
from vaelab.callbacks.silent_settings import SilentSettingsWarning
from vaelab.callbacks.step_hooks import skip_inherited_batch_hooks
from vaelab.checkpoints import (
    AtomicCheckpointIO,
    check_compatible,
    load_checkpoint,
    resume_point,
)
from vaelab.cli import hydra_entry_point, run_reporting_errors
from vaelab.config_checks import check_monitored_metrics, validate_config
from vaelab.console import in_multirun, silence_known_notices, tensorboard_command
from vaelab.errors import VaelabError
from vaelab.paths import CONFIG_DIR, export_project_root
from vaelab.precision import precision_overrides
from vaelab.run_files import CHECKPOINT_DIR, CONFIG_FILE, METRICS_FILE, TORN_SUFFIX
from vaelab.run_lock import run_dir_lock
from vaelab.threads import configure_threads, training_processes_per_node
from vaelab.utils.config_tree import print_run_config

RESOLVED_CONFIG_FILE = CONFIG_FILE


def _writable_output_dir(output_dir: Path) -> None:
    """Fail before any data is loaded if the run dir cannot take files."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = output_dir / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise VaelabError(
            f"cannot write to the run directory {output_dir} ({err.strerror}); "
            "free disk space or set paths.log_dir to a writable folder"
        ) from err


def _as_floats(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


def _continue_in_checkpoint_run_dir(cfg: DictConfig) -> None:
    """A ``ckpt_path`` inside ``<run>/checkpoints/`` moves the run's outputs back to ``<run>``,
    so TensorBoard and the checkpoints continue in the same folder."""
    if cfg.get("ckpt_path"):
        ckpt = Path(cfg.ckpt_path).expanduser().resolve()
        run_dir = ckpt.parent.parent
        if ckpt.parent.name == CHECKPOINT_DIR and (run_dir / RESOLVED_CONFIG_FILE).is_file():
            with open_dict(cfg):
                cfg.paths.output_dir = str(run_dir)


def _resume_from(cfg: DictConfig) -> Path | None:
    """The checkpoint to continue from: ``ckpt_path`` if given, else with ``resume=auto`` the
    newest checkpoint of this run dir that loads (a torn one is reported and skipped)."""
    if cfg.get("ckpt_path"):
        return Path(cfg.ckpt_path).expanduser().resolve()
    if cfg.get("resume", "auto") == "auto":
        point = resume_point(cfg.paths.output_dir)
        if point.torn:
            print(point.report(), file=sys.stderr, flush=True)
        return point.checkpoint
    return None


def _finished_metrics(cfg: DictConfig) -> dict[str, float] | None:
    """With ``resume=auto``, a run dir whose metrics.json exists has finished: skip it. An
    unreadable metrics.json (cut short by an older vaelab) is set aside and the run goes on:
    it resumes from its last checkpoint and writes the metrics again."""
    metrics_file = Path(cfg.paths.output_dir) / METRICS_FILE
    if cfg.get("resume", "auto") == "auto" and not cfg.get("ckpt_path") and metrics_file.is_file():
        try:
            metrics = json.loads(metrics_file.read_text())
            if isinstance(metrics, dict):
                _check_same_run(cfg)
                return metrics
            problem = "it holds no mapping of metric names to values"
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            problem = str(err)
        aside = metrics_file.with_name(metrics_file.name + TORN_SUFFIX)
        metrics_file.replace(aside)
        print(
            f"vaelab: warning: {metrics_file} is unreadable ({problem}); kept it as "
            f"{aside.name} and continuing the run, which writes it again",
            file=sys.stderr,
            flush=True,
        )
    return None


#: the parts of a config that make two runs the same experiment (a finished run dir is only
#: skipped for the run that made it)
RUN_IDENTITY = ("model", "data", "objective", "beta", "optimizer", "lr_scheduler", "seed")


def _check_same_run(cfg: DictConfig) -> None:
    """Refuse to report a finished run dir's metrics for a different run (a sweep re-launched
    into the same folder with other values, e.g. new Optuna trials numbered from 0 again)."""
    saved_file = Path(cfg.paths.output_dir) / RESOLVED_CONFIG_FILE
    if not saved_file.is_file():
        return
    try:
        saved = OmegaConf.to_container(OmegaConf.load(saved_file))
    except Exception:  # unreadable: nothing to compare; the metrics are the run's own
        return
    current = OmegaConf.to_container(cfg, resolve=True)
    differing = [key for key in RUN_IDENTITY if saved.get(key) != current.get(key)]
    if differing:
        raise VaelabError(
            f"{cfg.paths.output_dir} holds a finished run with other settings "
            f"({', '.join(differing)} differ from this run's); its metrics are not this run's. "
            "Use a new hydra.sweep.dir (or hydra.run.dir), or resume=never to overwrite it"
        )


class PrintConfigAtFitStart(L.Callback):
    """Prints the run's config (``print_config``) once fitting starts, after the data is set up
    and checked: errors found before that come first and alone (rank 0 only)."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            print_run_config(self.cfg, self.cfg.get("print_config", True))


def _write_metrics(output_dir: Path, metrics: dict[str, float]) -> None:
    """metrics.json, atomically; on a full disk the metrics are printed so none is lost."""
    try:
        atomic_write_json(output_dir / METRICS_FILE, metrics)
    except DiskFullError as err:
        print(json.dumps(metrics, indent=2, sort_keys=True))
        raise DiskFullError(
            err.path, err.needed, err.free, " (the metrics are printed above)"
        ) from err


def train(cfg: DictConfig) -> dict[str, float]:
    """Build data, model, callbacks, loggers and trainer from ``cfg``; fit; test; return the
    final metrics (also written to ``<run dir>/metrics.json``).

    Validates the config before any data is loaded; holds the run dir's lock for the whole
    run; resumes from ``ckpt_path`` or (with ``resume=auto``) from the run dir's newest
    checkpoint that loads; skips a run dir that already finished.
    """
    validate_config(cfg)
    _continue_in_checkpoint_run_dir(cfg)
    output_dir = Path(cfg.paths.output_dir)
    _writable_output_dir(output_dir)
    with run_dir_lock(output_dir):  # one process per run dir; a dead holder's is taken over
        return _train_in_locked_run_dir(cfg, output_dir)


def _train_in_locked_run_dir(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Everything :func:`train` does once the run dir is this process's."""
    silence_known_notices()
    configure_threads(
        cfg.get("threads", "auto"),
        training_processes_per_node(cfg.get("trainer")),
        int(OmegaConf.select(cfg, "data.num_workers", default=0) or 0),
    )
    finished = _finished_metrics(cfg)
    if finished is not None:
        print(
            f"Run {cfg.paths.output_dir} already finished (metrics.json exists); skipping it. "
            "Use resume=never to train it again."
        )
        return finished
    resume_from = _resume_from(cfg)
    if resume_from is None:
        atomic_write_text(output_dir / RESOLVED_CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    print(f"Run directory: {output_dir}")
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    model = build_module(cfg, datamodule.dims, data_info_before_setup(datamodule))
    check_monitored_metrics(cfg, model)
    if resume_from is not None:
        check_compatible(load_checkpoint(resume_from), model, resume_from)
        print(f"Resuming from {resume_from}")
    # the config is printed once the data is loaded (Lightning's prepare_data and setup run
    # first), so a missing or broken data set ends the run before it, in one line
    callbacks = skip_inherited_batch_hooks(
        [
            *instantiate_each(cfg.get("callbacks")),
            PrintConfigAtFitStart(cfg),
            SilentSettingsWarning(),
        ]
    )
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=instantiate_each(cfg.get("logger")) or False,
        plugins=[AtomicCheckpointIO()],
        **precision_overrides(cfg.trainer),
        **trainer_overrides(model),
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    metrics = _as_floats(trainer.callback_metrics)
    if any(isinstance(c, PreemptionCheckpoint) and c.preempted for c in callbacks):
        return {**metrics, "preempted": 1.0}  # unfinished: no test, no metrics.json

    if cfg.get("test", True):
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint is not None else ""
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update(_as_floats(trainer.callback_metrics))

    if trainer.is_global_zero:  # under DDP every rank gets here with the same synced metrics
        _write_metrics(output_dir, metrics)
        if in_multirun():  # the sweep's summary prints the TensorBoard command once
            print(f"Job finished: {output_dir}")
        else:
            print(
                f"Run finished: {output_dir}\nOpen TensorBoard with:  "
                f"{tensorboard_command(cfg.paths.log_dir)}"
            )
    return metrics


def optimized_value(metrics: dict[str, float], name: str | None) -> float | None:
    """The value a sweeper optimises; NaN if the run did not log it."""
    if not name:
        return None
    return metrics.get(name, math.nan)


export_project_root()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``optimized_metric`` for sweepers (Optuna)."""
    hydra_cfg = HydraConfig.get()
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    metrics = run_reporting_errors(lambda: train(cfg), hydra_cfg.runtime.output_dir, in_sweep)
    if isinstance(metrics, float):  # a failed sweep job
        return metrics
    return optimized_value(metrics, cfg.get("optimized_metric"))


#: ``vaelab-train``: Hydra's own set-up errors (e.g. an unwritable run dir) end in one line too
main = hydra_entry_point(hydra_main, config_name="train")

if __name__ == "__main__":
    main()
