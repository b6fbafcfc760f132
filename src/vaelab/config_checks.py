"""Validate a composed config before any data is loaded: one error listing every bad value.

The schema is declared once, in the code: every node with a ``_target_`` is checked against
its target's signature and annotations (:mod:`vaelab.schema`); the keys without a target (the
top level, ``paths``, vaelab-eval's ``eval``) are the dataclasses below. Declaring a parameter
(with ``Annotated[int, Range(ge=1)]`` where it has a range) is all it takes to validate it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vaelab.builders import unused_parts
from vaelab.errors import VaelabError
from vaelab.evaluation.disentanglement.settings import DisentanglementSettings
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


def validate_config(cfg: DictConfig, settings: type = TrainSettings) -> dict[str, Any]:
    """Raise :class:`VaelabError` naming every bad key of ``cfg`` and what it must be; return
    the resolved config."""
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
        raise VaelabError(problems_message(problems))
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
