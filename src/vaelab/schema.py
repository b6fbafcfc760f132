"""Config schema from the code itself: every config node with a ``_target_`` is checked against
its target's signature and type annotations, before anything is instantiated or loaded.

- ``Literal[...]`` is a closed set (``"Auto"`` is not ``"auto"``); ``int`` takes integers only
  (a float would be truncated, a bool is not a count); ``bool`` takes true/false only; a
  class-typed parameter takes a node with a ``_target_``.
- Ranges are declared next to the parameter: ``latent_dim: Annotated[int, Range(ge=1)]``.
- Keys the target does not take are refused, with the ones it takes listed (a target whose
  signature ends in ``**kwargs`` that are not passed on to a base class takes any key).
- Parameters of classes vaelab does not own (torch, Lightning) get their ranges from
  :data:`EXTERNAL_CONSTRAINTS`, keyed by class: a subclass inherits its bases' entries.

The check is keyed on ``_target_``, never on where a node sits in the tree, so it follows a
class wherever a config puts it. Groups and keys without a target are dataclasses checked the
same way (:func:`dataclass_spec`).

The same annotations check a call made from Python (a test, a notebook):
:func:`checked_arguments` wraps a class's ``__init__`` (or a builder function) so that its
arguments are held to its annotations and refused with the config check's own message, the
key named where a config usually puts the class (``model.prior.num_components=0 must be an
integer >= 1``). A constructor then keeps only the checks annotations cannot say (a relation
between two parameters).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import functools
import inspect
import math
import numbers
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar, Union

from omegaconf import DictConfig, ListConfig, OmegaConf

from vaelab.errors import VaelabError

try:  # what hydra.utils.get_object calls, without the error it logs on a miss
    from hydra._internal.utils import _locate as get_object
except ImportError:  # pragma: no cover - a Hydra without it
    from hydra.utils import get_object

#: keys Hydra's instantiate reads itself
HYDRA_KEYS = frozenset({"_target_", "_partial_", "_recursive_", "_convert_", "_args_"})


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric parameter; ``also`` lists special values outside them (``-1`` for
    "no limit")."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    also: tuple[float, ...] = ()

    def contains(self, value: float) -> bool:
        if value in self.also:
            return True
        if isinstance(value, float) and math.isnan(value):
            return False
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def describe(self) -> str:
        low = f">= {_num(self.ge)}" if self.ge is not None else None
        low = f"> {_num(self.gt)}" if self.gt is not None else low
        high = f"<= {_num(self.le)}" if self.le is not None else None
        high = f"< {_num(self.lt)}" if self.lt is not None else high
        if low and high:
            left = "[" if self.ge is not None else "("
            right = "]" if self.le is not None else ")"
            lo, hi = (
                (self.ge if self.ge is not None else self.gt),
                (self.le if self.le is not None else self.lt),
            )
            text = f"in {left}{_num(lo)}, {_num(hi)}{right}"
        else:
            text = low or high or "any value"
        if self.also:
            text += ", or " + " or ".join(_num(v) for v in self.also)
        return text


def _num(value: float | None) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class SchemaProblem:
    """One bad key: ``key=value`` and what it must be instead."""

    key: str
    value: Any
    requirement: str

    def __str__(self) -> str:
        return f"{self.key}={_show(self.value)} {self.requirement}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "{…}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def problems_message(problems: list[SchemaProblem]) -> str:
    """The one-line error of a config check, and of :func:`check_arguments`."""
    return "invalid config: " + "; ".join(str(p) for p in problems)


class InvalidArguments(VaelabError, ValueError):
    """Arguments outside their annotations; the message is the config check's."""


@dataclass
class ParameterSpec:
    """What one node may hold: its parameters' annotations, and whether others are taken."""

    annotations: dict[str, Any]
    open_keys: bool = False


# --------------------------------------------------------------------------------------
# type annotations → requirement checks


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType)


