"""Validate a composed config before any data is loaded: one error listing every bad value.

The schema is declared once, in the code: every node with a ``_target_`` is checked against
its target's signature and annotations (:mod:`vaelab.schema`); the keys without a target (the
top level, ``paths``, vaelab-eval's ``eval``) are the dataclasses below. Declaring a parameter
(with ``Annotated[int, Range(ge=1)]`` where it has a range) is all it takes to validate it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vaelab.builders import unused_parts
from vaelab.errors import VaelabError
from vaelab.evaluation.disentanglement.settings import DisentanglementSettings
from vaelab.paths import CONFIG_DIR
from vaelab.plots.pictures import PictureOptions
from vaelab.schema import (
    Range,
    SchemaProblem,
    Seed,
    check_node,
    check_targets,
    dataclass_spec,
    get_object,
    problems_message,
    target_nodes,
)

#: Lightning callbacks whose ``monitor`` names a logged metric
MONITORING_CALLBACKS = (
    "lightning.pytorch.callbacks.ModelCheckpoint",
    "lightning.pytorch.callbacks.EarlyStopping",
)


@dataclass
class PathSettings:
    """``paths``: where the project, the data and the logs are."""

    root_dir: str
    data_dir: str
    log_dir: str
    output_dir: str


@dataclass
class ModuleSettings:
    """``module``: the LightningModule's own switches."""

    check_finite: bool = True
    compile: bool = False


@dataclass
class TrainSettings:
    """The top-level keys of ``vaelab-train``'s config (groups are checked by their target)."""

    task_name: str = "train"
    seed: Seed | None = 42
    ckpt_path: str | None = None
    # auto: continue from the run dir's last.ckpt and skip a finished run; never: start over;
    # force: continue even with another config, and extend a finished run (vaelab.run_config)
    resume: Literal["auto", "never", "force"] = "auto"
    # a new run starting from another run's weights (a .ckpt or a run dir: its best checkpoint)
    init_from: str | None = None
    test: bool = True
    print_config: bool = True
    optimized_metric: str | None = "val/elbo"
    # torch threads per process: auto (from the CPUs the job has) or a count
    threads: Literal["auto"] | Annotated[int, Range(ge=1)] = "auto"
    paths: PathSettings | None = None
    module: ModuleSettings | None = None


@dataclass(frozen=True)
class DisentanglementConfig(DisentanglementSettings):
    """``eval.disentanglement``: the metrics' settings (their ranges are declared there) and
    whether to compute them."""

    enabled: Literal["auto", True, False] = "auto"


@dataclass
class SampleQualityConfig:
    """``eval.sample_quality``: FID and precision/recall."""

    enabled: Literal["auto", True, False] = "auto"
    inception_weights: str | None = None
    feature_classifier: str | None = None
    num_samples: Annotated[int, Range(ge=2)] = 10000
    seed: Seed = 0


@dataclass
class SamplerFitConfig:
    """``eval.sampler_fit``: fitting ``sampler=`` on the training codes."""

    max_codes: Annotated[int, Range(ge=2)] | None = None
    seed: Seed = 0
    refit: bool = False


@dataclass
class EvalOptions:
    """``eval``: how vaelab-eval estimates the test-set metrics."""

    num_samples: Annotated[int, Range(ge=1)] = 5000
    chunk_size: Annotated[int, Range(ge=1)] = 100
    elbo_samples: Annotated[int, Range(ge=1)] = 100
    batch_size: Annotated[int, Range(ge=1)] | None = 100
    limit_batches: Annotated[int, Range(ge=1)] | None = None
    seed: Seed = 0
    device: str = "auto"
    # null: vaelab.evaluation.active_units.ACTIVITY_THRESHOLD (Burda et al.: 0.01)
    active_unit_threshold: Annotated[float, Range(ge=0)] | None = None
    tensorboard: bool = True
    figures: bool = True
    pictures: PictureOptions = field(default_factory=PictureOptions)
    disentanglement: DisentanglementConfig = field(default_factory=DisentanglementConfig)
    sample_quality: SampleQualityConfig = field(default_factory=SampleQualityConfig)
    sampler_fit: SamplerFitConfig = field(default_factory=SamplerFitConfig)


@dataclass
class EvalSettings:
    """The top-level keys of ``vaelab-eval``'s config."""

    ckpt_path: str | None = None
    data_dir: str | None = None
    output_dir: str | None = None
    print_summary: bool = True
    eval: EvalOptions = field(default_factory=EvalOptions)


def _resolved(cfg: DictConfig) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "a config value"
        first = str(err).splitlines()[0]
        raise VaelabError(
            f"invalid config: {key} cannot be resolved ({first}); set it on the command line, "
            f"e.g. {key}=<value>"
        ) from err


def _has_target(tree: Any) -> bool:
    return any(True for _ in target_nodes(tree))


