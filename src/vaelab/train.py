"""``vaelab-train``: fit a model with the composed config, test the best checkpoint.

Usage: ``vaelab-train [group=option ...] [key=value ...]`` (Hydra overrides), e.g.
``vaelab-train model.latent_dim=20 data=fashion_mnist``; ``--multirun`` sweeps.
"""

from __future__ import annotations

import json
import math
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    TrainingProgress,
    best_checkpoint,
    check_compatible,
    checkpoint_to_continue,
    load_checkpoint,
    resume_point,
)
from vaelab.cli import (
    holds_only_disposable_files,
    hydra_entry_point,
    launch,
    remove_failed_run_dir,
    run_reporting_errors,
)
from vaelab.config_checks import check_monitored_metrics, validate_config
from vaelab.console import in_multirun, silence_known_notices, tensorboard_command
from vaelab.errors import VaelabError, first_line
from vaelab.interruption import enter_stage
from vaelab.paths import CONFIG_DIR, export_project_root
from vaelab.precision import precision_overrides
from vaelab.run_config import (
    Reconciled,
    differing_keys,
    override_keys,
    reconcile,
    refusal,
    register_run_name_resolver,
)
from vaelab.run_files import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LAST_CHECKPOINT,
    METRICS_FILE,
    TORN_SUFFIX,
)
from vaelab.run_history import keep_finished_run
from vaelab.run_lock import run_dir_lock
from vaelab.threads import configure_threads, training_processes_per_node
from vaelab.utils.config_tree import default_config, print_run_config

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
    """``ckpt_path`` may name a run dir (its newest checkpoint is used) or a ``.ckpt`` file; one
    inside ``<run>/checkpoints/`` moves the run's outputs back to ``<run>``, so TensorBoard
    and the checkpoints continue in the same folder."""
    if cfg.get("init_from") and cfg.get("ckpt_path"):
        raise VaelabError(
            "ckpt_path= continues a run in its own folder and init_from= starts a new run from "
            "a checkpoint's weights; pass only one of them"
        )
    if cfg.get("ckpt_path"):
        ckpt = checkpoint_to_continue(cfg.ckpt_path)
        run_dir = ckpt.parent.parent
        with open_dict(cfg):
            cfg.ckpt_path = str(ckpt)
            if ckpt.parent.name == CHECKPOINT_DIR and (run_dir / RESOLVED_CONFIG_FILE).is_file():
                cfg.paths.output_dir = str(run_dir)


def _resume_from(cfg: DictConfig) -> Path | None:
    """The checkpoint to continue from: ``ckpt_path`` if given, else with ``resume=auto`` the
    newest checkpoint of this run dir that loads (a torn one is reported and skipped)."""
    if cfg.get("ckpt_path"):
        return Path(cfg.ckpt_path).expanduser().resolve()
    if cfg.get("resume", "auto") in ("auto", "force"):
        point = resume_point(cfg.paths.output_dir)
        if point.torn:
            print(point.report(), file=sys.stderr, flush=True)
        return point.checkpoint
    return None


def _finished_metrics(cfg: DictConfig) -> dict[str, float] | None:
    """The metrics of a run dir that finished (its metrics.json), unless ``resume=never``. An
    unreadable metrics.json (cut short by a full disk) is set aside and the run goes on: it is
    completed from its checkpoint and writes the metrics again."""
    metrics_file = Path(cfg.paths.output_dir) / METRICS_FILE
    if cfg.get("resume", "auto") == "never" or not metrics_file.is_file():
        return None
    try:
        metrics = json.loads(metrics_file.read_text())
        if isinstance(metrics, dict):
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