def describe(annotation: Any) -> str:
    """``int`` → "an integer", ``Literal['a', 'b']`` → "one of a, b", and so on."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        ranges = [m for m in annotation.__metadata__ if isinstance(m, Range)]
        base = describe(args[0])
        return base + "".join(f" {r.describe()}" for r in ranges)
    if _is_union(annotation):
        literals = [v for a in args if typing.get_origin(a) is Literal for v in typing.get_args(a)]
        parts = [
            describe(a) for a in args if a is not type(None) and typing.get_origin(a) is not Literal
        ]
        if literals:
            parts.insert(0, "one of " + ", ".join(dict.fromkeys(_show(v) for v in literals)))
        text = " or ".join(dict.fromkeys(parts))
        return text + (" or null" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(_show(a) for a in args)
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    if annotation is str:
        return "a string"
    if annotation is type(None) or annotation is None:
        return "null"
    if origin in (list, tuple, collections.abc.Sequence, collections.abc.Iterable):
        return "a list"
    if origin in (dict, collections.abc.Mapping) or annotation in (dict, Mapping):
        return "a mapping"
    return "a config node with a _target_"


def _check_value(value: Any, annotation: Any) -> str | None:
    """None if ``value`` fits ``annotation``; otherwise what it must be."""
    if annotation in (Any, object, inspect.Parameter.empty) or isinstance(
        annotation, typing.TypeVar | str | typing.ForwardRef
    ):
        return None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        problem = _check_value(value, args[0])
        if problem is not None:
            return problem
        for marker in annotation.__metadata__:
            if isinstance(marker, Range) and _is_number(value) and not marker.contains(value):
                return f"must be {describe(annotation)}"
        return None
    if _is_union(annotation):
        problems = [_check_value(value, branch) for branch in args]
        if any(p is None for p in problems):
            return None
        # a whole number written as a float: say how to write it
        rewrite = [p for p in problems if p and "(write " in p]
        return (
            rewrite[0] + " or null" * (type(None) in args)
            if rewrite
            else (f"must be {describe(annotation)}")
        )
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return None
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(
                value.lower(), [str(a).lower() for a in args], n=1, cutoff=0.6
            )
            if close:
                hint = f" (did you mean {close[0]}?)"
        return f"must be {describe(annotation)}{hint}"
    if annotation is type(None) or annotation is None:
        return None if value is None else "must be null"
    if annotation is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        if isinstance(value, float) and value.is_integer():
            return f"must be an integer (write {int(value)}, not {value})"
        return "must be an integer"
    if annotation is float:
        return None if _is_number(value) else "must be a number"
    if annotation is str:
        return None if isinstance(value, str) else "must be a string"
    if origin in (
        list,
        tuple,
        collections.abc.Sequence,
        collections.abc.Iterable,
    ) or annotation in (
        list,
        tuple,
    ):
        return _check_sequence(value, origin or annotation, args)
    if origin in (dict, collections.abc.Mapping) or annotation in (dict, Mapping):
        return None if isinstance(value, Mapping) else "must be a mapping"
    if isinstance(value, Mapping) and "_target_" in value:
        return None  # instantiated into the object; its own node is checked on its own
    if origin is collections.abc.Callable or annotation is Callable:
        return "must be a config node with a _target_"
    if inspect.isclass(annotation):
        if isinstance(value, annotation):
            return None
        return f"must be {describe(annotation)} ({annotation.__name__})"
    return None  # an annotation this checker does not understand: accept


def _check_sequence(value: Any, origin: Any, args: tuple) -> str | None:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return "must be a list"
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            return f"must be a list of {len(args)} values"
        for item, item_type in zip(value, args, strict=True):
            problem = _check_value(item, item_type)
            if problem:
                return f"must be a list of {len(args)} values; {_show(item)} {problem}"
        return None
    if args:
        for item in value:
            problem = _check_value(item, args[0])
            if problem:
                return f"must be a list; its item {_show(item)} {problem}"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------
# signatures → parameter specs


def _annotations_of(function: Callable) -> dict[str, Any]:
    """The evaluated annotations of ``function`` (one that cannot be evaluated: Any)."""
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:
        pass
    hints = {}
    namespace = getattr(inspect.unwrap(function), "__globals__", {})
    for name, annotation in getattr(function, "__annotations__", {}).items():
        if isinstance(annotation, str):
            try:  # eval of the code's own annotation, not of user input
                annotation = eval(annotation, namespace)
            except Exception:
                annotation = Any
        hints[name] = annotation
    return hints


def _own_parameters(function: Callable, skip_first: bool) -> tuple[dict[str, Any], bool]:
    """``({parameter: annotation}, takes **kwargs)`` of one function."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return {}, True
    hints = _annotations_of(function)
    annotations, open_keys = {}, False
    parameters = list(signature.parameters.values())[1 if skip_first else 0 :]
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            open_keys = True
            continue
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        annotations[parameter.name] = hints.get(parameter.name, Any)
    return annotations, open_keys