def config_problems(tree: Mapping, settings: type) -> list[SchemaProblem]:
    """Every problem of a resolved config: the top-level keys against ``settings`` (a group,
    i.e. a mapping holding ``_target_`` nodes, is checked by its targets), then every target."""
    spec = dataclass_spec(settings)
    top_level = {}
    problems = []
    for key, value in tree.items():
        if key in spec.annotations or not (isinstance(value, Mapping) or value is None):
            top_level[key] = value
        elif isinstance(value, Mapping) and value and not _has_target(value):
            problems.append(
                SchemaProblem(
                    str(key),
                    value,
                    "is not a known key or config group; known keys: "
                    + ", ".join(sorted(spec.annotations)),
                )
            )
    problems = check_node(top_level, spec, "") + problems
    return problems + check_targets(tree).problems


def _global_options_setting(key: str, choices: Mapping[str, Any]) -> list[str]:
    """The chosen ``group=option``s whose yaml (``@package _global_``) sets dotted ``key``."""
    found = []
    for group, option in choices.items():
        path = CONFIG_DIR / str(group) / f"{option}.yaml"
        if option is None or not path.is_file():
            continue
        if "@package _global_" not in path.read_text().split("\n", 1)[0]:
            continue
        if OmegaConf.select(OmegaConf.load(path), key, default=None) is not None:
            found.append(f"{group}={option}")
    return found


def explain_group_key(problem: SchemaProblem, choices: Mapping[str, Any]) -> SchemaProblem:
    """An unknown key under a config group that another chosen option sets (``beta.value`` from
    objective=beta_tcvae under beta=capacity): say who sets it and which options take it."""
    group, _, key = problem.key.partition(".")
    option = choices.get(group)
    if not key or "." in key or option is None or "is not a known key" not in problem.requirement:
        return problem
    setters = _global_options_setting(problem.key, choices)
    if not setters:
        return problem
    takers = sorted(
        path.stem
        for path in (CONFIG_DIR / group).glob("*.yaml")
        if OmegaConf.select(OmegaConf.load(path), key, default=None) is not None
    )
    instead = f"use {group}=" + " | ".join(takers) if takers else f"leave out {group}={option}"
    return SchemaProblem(
        problem.key,
        problem.value,
        f"is set by {' and '.join(setters)}, but {group}={option} has no {key}: {instead}, "
        f"or another {setters[0].split('=')[0]}",
    )


def _hydra_choices() -> Mapping[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}


def validate_config(cfg: DictConfig, settings: type = TrainSettings) -> dict[str, Any]:
    """Raise :class:`VaelabError` naming every bad key of ``cfg`` and what it must be; return
    the resolved config. An unknown key under a group that another chosen option sets says so
    (:func:`explain_group_key`)."""
    tree = _resolved(cfg)
    model = tree.get("model")
    if isinstance(model, dict) and "_target_" in model:
        try:
            for part in unused_parts(model):  # composed by default, not taken by this model
                del model[part]
        except (ImportError, AttributeError, ValueError):
            pass  # an unknown target is reported by the target checks below
    problems = config_problems(tree, settings)
    if problems:
        choices = _hydra_choices()
        raise VaelabError(problems_message([explain_group_key(p, choices) for p in problems]))
    return tree


def monitored_metrics(cfg: DictConfig) -> dict[str, str]:
    """``{config key: metric name}`` for ``optimized_metric`` and every monitoring callback's
    ``monitor`` (ModelCheckpoint, EarlyStopping and their subclasses), wherever they sit."""
    tree = OmegaConf.to_container(cfg, resolve=True)
    wanted = {}
    if tree.get("optimized_metric"):
        wanted["optimized_metric"] = tree["optimized_metric"]
    bases = tuple(get_object(name) for name in MONITORING_CALLBACKS)
    for where, node in target_nodes(tree):
        try:
            target = get_object(node["_target_"])
        except Exception:
            continue
        if isinstance(target, type) and issubclass(target, bases) and node.get("monitor"):
            wanted[f"{where}.monitor"] = node["monitor"]
    return wanted


def check_monitored_metrics(cfg: DictConfig, module: Any) -> None:
    """Refuse, before training, a monitored metric the module never logs (a typo would
    otherwise fail at the end of the first epoch, or keep no best checkpoint at all). Uses the
    module's ``logged_metric_names()``; a module without it is not checked."""
    names_of = getattr(module, "logged_metric_names", None)
    if not callable(names_of):
        return
    logged = set(names_of())
    redirected = getattr(module, "redirected_monitor", lambda _name: None)
    unknown = {
        key: name
        for key, name in monitored_metrics(cfg).items()
        if name not in logged and redirected(name) is None
    }
    if unknown:
        listed = ", ".join(sorted(logged))
        bad = "; ".join(f"{key}={name}" for key, name in unknown.items())
        raise VaelabError(
            f"invalid config: {bad} is not a metric this model logs; it logs {listed} "
            f"(e.g. {next(iter(unknown))}=val/elbo)"
        )


