"""Build the model and the LightningModule from a composed config (train and eval share it).

``cfg.model`` is the model (its ``_target_`` a :class:`~vaelab.models.interface.
LatentVariableModel`) with its parts composed under it by the ``posterior=``,
``likelihood=`` and ``prior=`` groups; the module gets the model, ``objective=``, ``beta=``,
``optimizer=`` and ``lr_scheduler=``. A group the model cannot use is refused by name.

The data and the model meet through declared facts, never through model names:

- the data provide ``data_info``: ``input_shape``, ``num_classes`` (None: unlabelled) and,
  where the datamodule has them, ``factor_sizes`` and ``factor_names``;
- a model class declares ``conditions_on`` (None, or "classes": it reads class indices from
  a batch's y); data that do not provide it (:data:`PROVIDED_BY`) are refused in one line;
- any constructor parameter named like a ``data_info`` key the data provide (not None) is
  filled from the data; a config value that disagrees is refused;
- a class trained by its own LightningModule declares it as ``lightning_module`` (the feature
  classifier); every other model is trained by :class:`~vaelab.module.LatentVariableModule`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel, input_shape_of
from vaelab.module import LatentVariableModule

#: groups composed into the model (packages model.<group>)
MODEL_PART_GROUPS = ("posterior", "likelihood", "prior")
#: groups handed to the LightningModule
MODULE_GROUPS = ("objective", "beta", "optimizer", "lr_scheduler")
#: what a model may condition on (its ``conditions_on``) → the ``data_info`` key that provides
#: it (None there: the data do not), and what to name in the refusal
PROVIDED_BY = {"classes": ("num_classes", "class labels")}
#: the data_info keys a datamodule may know before its set-up, besides input_shape (``pairs``:
#: how many factors the two views of a pair differ in, data/pairs.py; absent: single views)
DATA_FACTS = ("num_classes", "factor_sizes", "factor_names", "pairs")


def model_class(cfg: DictConfig) -> type:
    """The class of ``model._target_``: a latent-variable model, or a network that declares
    the ``lightning_module`` training it."""
    target = OmegaConf.select(cfg, "model._target_")
    cls = get_class(target) if target else None
    trainable = isinstance(cls, type) and (
        issubclass(cls, LatentVariableModel) or own_module(cls) is not None
    )
    if not trainable:
        raise VaelabError(
            f"model._target_={target!r} is not a vaelab latent-variable model (a subclass of "
            "vaelab.models.interface.LatentVariableModel); choose a model= from conf/model/"
        )
    return cls


def own_module(cls: type) -> type[L.LightningModule] | None:
    """The LightningModule a model class declares it is trained by (``lightning_module``), or
    None: trained by :class:`~vaelab.module.LatentVariableModule`."""
    return getattr(cls, "lightning_module", None)


def usable_groups(cls: type) -> set[str]:
    """The groups a model class uses: the parts its constructor takes, and its
    ``config_groups`` (where an entry ``group=option`` names the one option it can use)."""
    parameters = set(inspect.signature(cls).parameters)
    return {g for g in MODEL_PART_GROUPS if g in parameters} | {
        entry.split("=", 1)[0] for entry in cls.config_groups
    }


def only_options(cls: type[LatentVariableModel]) -> dict[str, str]:
    """The groups of which the model can use one option only (``objective=vq`` in the VQ-VAE's
    ``config_groups``: its model config chooses it), with that option."""
    return dict(entry.split("=", 1) for entry in cls.config_groups if "=" in entry)


def chosen_groups(overrides: Iterable[str]) -> dict[str, str]:
    """The groups named by command-line overrides, each with the override that names it:
    ``posterior=full_covariance``, ``model.posterior.parameterization=log_scale`` and
    ``beta.value=4`` name posterior, posterior and beta."""
    named: dict[str, str] = {}
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~").split("@", 1)[0]
        path = key.split(".")
        if path[0] == "model" and len(path) > 1 and path[1] in MODEL_PART_GROUPS:
            named.setdefault(path[1], override)
        elif path[0] in MODEL_PART_GROUPS + MODULE_GROUPS:
            named.setdefault(path[0], override)
    return named


def command_line_overrides(cfg: DictConfig) -> list[str]:
    """The run's command-line overrides (Hydra's task overrides), or none outside Hydra."""
    from_cfg = OmegaConf.select(cfg, "hydra.overrides.task", default=None)
    if from_cfg is not None:
        return list(from_cfg)
    if HydraConfig.initialized():
        return list(HydraConfig.get().overrides.task)
    return []


def unused_parts(model_node: Mapping[str, Any]) -> list[str]:
    """The part groups composed under ``model`` by default that its class does not take (PCA
    has no posterior): dropped before validation and instantiation."""
    cls = get_class(model_node["_target_"])
    parameters = set(inspect.signature(cls).parameters)
    return [part for part in MODEL_PART_GROUPS if part in model_node and part not in parameters]


def check_model_groups(cfg: DictConfig, overrides: Iterable[str]) -> None:
    """Refuse a group the chosen model cannot use, naming the override to remove."""
    cls = model_class(cfg)
    overrides = list(overrides)
    usable = usable_groups(cls)
    refused = {g: o for g, o in chosen_groups(overrides).items() if g not in usable}
    choice = _model_choice(cls)
    reasons = [
        f"model={choice} has no {group}: remove {override}"
        for group, override in sorted(refused.items())
    ]
    for group, option in sorted(only_options(cls).items()):
        chosen = _group_choice(group)
        if chosen is not None and chosen != option:
            named = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] == group]
            reasons.append(
                f"model={choice} trains with {group}={option} only: remove "
                + (named[0] if named else f"the {group}={chosen} of the experiment")
            )
    if reasons:
        raise VaelabError("; ".join(reasons))


def _group_choice(group: str) -> str | None:
    """The option of ``group`` the composed config holds (None outside a Hydra run)."""
    if not HydraConfig.initialized():
        return None
    chosen = HydraConfig.get().runtime.choices.get(group)
    return None if chosen is None else str(chosen)


def _model_choice(cls: type) -> str:
    return _choice("model") or cls.__name__


def _data_choice(cfg: DictConfig) -> str:
    target = OmegaConf.select(cfg, "data._target_", default=None)
    return _choice("data") or (str(target).rsplit(".", 1)[-1] if target else "this data set")


def _choice(group: str) -> str | None:
    """The option chosen for ``group`` on the command line (Hydra's runtime choices)."""
    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get(group)
        if choice:
            return str(choice)
    return None


def build_model(
    cfg: DictConfig, input_shape: Sequence[int], data_info: Mapping[str, Any] | None = None
) -> Any:
    """``cfg.model`` instantiated for data of ``input_shape`` (C, H, W); parts composed by
    default that this model does not take are left out. What the model conditions on must be
    provided by the data, and constructor parameters named like a ``data_info`` key (e.g.
    ``num_classes``) take the data's value."""
    cls = model_class(cfg)  # a clear error for a target that is not a vaelab model
    data_shape = input_shape_of(input_shape)
    declared = cfg.model.get("input_shape")
    if declared is not None and input_shape_of(declared) != data_shape:
        raise VaelabError(
            f"model.input_shape={list(declared)} does not match the data's {data_shape} "
            "(C, H, W); networks take their input shape from the data: remove the override "
            "or choose the data= that has this shape"
        )
    model_cfg = cfg.model.copy()
    with open_dict(model_cfg):
        for part in unused_parts(model_cfg):
            del model_cfg[part]
        model_cfg.pop("input_shape", None)
    # the model and each of its parts (a conditional prior, say) condition on what the data
    # provide, and take the data's values for parameters named like a data_info key
    from_data: dict[str, Any] = {}
    for where, part_cls, node in targets_in(model_cfg, cls):
        check_conditioning(cfg, part_cls, data_info, where)
        values = values_from_data(node, part_cls, data_info, where)
        with open_dict(model_cfg):
            for key, value in values.items():
                if where == "model":
                    model_cfg.pop(key, None)
                    from_data[key] = value
                else:
                    node[key] = value
    return instantiate(model_cfg, input_shape=data_shape, **from_data)


def targets_in(model_cfg: DictConfig, cls: type) -> list[tuple[str, type, DictConfig]]:
    """The model and its composed parts as (config key, class, node)."""
    found: list[tuple[str, type, DictConfig]] = [("model", cls, model_cfg)]
    for part in MODEL_PART_GROUPS:
        node = model_cfg.get(part)
        if isinstance(node, DictConfig) and node.get("_target_"):
            found.append((f"model.{part}", get_class(node._target_), node))
    return found


def check_conditioning(
    cfg: DictConfig, cls: type, data_info: Mapping[str, Any] | None, where: str = "model"
) -> None:
    """Refuse a model (or a part of it, at ``where``) whose ``conditions_on`` the data do not
    provide (a conditional VAE on unlabelled data), or one built without ``data_info``."""
    condition = getattr(cls, "conditions_on", None)
    if condition is None:
        return
    if condition not in PROVIDED_BY:
        raise VaelabError(
            f"{cls.__name__}.conditions_on={condition!r} is not one of "
            f"{', '.join(map(repr, PROVIDED_BY))}: no data provide it"
        )
    key, what = PROVIDED_BY[condition]
    if data_info is None:
        raise VaelabError(
            f"{cls.__name__} conditions on {what}: build it with the datamodule's data_info() "
            f"(it knows {key})"
        )
    if data_info.get(key) is None:
        group = where.rsplit(".", 1)[-1]
        chosen = _model_choice(cls) if group == "model" else (_choice(group) or cls.__name__)
        raise VaelabError(
            f"{group}={chosen} conditions on {what}, but data={_data_choice(cfg)} "
            f"has none; choose data with {what} (data_info()[{key!r}]: mnist, fashion_mnist, "
            f"cifar10, digits) or an unconditional {group}="
        )


def values_from_data(
    node: DictConfig, cls: type, data_info: Mapping[str, Any] | None, where: str = "model"
) -> dict[str, Any]:
    """The constructor parameters of ``cls`` named like a ``data_info`` key the data provide
    (not None), with the data's values; a ``<where>.<key>`` in ``node`` that disagrees is
    refused."""
    parameters = inspect.signature(cls).parameters
    values = {
        key: value
        for key, value in (data_info or {}).items()
        if key in parameters and key != "input_shape" and value is not None
    }
    for key, value in values.items():
        declared = node.get(key)
        if declared is not None and _plain(declared) != _plain(value):
            raise VaelabError(
                f"{where}.{key}={_plain(declared)} does not match the data's {_plain(value)}; "
                f"{key} comes from the data: remove the override"
            )
    return values


def _plain(value: Any) -> Any:
    """A config or data value as plain Python, sequences as lists (for comparing them)."""
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value)
    return list(value) if isinstance(value, list | tuple) else value