@functools.cache
def spec_of(target: Any) -> ParameterSpec:
    """The parameters ``target`` takes, with annotations narrowed by its own ``Annotated``
    markers and by :data:`EXTERNAL_CONSTRAINTS`. A class whose ``__init__`` takes ``**kwargs``
    also takes its base classes' parameters (the usual ``super().__init__(**kwargs)``)."""
    if inspect.isclass(target):
        annotations: dict[str, Any] = {}
        open_keys = True
        for klass in target.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            if klass is object:
                break
            own, still_open = _own_parameters(init, skip_first=True)
            for name, annotation in own.items():
                annotations.setdefault(name, annotation)
            if not still_open:
                open_keys = False
                break
    else:
        annotations, open_keys = _own_parameters(target, skip_first=False)
    for name, annotation in _external_constraints(target).items():
        if name in annotations:
            annotations[name] = annotation
    return ParameterSpec(annotations, open_keys)


def _external_constraints(target: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    lineage = target.__mro__ if inspect.isclass(target) else (target,)
    for klass in reversed(lineage):  # a subclass's entries win over its bases'
        for name, constraints in EXTERNAL_CONSTRAINTS.items():
            if _resolve(name) is klass:
                found.update(constraints)
    return found


@functools.cache
def _resolve(dotted: str) -> Any:
    try:
        return get_object(dotted)
    except Exception:
        return None


def dataclass_spec(schema: type) -> ParameterSpec:
    """The fields of a dataclass as a spec (nested dataclasses stay annotations)."""
    hints = typing.get_type_hints(schema, include_extras=True)
    return ParameterSpec({f.name: hints[f.name] for f in dataclasses.fields(schema)})


# --------------------------------------------------------------------------------------
# walking a resolved config


def check_node(node: Mapping, spec: ParameterSpec, where: str) -> list[SchemaProblem]:
    """Problems of one node's own keys against ``spec`` (nested dataclasses included)."""
    problems = []
    for key, value in node.items():
        key = str(key)
        if key in HYDRA_KEYS:
            continue
        full_key = f"{where}.{key}" if where else key
        if key not in spec.annotations:
            if not spec.open_keys:
                accepted = ", ".join(sorted(spec.annotations)) or "none"
                close = difflib.get_close_matches(key, list(spec.annotations), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                problems.append(
                    SchemaProblem(full_key, value, f"is not a known key{hint}; known: {accepted}")
                )
            continue
        annotation = spec.annotations[key]
        nested = _dataclass_in(annotation)
        if nested is not None and isinstance(value, Mapping) and "_target_" not in value:
            problems += check_node(value, dataclass_spec(nested), full_key)
            continue
        requirement = _check_value(value, annotation)
        if requirement is not None:
            problems.append(SchemaProblem(full_key, value, requirement))
    return problems


def _dataclass_in(annotation: Any) -> type | None:
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if _is_union(annotation):
        classes = [a for a in typing.get_args(annotation) if dataclasses.is_dataclass(a)]
        return classes[0] if classes else None
    return annotation if dataclasses.is_dataclass(annotation) else None


def target_nodes(tree: Any, where: str = "") -> Iterator[tuple[str, Mapping]]:
    """Every ``(dotted key, node)`` with a ``_target_`` in a resolved config tree."""
    if isinstance(tree, Mapping):
        if "_target_" in tree:
            yield where, tree
        for key, value in tree.items():
            yield from target_nodes(value, f"{where}.{key}" if where else str(key))
    elif isinstance(tree, list | tuple):
        for index, value in enumerate(tree):
            yield from target_nodes(value, f"{where}[{index}]")


@dataclass
class TargetCheck:
    """The problems found in the target nodes of a tree, and the targets resolved."""

    problems: list[SchemaProblem] = field(default_factory=list)
    targets: dict[str, Any] = field(default_factory=dict)


def check_targets(tree: Mapping) -> TargetCheck:
    """Check every node with a ``_target_`` against its target's signature."""
    result = TargetCheck()
    for where, node in target_nodes(tree):
        name = node["_target_"]
        key = f"{where}._target_" if where else "_target_"
        if not isinstance(name, str):
            result.problems.append(SchemaProblem(key, name, "must be a dotted import path"))
            continue
        try:
            target = get_object(name)
        except Exception as err:
            cause = err.__cause__ or err
            result.problems.append(
                SchemaProblem(
                    key,
                    name,
                    f"cannot be imported ({type(cause).__name__}: "
                    f"{str(cause).splitlines()[0] if str(cause) else ''}); check its spelling",
                )
            )
            continue
        result.targets[where] = target
        if not callable(target):
            result.problems.append(SchemaProblem(key, name, "must name a class or a function"))
            continue
        result.problems += check_node(node, spec_of(target), where)
    return result


# --------------------------------------------------------------------------------------
# the same annotations on a call from Python

#: a value only a ``_target_`` node builds (a module, a partial, a tensor): not checked here,
#: as the config check does not check an instantiated node's value either
_BUILT = object()
_Target = TypeVar("_Target")


def _as_config_value(value: Any) -> Any:
    """``value`` as a resolved config would hold it (plain ints, floats, lists, dicts), or
    :data:`_BUILT` for an object that a config could only describe by its ``_target_``."""
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):  # numpy integers too
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, list | tuple):  # torch.Size too
        items = [_as_config_value(item) for item in value]
        return _BUILT if any(item is _BUILT for item in items) else items
    if isinstance(value, Mapping):
        items = {str(key): _as_config_value(item) for key, item in value.items()}
        return _BUILT if any(item is _BUILT for item in items.values()) else items
    return _BUILT


