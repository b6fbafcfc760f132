"""A run directory belongs to its config: what a command that continues a run may change.

A run dir's ``config.yaml`` is the config its checkpoints were trained with. A command that
continues the run (``ckpt_path=<run>/checkpoints/last.ckpt``, ``ckpt_path=<run dir>``, or a
relaunch with ``resume=auto`` into a run dir that holds checkpoints or metrics) takes that
config for every key the command does not set itself, not the command's defaults. A key the
command sets to another value than the run's is refused (:func:`reconcile` lists them), except

- :data:`RUN_MECHANICS`: where files are, how the run is shown and resumed; they never change
  what is trained, so the command's values are taken as they are;
- :data:`EXTENDING_KEYS`: a larger ``trainer.max_epochs``/``max_steps``/``max_time`` only
  extends the run; a run that has not finished may also be given a smaller one (it ends
  sooner; nothing it wrote is lost).

``resume=force`` accepts every difference (the command's values win).

:func:`run_name` names a run after its task and the overrides that change it (the
``vaelab_run_name`` resolver; TensorBoard shows each run under that name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf

from vaelab.errors import VaelabError

#: keys (and the subtrees under them) that only say where files are and how the run is shown
#: or continued: taken from the command, never compared with the run's config
RUN_MECHANICS = (
    "paths",
    "ckpt_path",
    "resume",
    "init_from",
    "print_config",
    "threads",
    "test",
    "task_name",
    "optimized_metric",
    "data.data_dir",
    "data.download",
    "data.num_workers",
    "callbacks.progress_bar",
    "trainer.accelerator",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.limit_test_batches",
)
#: keys whose larger value only extends the run (-1 or null: no limit, the largest)
EXTENDING_KEYS = ("trainer.max_epochs", "trainer.max_steps", "trainer.max_time")
#: group overrides that place values anywhere in the config (``# @package _global_``)
GLOBAL_GROUPS = ("experiment", "hparams_search")


@dataclass(frozen=True)
class Difference:
    """A key whose value the command sets to another value than the run's config holds."""

    key: str
    run_value: Any
    command_value: Any

    def __str__(self) -> str:
        return f"{self.key}: {_short(self.run_value)} in the run, {_short(self.command_value)} now"


@dataclass
class Reconciled:
    """The config a continued run uses, and what the command changed."""

    config: dict[str, Any]
    conflicts: list[Difference] = field(default_factory=list)
    extended: list[Difference] = field(default_factory=list)