def data_info_before_setup(datamodule: Any) -> dict[str, Any]:
    """What a datamodule knows before its ``setup``: the input shape (C, H, W), the number
    of classes (None: unlabelled) and, where it has them, the factors' sizes and names — the
    keys of its ``data_info()`` that models are built from (split sizes follow once it is set
    up)."""
    info: dict[str, Any] = {"input_shape": tuple(datamodule.dims)}
    for key in DATA_FACTS:
        value = getattr(datamodule, key, None)
        if value is not None or key == "num_classes":
            info[key] = list(value) if isinstance(value, list | tuple) else value
    return info


def build_module(
    cfg: DictConfig,
    input_shape: Sequence[int],
    data_info: Mapping[str, Any] | None = None,
) -> L.LightningModule:
    """The LightningModule of a run: the model and the module groups the model uses; a model
    that declares its own ``lightning_module`` gets that one, with its groups as keywords."""
    check_model_groups(cfg, command_line_overrides(cfg))
    model = build_model(cfg, input_shape, data_info)
    groups = usable_groups(type(model))

    def group(name: str) -> Any:
        node = cfg.get(name)
        return instantiate(node) if name in groups and node else None

    module_class = own_module(type(model))
    if module_class is not None:
        return module_class(model, **{name: group(name) for name in groups}, data_info=data_info)
    objective = group("objective")
    if objective is None and "objective" not in groups:
        objective = model.default_objective()
    settings = cfg.get("module") or {}
    trainer = cfg.get("trainer") or {}
    return LatentVariableModule(
        model=model,
        objective=objective,
        weighting=group("beta"),
        optimizer=group("optimizer"),
        lr_scheduler=group("lr_scheduler"),
        check_finite=bool(settings.get("check_finite", True)),
        compile=bool(settings.get("compile", False)),
        gradient_clip_val=trainer.get("gradient_clip_val"),
        gradient_clip_algorithm=trainer.get("gradient_clip_algorithm") or "norm",
        data_info=data_info,
    )


def trainer_overrides(module: L.LightningModule) -> dict[str, Any]:
    """Trainer arguments the module needs changed: with manual optimisation (an objective with
    an adversary) the module clips the gradients itself, and Lightning refuses a trainer that
    would too."""
    if module.automatic_optimization or not getattr(module, "gradient_clip_val", None):
        return {}
    return {"gradient_clip_val": None}


def instantiate_each(group: DictConfig | None) -> list:
    """Every entry of a dict of configs that has a ``_target_`` (callbacks, loggers)."""
    if not group:
        return []
    return [
        instantiate(entry)
        for entry in group.values()
        if isinstance(entry, DictConfig) and "_target_" in entry
    ]