def argument_problems(target: Any, arguments: Mapping[str, Any], where: str) -> list[SchemaProblem]:
    """The problems of ``arguments`` (``{parameter: value}`` of one call of ``target``) against
    the annotations the config check uses for ``target``, keys named under ``where``."""
    spec = spec_of(target)
    node = {}
    for name, value in arguments.items():
        plain = _as_config_value(value)
        if name in spec.annotations and plain is not _BUILT:
            node[name] = plain
    return check_node(node, spec, where)


def check_arguments(target: Any, arguments: Mapping[str, Any], where: str) -> None:
    """Raise :class:`InvalidArguments`, with the config check's message, when ``arguments``
    break ``target``'s annotations (``where``: the config key the target usually sits at,
    e.g. ``"model.prior"``)."""
    problems = argument_problems(target, arguments, where)
    if problems:
        raise InvalidArguments(problems_message(problems))


def checked_arguments(where: str) -> Callable[[_Target], _Target]:
    """Decorate a class (its own ``__init__``) or a function so that every call checks its
    arguments against the annotations, as :func:`check_arguments` with ``where``. Arguments
    left at their defaults, ``*args``/``**kwargs`` passed on to a base class (whose own
    ``__init__`` checks them if decorated) and built objects are not checked."""

    def decorate(target: _Target) -> _Target:
        is_class = inspect.isclass(target)
        function = target.__dict__["__init__"] if is_class else target
        signature = inspect.signature(function)
        variadic = {
            name
            for name, parameter in signature.parameters.items()
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        }
        if is_class:
            variadic.add(next(iter(signature.parameters)))  # self

        @functools.wraps(function)
        def checked(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:  # a missing or unknown argument: Python's own error says it
                return function(*args, **kwargs)
            named = {k: v for k, v in bound.arguments.items() if k not in variadic}
            check_arguments(target, named, where)
            return function(*args, **kwargs)

        checked.checked_at = where  # type: ignore[attr-defined]
        if is_class:
            target.__init__ = checked  # type: ignore[misc]
            return target
        return checked  # type: ignore[return-value]

    return decorate


def checked_at(target: Any) -> str | None:
    """The config key a :func:`checked_arguments` target names its arguments under (None:
    its calls are not checked)."""
    function = getattr(target, "__init__", None) if inspect.isclass(target) else target
    return getattr(function, "checked_at", None)


# --------------------------------------------------------------------------------------
# ranges of classes vaelab cannot annotate (torch, Lightning); a class's entry applies to its
# subclasses too. vaelab's own classes declare theirs in their signatures.

PositiveInt = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]
#: an image's (C, H, W) or any other size list: every entry at least 1
ImageShape = collections.abc.Sequence[PositiveInt]
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]
#: a fraction of the batches, or a count of them
BatchFraction = Annotated[float, Range(gt=0, le=1)]
BatchLimit = Union[Annotated[int, Range(ge=1)], BatchFraction, None]  # noqa: UP007
#: a seed Lightning takes as it is (outside this range it would pick a random one)
Seed = Annotated[int, Range(ge=0, le=2**32 - 1)]
#: a split's size: a count, or a fraction of the data
SplitSize = Union[Annotated[int, Range(ge=1)], Annotated[float, Range(gt=0, lt=1)]]  # noqa: UP007
OptionalBatchLimit = Union[Annotated[int, Range(ge=0)], Annotated[float, Range(ge=0, le=1)], None]  # noqa: UP007

