"""The schema's annotations are the one source of every range: a class built from Python is
refused with exactly the message the config check gives for the same value."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pytest
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf

from tests.conftest import FAST, compose_config
from vaelab.callbacks.image_logger import ImageLogger
from vaelab.config_checks import validate_config
from vaelab.data.mnist import MNISTDataModule
from vaelab.errors import VaelabError
from vaelab.models.hierarchical import HierarchicalVAE
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.nets.pooled_cnn import pooled_cnn
from vaelab.objectives import ELBO, IWAE
from vaelab.objectives.ciwae import CIWAE
from vaelab.objectives.info_vae import InfoVAE
from vaelab.paths import CONFIG_DIR
from vaelab.posteriors.iaf import IAFPosterior
from vaelab.priors.flow import FlowPrior
from vaelab.priors.mixture import MixturePrior
from vaelab.schedules import ConstantBeta, CyclicalBeta
from vaelab.schema import (
    InvalidArguments,
    Range,
    check_targets,
    checked_arguments,
    checked_at,
    spec_of,
    target_nodes,
)

NET_SIZES = {
    "input_shape": (1, 28, 28),
    "latent_dim": 2,
    "encoder_out_features": 4,
    "decoder_out_channels": 1,
}


def _config_message(tmp_path: Path, *overrides: str) -> str:
    cfg = compose_config([*FAST, f"paths.data_dir={tmp_path / 'absent'}", *overrides], tmp_path)
    with pytest.raises(VaelabError) as err:
        validate_config(cfg)
    return str(err.value)


@pytest.mark.parametrize(
    ("overrides", "build"),
    [
        (
            ["prior=mixture", "model.prior.num_components=0"],
            lambda: MixturePrior(num_components=0),
        ),
        (["beta.value=-0.5"], lambda: ConstantBeta(-0.5)),
        (
            ["model.net.hidden_dims=[400,0]"],
            lambda: mlp(**NET_SIZES, hidden_dims=[400, 0]),
        ),
        (
            ["posterior=iaf", "model.posterior.context_dim=-1"],
            lambda: IAFPosterior(context_dim=-1),
        ),
        (
            ["data.batch_size=0", "data.val_size=1.5"],
            lambda: MNISTDataModule(data_dir="absent", batch_size=0, val_size=1.5),
        ),
        (["objective=iwae", "objective.num_samples=0"], lambda: IWAE(num_samples=0)),
        (
            ["objective=ciwae", "objective.elbo_weight=1.5", "objective.gradient=score"],
            lambda: CIWAE(elbo_weight=1.5, gradient="score"),
        ),
        (["objective=info_vae", "objective.alpha=1.5"], lambda: InfoVAE(alpha=1.5)),
        (["objective.kl=closed_form"], lambda: ELBO(kl="closed_form")),
        (
            ["model.latent_dim=0"],
            lambda: VAE(net=mlp, latent_dim=0, input_shape=NET_SIZES["input_shape"]),
        ),
        (
            ["model=hierarchical_mlp", "model.latent_dims=[100,0]"],
            lambda: HierarchicalVAE(
                latent_dims=[100, 0], hidden_dims=[[8], [8]], input_shape=(1, 28, 28)
            ),
        ),
        (["prior=flow", "model.prior.num_flows=0"], lambda: FlowPrior(num_flows=0)),
        (
            ["callbacks.image_logger.every_n_epochs=0"],
            lambda: ImageLogger(every_n_epochs=0),
        ),
    ],
)
def test_a_class_built_from_python_gets_the_config_checks_message(tmp_path, overrides, build):
    expected = _config_message(tmp_path, *overrides)
    with pytest.raises(InvalidArguments) as err:
        build()
    assert str(err.value) == expected
    assert str(err.value).startswith("invalid config: ")


def test_the_error_is_a_value_error_and_a_vaelab_error():
    with pytest.raises(ValueError, match=r"beta\.value=-1\.0 must be a number >= 0"):
        ConstantBeta(-1.0)
    assert issubclass(InvalidArguments, VaelabError)


def test_config_containers_numpy_numbers_and_built_objects_pass():
    hidden = OmegaConf.create([8, 4])
    networks = mlp(**NET_SIZES, hidden_dims=hidden)  # Hydra hands over ListConfigs
    assert networks.encoder is not None
    assert MixturePrior(num_components=np.int64(3)).num_components == 3
    node = OmegaConf.create({"_target_": "vaelab.nets.pooled_cnn.pooled_cnn", "_partial_": True})
    builder = instantiate(node, channels=[4, 2])
    assert builder(**NET_SIZES) is not None
    with pytest.raises(InvalidArguments, match=r"model\.net\.channels=\[4\] must be a list of 2"):
        pooled_cnn(**NET_SIZES, channels=[4])


def test_a_relation_between_parameters_is_still_checked_by_the_constructor():
    CyclicalBeta(total_steps=4, num_cycles=4)
    with pytest.raises(ValueError, match="num_cycles <= total_steps"):
        CyclicalBeta(total_steps=3, num_cycles=4)


def test_defaults_and_variadic_arguments_are_not_checked_only_passed_ones():
    calls = []

    @checked_arguments("thing")
    class Thing:
        def __init__(self, size: int = -5, *args, **kwargs) -> None:
            calls.append(size)

    Thing()  # a default is the code's own value
    Thing(3, "extra", other=1.5)
    with pytest.raises(InvalidArguments, match=r"^invalid config: thing\.size=2\.5 must be an"):
        Thing(2.5)
    with pytest.raises(TypeError):  # Python's own error for an argument it does not take
        Thing(1, size=2)
    assert calls == [-5, 3]
    assert checked_at(Thing) == "thing"


#: packages whose classes check their own arguments
CHECKED_PACKAGES = (
    "vaelab.nets.",
    "vaelab.likelihoods.",
    "vaelab.posteriors.",
    "vaelab.priors.",
    "vaelab.schedules.",
    "vaelab.data.",
    "vaelab.objectives.",
    "vaelab.models.",
    "vaelab.flows.",
    "vaelab.baselines.",
)


def _shipped_targets() -> set[str]:
    names = set()
    for path in CONFIG_DIR.rglob("*.yaml"):
        tree = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        names |= {str(node["_target_"]) for _, node in target_nodes(tree)}
    return names


def test_every_shipped_target_with_parameters_in_these_packages_checks_its_arguments():
    targets = sorted(name for name in _shipped_targets() if name.startswith(CHECKED_PACKAGES))
    assert len(targets) > 40
    unchecked = [
        name
        for name in targets
        if spec_of(get_object(name)).annotations and checked_at(get_object(name)) is None
    ]
    assert not unchecked, unchecked


def test_eval_settings_are_checked_by_the_dataclasses_vaelab_eval_builds():
    """eval.disentanglement and eval.pictures are checked by the settings classes themselves:
    one declaration, the same message from a config and from Python."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from vaelab.config_checks import EvalSettings
    from vaelab.evaluation.disentanglement.settings import DisentanglementSettings
    from vaelab.plots.pictures import PictureSettings

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for override, build in [
            ("eval.disentanglement.group_size=1", lambda: DisentanglementSettings(group_size=1)),
            ("eval.pictures.manifold_points=1", lambda: PictureSettings(manifold_points=1)),
        ]:
            with pytest.raises(VaelabError) as from_config:
                validate_config(compose("eval", overrides=[override]), EvalSettings)
            with pytest.raises(InvalidArguments) as from_python:
                build()
            assert str(from_python.value) == str(from_config.value)
    GlobalHydra.instance().clear()