def _short(value: Any, limit: int = 60) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _joined(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _related(key: str, prefixes: Iterable[str]) -> bool:
    """True if ``key`` is one of ``prefixes``, lies under one, or holds one."""
    return any(
        key == p or key.startswith(p + ".") or p.startswith(key + ".") for p in prefixes if p
    )


def _within(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def override_keys(overrides: Iterable[str]) -> list[str]:
    """The config keys (or groups) a list of Hydra overrides sets: ``+model.x=1`` → model.x."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [override.key_or_group for override in parsed]


def differing_keys(left: Any, right: Any, prefix: str = "") -> list[str]:
    """The keys where two config trees differ: leaves, or whole nodes whose ``_target_``
    differs or that only one side has."""
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        if left.get("_target_") != right.get("_target_"):
            return [prefix]
        keys: list[str] = []
        for key in [*left, *(k for k in right if k not in left)]:
            if key not in left or key not in right:
                keys.append(_joined(prefix, str(key)))
            else:
                keys.extend(differing_keys(left[key], right[key], _joined(prefix, str(key))))
        return keys
    return [] if left == right else [prefix]


def _get(tree: Mapping[str, Any], key: str, default: Any = None) -> Any:
    node: Any = tree
    for part in key.split(".") if key else []:
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


_MISSING = object()


def _set(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _no_limit(value: Any) -> bool:
    return value is None or value == -1


def extends(key: str, run_value: Any, command_value: Any) -> bool:
    """True if ``command_value`` of an extending key is at least the run's (no limit counts
    as the largest); ``max_time`` strings are compared as given only when equal."""
    if key not in EXTENDING_KEYS:
        return False
    if _no_limit(command_value):
        return True
    if _no_limit(run_value):
        return False
    try:
        return float(command_value) >= float(run_value)
    except (TypeError, ValueError):
        return False


def reconcile(
    command: Mapping[str, Any],
    run: Mapping[str, Any],
    explicit: Iterable[str],
    finished: bool = True,
) -> Reconciled:
    """The config for continuing ``run`` (its saved config) with ``command`` (the composed
    config of this command), ``explicit`` being the keys the command sets itself.

    A key the command does not set takes the run's value; run mechanics take the command's;
    an explicit difference is a conflict unless it extends the run (or, for a run that has
    not ``finished``, changes how long it trains)."""
    explicit = list(explicit)
    run = relocated(run, _get(run, "paths.output_dir"), _get(command, "paths.output_dir"))
    explicit_everything = any(key in GLOBAL_GROUPS for key in explicit)
    config = _deep_copy(command)
    result = Reconciled(config)
    for key in differing_keys(run, command):
        if _within(key, RUN_MECHANICS):
            continue
        run_value = _get(run, key, _MISSING)
        command_value = _get(command, key, _MISSING)
        if not (explicit_everything or _related(key, explicit)):
            if run_value is not _MISSING:  # a key the run lacks (a newer default) stays
                _set(config, key, _deep_copy(run_value))
            continue
        difference = Difference(
            key,
            None if run_value is _MISSING else run_value,
            None if command_value is _MISSING else command_value,
        )
        if extends(key, run_value, command_value) or (key in EXTENDING_KEYS and not finished):
            result.extended.append(difference)
        else:
            result.conflicts.append(difference)
    return result


def relocated(tree: Any, old_dir: Any, new_dir: Any) -> Any:
    """``tree`` with every path under ``old_dir`` (the run dir when the run was saved) moved
    under ``new_dir``: a run dir that was moved or copied keeps writing into itself."""
    if not (isinstance(old_dir, str) and isinstance(new_dir, str)) or old_dir == new_dir:
        return tree
    if isinstance(tree, Mapping):
        return {k: relocated(v, old_dir, new_dir) for k, v in tree.items()}
    if isinstance(tree, list):
        return [relocated(v, old_dir, new_dir) for v in tree]
    if isinstance(tree, str) and (tree == old_dir or tree.startswith(old_dir.rstrip("/") + "/")):
        return new_dir + tree[len(old_dir) :]
    return tree


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def refusal(run_dir: str, conflicts: list[Difference], checkpoint: str | None) -> VaelabError:
    """The one-line refusal: the differences and the two ways forward."""
    shown = "; ".join(str(d) for d in conflicts[:4])
    if len(conflicts) > 4:
        shown += f"; and {len(conflicts) - 4} more"
    source = checkpoint or f"{run_dir}/checkpoints/last.ckpt"
    return VaelabError(
        f"the run in {run_dir} was trained with another config than this command's ({shown}); "
        f"a run dir keeps the config it was started with. Either start a new run from its "
        f"weights with init_from={source} (and without ckpt_path=), or continue it with "
        "these values anyway with resume=force"
    )


#: the longest run name (a folder name: file systems allow 255 bytes)
RUN_NAME_LIMIT = 150
RUN_NAME_RESOLVER = "vaelab_run_name"


def run_name(task_name: str) -> str:
    """``<task>`` and the command-line overrides that change the run, e.g.
    ``train,model.latent_dim=20,optimizer.lr=3e-4``: the name TensorBoard shows for the run
    (``logger.tensorboard.sub_dir``). Run mechanics (paths, resume, …) are left out; a path
    value is shortened to its last part."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not HydraConfig.initialized():
        return task_name
    parts = [task_name]
    overrides = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    for override in overrides:
        key = override.key_or_group
        if _within(key, RUN_MECHANICS):
            continue
        if override.is_delete():
            parts.append(f"~{key}")
            continue
        value = override.input_line.split("=", 1)[1] if "=" in override.input_line else ""
        value = value.rstrip("/").rsplit("/", 1)[-1]
        parts.append(f"{key}={value}".replace("/", "_"))
    return ",".join(parts)[:RUN_NAME_LIMIT]


def register_run_name_resolver() -> None:
    """``${vaelab_run_name:${task_name}}`` in a config (idempotent)."""
    if not OmegaConf.has_resolver(RUN_NAME_RESOLVER):
        OmegaConf.register_new_resolver(RUN_NAME_RESOLVER, run_name)