# --------------------------------------------------------------------------------------
# the command line, before Hydra composes it

#: Hydra's options that take the next argument as their value
_HYDRA_OPTIONS_WITH_VALUE = frozenset(
    {"-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir", "--experimental-rerun"}
)
#: options that choose another primary config, whose names are not known here
_PRIMARY_CONFIG_OPTIONS = frozenset(
    {"-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir"}
)


@dataclass(frozen=True)
class KnownNames:
    """What a top-level override of one primary config may name."""

    groups: frozenset[str]
    keys: frozenset[str]
    #: the keys inside each top-level mapping of the primary config (``module``)
    subkeys: dict[str, frozenset[str]] = field(default_factory=dict)


def known_names(config_name: str, config_dir: Path = CONFIG_DIR) -> KnownNames:
    """The config groups (those in the defaults list of ``conf/<config_name>.yaml``, and
    ``hydra``) and the top-level keys of that file."""
    primary = OmegaConf.to_container(OmegaConf.load(config_dir / f"{config_name}.yaml"))
    groups = {"hydra"}
    for entry in primary.get("defaults") or []:
        if isinstance(entry, dict):
            for key in entry:
                groups.add(str(key).removeprefix("override ").split("/")[0].split("@")[0])
    keys = {str(key) for key in primary if key != "defaults"}
    subkeys = {str(k): frozenset(map(str, v)) for k, v in primary.items() if isinstance(v, dict)}
    return KnownNames(frozenset(groups), frozenset(keys - groups), subkeys)


def _override_keys(arguments: list[str]) -> Iterator[tuple[str, str, str]]:
    """``(argument, prefix, key)`` of each ``[+|++|~]key[=value]`` override."""
    skip_next = False
    for argument in arguments:
        if skip_next:
            skip_next = False
            continue
        if argument.startswith("-"):
            skip_next = argument in _HYDRA_OPTIONS_WITH_VALUE
            continue
        key = argument.split("=", 1)[0]
        prefix = key[: len(key) - len(key.lstrip("+~"))]
        if "=" in argument or prefix == "~":
            yield argument, prefix, key[len(prefix) :]


def _closest_name(name: str, rest: str, value: str | None, names: KnownNames) -> str | None:
    """The known group or key ``name`` was meant to be, among the close ones: a group that has
    the option ``value`` (``modle=vqvae``: model, not module) or a key holding the next name
    ``rest`` (``modul.compile``: module) first, then the closest."""
    close = difflib.get_close_matches(name, sorted(names.groups | names.keys), n=4)
    fitting = [
        candidate
        for candidate in close
        if (
            value is not None and (CONFIG_DIR / candidate / f"{value.split(',')[0]}.yaml").is_file()
        )
        or rest in names.subkeys.get(candidate, ())
    ]
    dotted_groups = [candidate for candidate in close if rest and candidate in names.groups]
    return next(iter(fitting + dotted_groups + close), None)


def unknown_override_message(arguments: list[str], config_name: str) -> str | None:
    """vaelab's own answer to an override whose first name is neither a config group nor a
    top-level key (``modle=vqvae``), naming the closest one and the corrected override, before
    Hydra answers with its advice to append it (``+modle=vqvae``). An appended key (``+``) is
    only answered when it is close to a group or key; otherwise the schema check names it."""
    if any(argument in _PRIMARY_CONFIG_OPTIONS for argument in arguments):
        return None
    names = known_names(config_name)
    for argument, prefix, key in _override_keys(arguments):
        head = key.split("/")[0].split("@")[0].split(".")[0]
        if not head or head in names.groups or head in names.keys:
            continue
        value = argument.split("=", 1)[1] if "=" in argument and head == key else None
        rest = key[len(head) + 1 :].split(".")[0]
        best = _closest_name(head, rest, value, names)
        holders = sorted(k for k, inside in names.subkeys.items() if head in inside)
        # an exact key one level down (eval.num_samples) beats a merely similar group name
        # (sampler), unless the value is an option of that group
        option_of_best = (
            best is not None
            and value is not None
            and (CONFIG_DIR / best / f"{value.split(',')[0]}.yaml").is_file()
        )
        if holders and not option_of_best:
            fixed = f"{prefix.lstrip('+')}{holders[0]}.{argument[len(prefix) :]}"
            meant = f"{holders[0]}.{head}"
            return f"unknown key '{head}' at the top level: did you mean {meant}? ({fixed})"
        if best is None and prefix.startswith("+"):
            continue
        if best is not None:
            kind = "config group" if best in names.groups else "key"
            fixed = prefix.lstrip("+") + best + argument[len(prefix) + len(head) :]
            return f"unknown {kind} '{head}': did you mean {best}? ({fixed})"
        return (
            f"unknown config group or key '{head}' in {argument}; config groups: "
            f"{', '.join(sorted(names.groups))}; top-level keys: {', '.join(sorted(names.keys))}"
        )
    return None