EXTERNAL_CONSTRAINTS: dict[str, dict[str, Any]] = {
    "lightning.pytorch.Trainer": {
        # 0 epochs/steps would test an untrained model and mark the run finished
        "max_epochs": Union[Annotated[int, Range(ge=1, also=(-1,))], None],  # noqa: UP007
        "min_epochs": NonNegativeInt | None,
        "max_steps": Annotated[int, Range(ge=1, also=(-1,))],
        "min_steps": NonNegativeInt | None,
        "devices": Union[Annotated[int, Range(ge=1, also=(-1,))], str, list[NonNegativeInt]],  # noqa: UP007
        "num_nodes": PositiveInt,
        "fast_dev_run": Union[bool, NonNegativeInt],  # noqa: UP007
        "limit_train_batches": BatchLimit,
        "limit_test_batches": BatchLimit,
        "limit_predict_batches": BatchLimit,
        "limit_val_batches": OptionalBatchLimit,
        "overfit_batches": Union[NonNegativeInt, Annotated[float, Range(ge=0, lt=1)]],  # noqa: UP007
        "val_check_interval": Union[PositiveInt, BatchFraction, str, dict, None],  # noqa: UP007
        "check_val_every_n_epoch": PositiveInt | None,
        "num_sanity_val_steps": Union[Annotated[int, Range(ge=-1)], None],  # noqa: UP007
        "log_every_n_steps": PositiveInt | None,
        "accumulate_grad_batches": PositiveInt,
        "gradient_clip_val": Union[NonNegativeFloat, None],  # noqa: UP007
        "gradient_clip_algorithm": Literal["norm", "value"] | None,
        "reload_dataloaders_every_n_epochs": NonNegativeInt,
        "max_time": Union[str, dict[str, NonNegativeInt], None],  # noqa: UP007
    },
    "lightning.pytorch.loggers.Logger": {
        "version": Union[NonNegativeInt, str, None],  # noqa: UP007
        "flush_logs_every_n_steps": PositiveInt,
    },
    "lightning.pytorch.strategies.DDPStrategy": {
        "model_averaging_period": PositiveInt | None,
    },
    "lightning.pytorch.callbacks.ModelCheckpoint": {
        "mode": Literal["min", "max"],
        "save_top_k": Annotated[int, Range(ge=-1)],
        "every_n_epochs": NonNegativeInt | None,
        "every_n_train_steps": NonNegativeInt | None,
    },
    "lightning.pytorch.callbacks.EarlyStopping": {
        "mode": Literal["min", "max"],
        "patience": NonNegativeInt,
        "min_delta": NonNegativeFloat,
    },
    "lightning.pytorch.callbacks.LearningRateMonitor": {
        "logging_interval": Literal["step", "epoch"] | None,
    },
    "torch.optim.Optimizer": {
        "lr": PositiveFloat,
        "eps": PositiveFloat,
        "weight_decay": NonNegativeFloat,
        "momentum": NonNegativeFloat,
        "betas": tuple[Annotated[float, Range(ge=0, lt=1)], Annotated[float, Range(ge=0, lt=1)]],
    },
    "torch.optim.lr_scheduler.LRScheduler": {
        "step_size": PositiveInt,
        "gamma": PositiveFloat,
        "T_max": PositiveInt,
        "eta_min": NonNegativeFloat,
        "last_epoch": Annotated[int, Range(ge=-1)],
    },
}