def _explicit_keys(cfg: DictConfig) -> list[str]:
    """The keys this command sets itself: its overrides' keys, and every key where its
    config differs from the defaults (a group option chosen on the command line)."""
    if not HydraConfig.initialized():
        return []
    hydra_cfg = HydraConfig.get()
    keys = override_keys(hydra_cfg.overrides.task)
    try:
        defaults = default_config(hydra_cfg.job.config_name or "train")
    except Exception:  # the overrides' keys alone still hold every key=value the user set
        return keys
    ours = OmegaConf.to_container(cfg, resolve=False)
    return [*keys, *differing_keys(OmegaConf.to_container(defaults, resolve=False), ours)]


def _holds_a_run(run_dir: Path) -> bool:
    """True if the run dir holds results to lose: a checkpoint or metrics."""
    return (run_dir / METRICS_FILE).exists() or any((run_dir / CHECKPOINT_DIR).glob("*.ckpt"))


def _take_the_runs_config(cfg: DictConfig, output_dir: Path) -> tuple[DictConfig, Reconciled]:
    """A command that continues a run takes the run's config for every key it does not set;
    a key it sets to another value is refused (unless it only extends the run, or
    ``resume=force``). See :mod:`vaelab.run_config`."""
    saved_file = output_dir / RESOLVED_CONFIG_FILE
    nothing = Reconciled({})  # not continuing a run: the command's config as it is
    if cfg.get("resume", "auto") == "never" or not saved_file.is_file():
        return cfg, nothing
    if not (cfg.get("ckpt_path") or _holds_a_run(output_dir)):
        return cfg, nothing
    try:
        saved = OmegaConf.to_container(OmegaConf.load(saved_file))
    except Exception as err:
        raise VaelabError(
            f"the run's config {saved_file} is unreadable ({first_line(err)}); restore it "
            "(its .hydra/config.yaml holds a copy), or start a new run with init_from=<its "
            "checkpoint>"
        ) from err
    command = OmegaConf.to_container(cfg, resolve=True)
    finished = (output_dir / METRICS_FILE).exists()  # readable or not: only extended, never cut
    result = reconcile(command, saved, _explicit_keys(cfg), finished)
    if result.conflicts and cfg.get("resume") != "force":
        raise refusal(str(output_dir), result.conflicts, cfg.get("ckpt_path"))
    return OmegaConf.create(result.config), result


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
    enter_stage(
        "start-up", kept=lambda: _kept_in(output_dir), resume=lambda: _resume_command(output_dir)
    )
    cfg, reconciled = _take_the_runs_config(cfg, output_dir)
    finished = _finished_metrics(cfg)
    changed = bool(reconciled.conflicts or reconciled.extended)
    if finished is not None:
        if not changed:
            print(
                f"Run {output_dir} already finished (metrics.json exists); skipping it and "
                "leaving its files as they are. To train it further, pass a larger "
                "trainer.max_epochs with resume=force; to start a new run from its weights, "
                f"init_from={output_dir} (without ckpt_path=)"
            )
            return finished
        if cfg.get("resume") != "force":
            extended = "; ".join(str(d) for d in reconciled.extended)
            raise VaelabError(
                f"the run in {output_dir} has finished ({extended}); extending a finished run "
                "must be asked for: add resume=force (its checkpoints, metrics.json and eval/ "
                "are kept beside the new ones), or start a new run from its weights with "
                f"init_from={output_dir} (without ckpt_path=)"
            )
    resume_from = _resume_from(cfg)
    if resume_from is None:
        if finished is not None:  # resume=force on a finished run without checkpoints
            print(f"Starting the run over; kept: {keep_finished_run(output_dir, 0).describe()}")
        atomic_write_text(output_dir / RESOLVED_CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    print(f"Run directory: {output_dir}")
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    enter_stage("loading data")
    datamodule = instantiate(cfg.data)
    model = build_module(cfg, datamodule.dims, data_info_before_setup(datamodule))
    check_monitored_metrics(cfg, model)
    checkpoint = None
    if resume_from is not None:
        checkpoint = load_checkpoint(resume_from)
        check_compatible(checkpoint, model, resume_from)
        if finished is not None:  # resume=force: what the run finished with is kept
            kept = keep_finished_run(output_dir, TrainingProgress.of(checkpoint).epochs)
            print(f"Extending the finished run {output_dir}; kept: {kept.describe()}")
        if changed:
            config_text = OmegaConf.to_yaml(cfg, resolve=True)
            atomic_write_text(output_dir / RESOLVED_CONFIG_FILE, config_text)
        print(f"Resuming from {resume_from}")
    elif cfg.get("init_from"):
        _initialise_from(model, cfg.init_from)
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
    if checkpoint is not None and resume_from is not None and _training_done(checkpoint, cfg):
        return _complete_finished_training(cfg, trainer, model, datamodule, checkpoint, resume_from)
    enter_stage("training")
    _fit(trainer, model, datamodule, resume_from)
    metrics = _as_floats(trainer.callback_metrics)
    if any(isinstance(c, PreemptionCheckpoint) and c.preempted for c in callbacks):
        return {**metrics, "preempted": 1.0}  # unfinished: no test, no metrics.json

    if cfg.get("test", True):
        enter_stage("testing")
        checkpoint_callback = trainer.checkpoint_callback
        best = checkpoint_callback.best_model_path if checkpoint_callback is not None else ""
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update(_as_floats(trainer.callback_metrics))
    return _finish(cfg, trainer, output_dir, metrics)


def _finish(
    cfg: DictConfig, trainer: L.Trainer, output_dir: Path, metrics: dict[str, float]
) -> dict[str, float]:
    """Write metrics.json (rank 0) and say where the run is."""
    enter_stage("writing metrics.json")
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


def _fit(trainer: L.Trainer, model, datamodule, resume_from: Path | None) -> None:
    """``trainer.fit``; Ctrl-C (which Lightning turns into ``exit(1)`` after it shut down)
    reaches the entry point as a KeyboardInterrupt, with Ctrl-C working again."""
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    except SystemExit as stop:
        if trainer.interrupted and isinstance(stop.__context__, KeyboardInterrupt):
            signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignored it
            raise KeyboardInterrupt from None
        raise


def _training_done(checkpoint: dict, cfg: DictConfig) -> bool:
    trainer_cfg = cfg.trainer
    return TrainingProgress.of(checkpoint).reached(
        trainer_cfg.get("max_epochs"), trainer_cfg.get("max_steps")
    )


def _complete_finished_training(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule,
    checkpoint: dict,
    last: Path,
) -> dict[str, float]:
    """A run whose training finished but whose metrics.json is missing (a full disk or a kill
    at the very end): no training; validate its last checkpoint, test its best one, write
    metrics.json."""
    best = best_checkpoint(checkpoint, last)
    print(
        f"vaelab: warning: the run in {cfg.paths.output_dir} had finished training "
        f"({TrainingProgress.of(checkpoint).epochs} epochs) but has no readable metrics.json; "
        f"completing it without training: validating {last.name}, testing {best.name}",
        file=sys.stderr,
        flush=True,
    )
    enter_stage("validating the finished run")
    trainer.validate(model, datamodule=datamodule, ckpt_path=last, weights_only=True)
    metrics = _as_floats(trainer.callback_metrics)
    if cfg.get("test", True):
        enter_stage("testing")
        trainer.test(model, datamodule=datamodule, ckpt_path=best, weights_only=True)
        metrics.update(_as_floats(trainer.callback_metrics))
    return _finish(cfg, trainer, Path(cfg.paths.output_dir), metrics)


def _initialise_from(model: L.LightningModule, source: str) -> None:
    """A new run that starts from another run's weights (only the weights: a fresh optimizer,
    step 0): ``init_from=<.ckpt or run dir>``; a run dir gives its best checkpoint."""
    path = checkpoint_to_continue(source, key="init_from")
    checkpoint = load_checkpoint(path)
    if path.name == LAST_CHECKPOINT:
        path = best_checkpoint(checkpoint, path)
        checkpoint = load_checkpoint(path)
    check_compatible(checkpoint, model, path)
    model.load_state_dict(checkpoint["state_dict"])
    print(f"Initialised the weights from {path}")


def _kept_in(output_dir: Path) -> str:
    """What an interrupted run leaves: its newest checkpoint, else its folder."""
    last = output_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
    if last.is_file():
        return f"{last} (the weights at the end of the last epoch it finished)"
    if (output_dir / RESOLVED_CONFIG_FILE).is_file():
        return f"{output_dir}/{RESOLVED_CONFIG_FILE} (no checkpoint yet)"
    return ""


def _resume_command(output_dir: Path) -> str:
    """How an interrupted run goes on: from its checkpoint, or (none yet) from the start."""
    if in_multirun():
        return "the same vaelab-train --multirun command (resume=auto continues each job)"
    if not (output_dir / CHECKPOINT_DIR / LAST_CHECKPOINT).is_file():
        return "the same command (nothing was trained yet)"
    return f"vaelab-train ckpt_path={output_dir}"


def optimized_value(metrics: dict[str, float], name: str | None) -> float | None:
    """The value a sweeper optimises; NaN if the run did not log it."""
    if not name:
        return None
    return metrics.get(name, math.nan)


export_project_root()
register_run_name_resolver()


def run_job(cfg: DictConfig, raise_errors: bool = False) -> dict[str, float] | float:
    """One job of ``vaelab-train`` in the run dir Hydra made: :func:`train` with its errors
    recorded in ``error.txt`` and reported as one line (or, with ``raise_errors``, raised);
    a failed job of a sweep returns NaN."""
    hydra_cfg = HydraConfig.get()
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    hydra_dir = Path(hydra_cfg.runtime.output_dir)
    # a single run's folder Hydra just created (nothing but .hydra/ and its log in it): removed
    # if the run fails before it holds anything, or if the run went on in another run's folder
    created_now = (
        not in_sweep
        and not (hydra_dir / RESOLVED_CONFIG_FILE).exists()
        and holds_only_disposable_files(hydra_dir)
    )
    try:
        return run_reporting_errors(
            lambda: train(cfg), hydra_dir, in_sweep, raise_errors, remove_if_empty=created_now
        )
    finally:  # also after Ctrl-C
        if created_now and Path(cfg.paths.output_dir).resolve() != hydra_dir.resolve():
            remove_failed_run_dir(hydra_dir)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``optimized_metric`` for sweepers (Optuna)."""
    metrics = run_job(cfg)
    if isinstance(metrics, float):  # a failed sweep job
        return metrics
    return optimized_value(metrics, cfg.get("optimized_metric"))


@dataclass
class FinishedRun:
    """What :func:`train_in_process` returns: the run dir and its final metrics."""

    output_dir: Path
    metrics: dict[str, float]


def train_in_process(overrides: Sequence[str]) -> FinishedRun:
    """``vaelab-train <overrides>`` in this process, for the Python API: Hydra composes the
    config, makes the run dir with its ``.hydra/`` files and log, and :func:`run_job` trains
    there, exactly as from the command line; a user error is raised as :class:`VaelabError`
    (with the command line's one-line message) instead of printed."""
    outcome: dict[str, Any] = {}

    def python_job(cfg: DictConfig) -> None:  # defined here: Hydra names the job "train"
        try:
            metrics = run_job(cfg, raise_errors=True)
            # read after training: a ckpt_path moves the run back into its own run dir
            outcome["run"] = FinishedRun(Path(cfg.paths.output_dir), metrics)
        except Exception as err:  # raised below, once Hydra has restored its state
            outcome["error"] = err

    launch(python_job, "train", overrides)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["run"]


#: ``vaelab-train``: Hydra's own set-up errors (e.g. an unwritable run dir) end in one line too
main = hydra_entry_point(hydra_main, config_name="train")

if __name__ == "__main__":
    main()
