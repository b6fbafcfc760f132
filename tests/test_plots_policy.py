"""One picture policy: which pictures a model gets follows from its interface alone, and the
training callback and vaelab-eval both draw what it lists."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest
import torch

import vaelab
from tests.conftest import FAST, compose_config
from vaelab.builders import build_module
from vaelab.models.discrete import DiscreteVAE
from vaelab.models.interface import LatentStructure
from vaelab.models.vae import VAE
from vaelab.nets.mlp import mlp
from vaelab.plots.grids import prior_sample_grid
from vaelab.plots.policy import (
    CLASS_SAMPLES,
    LATENT_GEOMETRY,
    LATENT_MANIFOLD,
    LATENT_TRAVERSALS,
    draw_unless_missing,
    picture_plan,
)
from vaelab.posteriors.categorical import CategoricalPosterior
from vaelab.posteriors.von_mises_fisher import VonMisesFisherPosterior
from vaelab.posteriors.wrapped_normal import WrappedNormalPosterior
from vaelab.priors.categorical import CategoricalPrior
from vaelab.priors.spherical_uniform import SphericalUniformPrior
from vaelab.priors.wrapped_normal import WrappedNormalPrior

SHAPE = (1, 8, 8)
DATA_INFO = {"input_shape": SHAPE, "num_classes": 10, "num_train": 100}


def _model(tmp_path, *overrides: str):
    cfg = compose_config([*FAST, *overrides], tmp_path / "run")
    torch.manual_seed(0)
    return build_module(cfg, SHAPE, data_info=DATA_INFO).eval().model


def test_a_flat_vae_gets_samples_and_traversals(tmp_path):
    plan = picture_plan(_model(tmp_path, "model.latent_dim=3"))
    assert plan.reconstructions
    assert plan.samples
    assert plan.class_rows is None
    assert not plan.latent_manifold
    assert plan.traversals
    assert plan.code_dim == 3
    assert plan.skipped == {
        CLASS_SAMPLES: "the model is not class-conditional",
        LATENT_MANIFOLD: "needs latent_dim = 2, got 3",
    }


def test_a_two_dimensional_latent_gets_the_manifold_instead_of_traversals(tmp_path):
    plan = picture_plan(_model(tmp_path, "model.latent_dim=2"))
    assert plan.latent_manifold
    assert not plan.traversals
    assert plan.skipped[LATENT_TRAVERSALS] == "latent_dim = 2: see latent_manifold"


def test_a_class_conditional_vae_gets_one_row_per_class_and_no_manifold(tmp_path):
    plan = picture_plan(_model(tmp_path, "model=cvae_mlp", "model.latent_dim=2"))
    assert plan.class_rows == 10
    assert plan.samples
    assert not plan.latent_manifold
    assert plan.traversals
    assert plan.skipped == {LATENT_MANIFOLD: "a class-conditional model: see class samples"}


def test_a_model_without_a_prior_still_shows_its_samples(tmp_path):
    autoencoder = _model(tmp_path, "model=autoencoder", "model.latent_dim=2")
    plan = picture_plan(autoencoder)
    assert plan.samples
    assert plan.latent_manifold
    grid, missing = draw_unless_missing(lambda: prior_sample_grid(autoencoder, 4))
    assert missing is None
    assert grid.shape[0] == 3


def test_a_model_that_cannot_sample_yet_is_skipped_with_its_reason(tmp_path):
    stage1 = _model(tmp_path, "model=vqvae", "data=digits")
    assert picture_plan(stage1).samples
    grid, missing = draw_unless_missing(lambda: prior_sample_grid(stage1, 4))
    assert grid is None
    assert "no learned prior p(z) to sample from" in missing


def test_the_plan_reads_the_declared_latent_structure_not_latent_dim(tmp_path, monkeypatch):
    model = _model(tmp_path, "model.latent_dim=3")
    declared = LatentStructure(layers=(3, 5), code_dim=2)
    monkeypatch.setattr(type(model), "latent_structure", property(lambda _self: declared))
    plan = picture_plan(model)
    assert plan.code_dim == 2
    assert plan.latent_manifold


@pytest.mark.parametrize("package", ["callbacks", "plots"])
def test_pictures_never_ask_what_class_a_model_is(package):
    """The interface, not isinstance(model, …), says what a model has."""
    offending = []
    for path in sorted((Path(vaelab.__file__).parent / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "isinstance"
                and "model" in ast.unparse(node.args[0]).lower()
            ):
                offending.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert not offending, offending


def test_categorical_codes_get_discrete_traversals_and_continuous_ones_sweep_the_rest():
    def discrete(continuous_dim: int) -> DiscreteVAE:
        return DiscreteVAE(
            net=functools.partial(mlp, hidden_dims=[8]),
            num_variables=2,
            input_shape=SHAPE,
            posterior=CategoricalPosterior(num_categories=3, continuous_dim=continuous_dim),
            prior=CategoricalPrior(),
        )

    gumbel = picture_plan(discrete(continuous_dim=0))
    assert gumbel.discrete_traversals
    assert not gumbel.traversals
    assert "every code dimension is categorical" in gumbel.skipped[LATENT_TRAVERSALS]
    joint = picture_plan(discrete(continuous_dim=2))
    assert joint.discrete_traversals
    assert joint.traversals
    assert LATENT_TRAVERSALS not in joint.skipped


# -- latents off R^D: the codes drawn on their manifold ------------------------------------------
def _manifold_vae(posterior, prior, latent_dim: int):
    def net(**kw):
        return mlp(hidden_dims=[8], **kw)

    return VAE(net, latent_dim, (1, 4, 4), posterior=posterior, prior=prior)


def test_a_sphere_of_three_and_a_disc_get_the_geometry_picture_and_no_sweeps_of_r_d():
    sphere = picture_plan(_manifold_vae(VonMisesFisherPosterior(), SphericalUniformPrior(), 3))
    disc = picture_plan(_manifold_vae(WrappedNormalPosterior(), WrappedNormalPrior(), 2))
    for plan in (sphere, disc):
        assert plan.latent_geometry
        assert not plan.latent_manifold
        assert not plan.traversals
        assert "leaves it" in plan.skipped[LATENT_TRAVERSALS]
    wide = picture_plan(_manifold_vae(VonMisesFisherPosterior(), SphericalUniformPrior(), 10))
    assert not wide.latent_geometry
    assert "latent_dim = 10" in wide.skipped[LATENT_GEOMETRY]
