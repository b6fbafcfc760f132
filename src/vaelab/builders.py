"""Build the model and the LightningModule from a composed config (train and eval share it).

``cfg.model`` is the model (its ``_target_`` a :class:`~vaelab.models.interface.
LatentVariableModel`) with its parts composed under it by the ``posterior=``,
``likelihood=`` and ``prior=`` groups; the module gets the model, ``objective=``, ``beta=``,
``optimizer=`` and ``lr_scheduler=``. A group the model cannot use is refused by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel, input_shape_of
from vaelab.module import LatentVariableModule

#: groups composed into the model (packages model.<group>)
MODEL_PART_GROUPS = ("posterior", "likelihood", "prior")
#: groups handed to the LightningModule
MODULE_GROUPS = ("objective", "beta", "optimizer", "lr_scheduler")


def model_class(cfg: DictConfig) -> type[LatentVariableModel]:
    target = OmegaConf.select(cfg, "model._target_")
    cls = get_class(target) if target else None
    if cls is None or not (isinstance(cls, type) and issubclass(cls, LatentVariableModel)):
        raise VaelabError(
            f"model._target_={target!r} is not a vaelab latent-variable model (a subclass of "
            "vaelab.models.interface.LatentVariableModel); choose a model= from conf/model/"
        )
    return cls


def usable_groups(cls: type[LatentVariableModel]) -> set[str]:
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
    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("model")
        if choice:
            return str(choice)
    return cls.__name__


def build_model(
    cfg: DictConfig, input_shape: Sequence[int], data_info: Mapping[str, Any] | None = None
) -> LatentVariableModel:
    """``cfg.model`` instantiated for data of ``input_shape`` (C, H, W); parts composed by
    default that this model does not take are left out. A model whose constructor takes
    ``num_classes`` (a conditional VAE) gets the data's, from ``data_info``."""
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
    from_data: dict[str, Any] = {}
    if "num_classes" in inspect.signature(cls).parameters:
        from_data["num_classes"] = _data_num_classes(cfg, cls, data_info)
        with open_dict(model_cfg):
            model_cfg.pop("num_classes", None)
    return instantiate(model_cfg, input_shape=data_shape, **from_data)


def _data_num_classes(
    cfg: DictConfig, cls: type, data_info: Mapping[str, Any] | None
) -> int | None:
    """The number of classes of the data (``datamodule.data_info()``) for a model that is
    conditioned on the label; a ``model.num_classes`` that disagrees is refused."""
    if data_info is None or "num_classes" not in data_info:
        raise VaelabError(
            f"{cls.__name__} is conditioned on the class label: build it with the "
            "datamodule's data_info() (it knows num_classes)"
        )
    num_classes = data_info["num_classes"]
    declared = cfg.model.get("num_classes")
    if declared is not None and declared != num_classes:
        raise VaelabError(
            f"model.num_classes={declared} does not match the data's {num_classes} classes; "
            "the number of classes comes from the data: remove the override"
        )
    return num_classes


def data_info_before_setup(datamodule: Any) -> dict[str, Any]:
    """What a datamodule knows before its ``setup``: the input shape (C, H, W) and the number
    of classes (None: unlabelled) — the keys of its ``data_info()`` that models are built
    from (split sizes follow once it is set up)."""
    return {
        "input_shape": tuple(datamodule.dims),
        "num_classes": getattr(datamodule, "num_classes", None),
    }


def build_module(
    cfg: DictConfig,
    input_shape: Sequence[int],
    data_info: Mapping[str, Any] | None = None,
) -> LatentVariableModule:
    """The LightningModule of a run: the model and the module groups the model uses."""
    check_model_groups(cfg, command_line_overrides(cfg))
    model = build_model(cfg, input_shape, data_info)
    groups = usable_groups(type(model))

    def group(name: str) -> Any:
        node = cfg.get(name)
        return instantiate(node) if name in groups and node else None

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


def trainer_overrides(module: LatentVariableModule) -> dict[str, Any]:
    """Trainer arguments the module needs changed: with manual optimisation (an objective with
    an adversary) the module clips the gradients itself, and Lightning refuses a trainer that
    would too."""
    if module.automatic_optimization or not module.gradient_clip_val:
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
