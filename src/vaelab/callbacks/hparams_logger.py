"""TensorBoard HPARAMS tab: a run's parameters next to its final metrics, comparable across runs.

At the start of fitting, every TensorBoard logger's run gets a session-start record with this
run's parameter values (config-group choices, key parameters and the command-line overrides,
which in a sweep are the swept parameters); at the end a session-end record.

No run writes an experiment summary: TensorBoard takes the experiment summary of an arbitrary
run when any has one, so with ``--logdir logs`` the parameters of one run (often not of the
sweep one looks at) decided the columns, and the swept ``beta.value`` went missing. Without
one, the plugin builds the experiment from all runs: the union of their parameters, those
whose value differs between runs listed (and ticked) first, and every scalar tag as a metric
column, each showing the run's *last logged value* (``val/elbo`` after the last epoch,
``test/*`` after testing, ``eval/*`` once ``vaelab-eval`` has run).

The records go through the writer's public ``file_writer``. Lightning's
``TensorBoardLogger.log_hyperparams(params, metrics)`` is not used: it logs ``metrics`` as
scalars at a step (a bogus point on the curves) and always writes an experiment summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from typing_extensions import override

from vaelab.evaluation.sweep import parse_override

#: settings that say how a run is executed or logged, not what is trained: not hyperparameters
NOT_HYPERPARAMETERS = (
    "hydra",
    "paths",
    "callbacks",
    "logger",
    "print_config",
    "task_name",
    "data.download",
    "data.num_workers",
    "data.pin_memory",
    "trainer.enable_",
    "trainer.accelerator",
    "trainer.devices",
)
#: the metrics the session records name (TensorBoard's columns come from every scalar tag)
DEFAULT_METRICS = (
    "val/elbo",
    "val/kl",
    "val/recon",
    "test/elbo",
    "test/kl",
    "test/recon",
    "eval/iw_nll",
    "eval/bits_per_dim",
    "eval/active_units",
)


def _plain(value: object) -> int | float | str | bool:
    """A value the hparams plugin can store (numbers, strings and booleans)."""
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def hyperparameters(
    overrides: Sequence[str],
    params: Mapping[str, object],
    choices: Mapping[str, object] | None = None,
) -> dict:
    """The run's parameters: the config-group ``choices`` (e.g. likelihood: bernoulli) and
    ``params`` (always shown), updated with the command-line overrides (what a sweep varies);
    Hydra's own groups and settings are left out."""
    values = {
        group: _plain(option)
        for group, option in (choices or {}).items()
        if option is not None
        and group not in ("paths", "callbacks", "logger", "trainer")
        and not str(group).startswith("hydra")
    }
    values.update({key: _plain(value) for key, value in params.items() if value is not None})
    for hydra_override in overrides:
        parsed = parse_override(str(hydra_override))
        if parsed is not None and not parsed[0].startswith(NOT_HYPERPARAMETERS):
            values[parsed[0]] = _plain(parsed[1])
    return values


class HParamsLogger(L.Callback):
    """Declares the run's hyperparameters — ``choices`` (``hydra.runtime.choices``), ``params``
    and ``overrides`` (``hydra.overrides.task``) — and ``metrics`` as its metric columns, for
    every TensorBoard logger."""

    def __init__(
        self,
        overrides: Sequence[str] | None = None,
        params: Mapping[str, object] | None = None,
        choices: Mapping[str, object] | None = None,
        metrics: Sequence[str] = DEFAULT_METRICS,
    ) -> None:
        self.hparams = hyperparameters(
            list(overrides or []), dict(params or {}), dict(choices or {})
        )
        self.metrics = list(metrics)
        self._session_end = None

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not self.hparams:
            return
        from torch.utils.tensorboard.summary import hparams

        _experiment, session_start, self._session_end = hparams(
            self.hparams, dict.fromkeys(self.metrics, 0.0)
        )
        self._write(trainer, session_start)

    @override
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Mark the session finished (a crashed run keeps no end record)."""
        if trainer.is_global_zero and self._session_end is not None:
            self._write(trainer, self._session_end)

    @staticmethod
    def _write(trainer: L.Trainer, *summaries) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                writer = logger.experiment.file_writer
                for summary in summaries:
                    writer.add_summary(summary)
                writer.flush()

    def state_dict(self) -> dict:
        return {}