class _Marked:
    """A target with ranges and a closed set declared next to its parameters."""

    def __init__(
        self, size: Annotated[int, Range(ge=1)], mode: Literal["fast", "exact"] = "fast"
    ) -> None:
        self.size, self.mode = size, mode


class _Forwarding(_Marked):
    def __init__(self, scale: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = scale


def test_the_schema_follows_the_target_wherever_a_config_puts_it():
    target = f"{__name__}._Marked"
    for where in ("model", "model.prior", "callbacks.extra"):
        tree: dict = {}
        node = tree
        for part in where.split("."):
            node = node.setdefault(part, {})
        node.update({"_target_": target, "size": 0, "mode": "Fast", "sise": 3})
        problems = {p.key: p.requirement for p in check_targets(tree).problems}
        assert problems == {
            f"{where}.size": "must be an integer >= 1",
            f"{where}.mode": "must be one of fast, exact (did you mean fast?)",
            f"{where}.sise": "is not a known key (did you mean size?); known: mode, size",
        }
    # **kwargs passed on to the base class: the base's parameters are the known keys
    forwarded = {"_target_": f"{__name__}._Forwarding", "size": 2, "scale": 0.5, "other": 1}
    assert [str(p) for p in check_targets({"m": forwarded}).problems] == [
        "m.other=1 is not a known key; known: mode, scale, size"
    ]


def _integers_without_a_range(annotation: object, has_range: bool = False) -> int:
    """How many ``int`` inside ``annotation`` (a union, list, tuple, dict …) carry no Range."""
    if typing.get_origin(annotation) is Annotated:
        base, *markers = typing.get_args(annotation)
        return _integers_without_a_range(base, any(isinstance(m, Range) for m in markers))
    if annotation is int:
        return 0 if has_range else 1
    return sum(
        _integers_without_a_range(arg) for arg in typing.get_args(annotation) if arg is not ...
    )


def test_every_integer_parameter_of_every_shipped_target_has_a_range():
    """Sizes, widths, channels, kernels, counts: an integer a config can set is declared with
    its range, so `model.net.hidden_dims=[-5]` is named by the schema, never by torch."""
    assert _integers_without_a_range(list[Annotated[int, Range(ge=1)]]) == 0
    assert _integers_without_a_range(int | None) == 1
    unbounded = [
        f"{name}.{parameter}"
        for name in sorted(_shipped_targets())
        for parameter, annotation in spec_of(get_object(name)).annotations.items()
        if _integers_without_a_range(annotation)
    ]
    assert not unbounded, unbounded


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: mlp(**{**NET_SIZES, "input_shape": (1, -28, 28)}),
            r"model\.net\.input_shape=\[1, -28, 28\] must be a list; its item -28 must be an "
            r"integer >= 1",
        ),
        (lambda: mlp(**NET_SIZES, hidden_dims=[-5]), r"model\.net\.hidden_dims=\[-5\]"),
        (
            lambda: ImageLogger(num_samples=-3),
            r"callbacks\.image_logger\.num_samples=-3 must be an integer >= 1",
        ),
    ],
)
def test_sizes_filled_from_the_data_or_set_by_hand_are_refused_naming_the_key(build, message):
    with pytest.raises(InvalidArguments, match=message):
        build()
