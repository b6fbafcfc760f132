"""Every option of every config group composes with the rest and instantiates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from tests.conftest import MODEL_OF_OPTION
from tests.feature_classifier_run import write_feature_classifier_run
from vaelab.builders import (
    MODEL_PART_GROUPS,
    build_module,
    data_info_before_setup,
    instantiate_each,
)
from vaelab.paths import CONFIG_DIR

#: groups whose options are built the way train.py builds them
BUILT_GROUPS = (
    "data",
    "model",
    "likelihood",
    "posterior",
    "prior",
    "objective",
    "beta",
    "optimizer",
    "lr_scheduler",
    "logger",
    "callbacks",
    "paths",
    "trainer",
)
#: trainer options that need hardware this machine lacks are composed and import-checked only
HARDWARE_TRAINERS = {"gpu", "ddp", "ddp_multinode", "mps"}


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


CASES = [(group, option) for group in BUILT_GROUPS for option in _options(group)]


def test_every_built_group_has_options():
    assert {g for g, _ in CASES} == set(BUILT_GROUPS)


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_option_composes_and_instantiates(group, option, make_config, tmp_path):
    model = MODEL_OF_OPTION[group, option].split() if (group, option) in MODEL_OF_OPTION else []
    cfg = make_config(*model, f"{group}={option}", data_dir=tmp_path / "no_data_needed")
    # the model's parts compose under model.<group>, every other group at the top level
    node = cfg.model[group] if group in MODEL_PART_GROUPS else cfg[group]
    assert isinstance(node, DictConfig) or node is None
    if group == "trainer":
        get_class(cfg.trainer._target_)
        if option not in HARDWARE_TRAINERS:
            instantiate(cfg.trainer, callbacks=instantiate_each(cfg.callbacks), logger=False)
        return
    if group in ("logger", "callbacks"):
        built = instantiate_each(cfg[group])
        assert len(built) == sum(1 for v in cfg[group].values() if v and "_target_" in v)
        return
    if group == "paths":
        assert Path(cfg.paths.output_dir) == tmp_path / "run"
        return
    if group == "data" and option == "npz":  # the user's own file: a tiny one where it points
        Path(cfg.data.path).parent.mkdir(parents=True)
        np.savez(cfg.data.path, x=np.zeros((4, 8, 8), np.uint8))
    if (group, option) == ("likelihood", "perceptual"):  # the classifier it reads: a tiny one
        write_feature_classifier_run(Path(cfg.model.likelihood.feature_network.run))
    datamodule = instantiate(cfg.data)
    dims = datamodule.dims
    assert len(dims) == 3
    assert all(d > 0 for d in dims)
    if group == "data":
        return
    module = build_module(cfg, dims, data_info_before_setup(datamodule))
    optimizer = module.configure_optimizers()
    # PCA / PPCA: no optimiser; the feature classifier is a network, not an LVM
    fitted_in_closed_form = not getattr(module.model, "trains_by_gradient", True)
    assert (optimizer is None) == fitted_in_closed_form
    objective = getattr(module, "objective", None)
    if objective is not None and len(objective.optimiser_groups(module.model)) > 1:
        # one optimiser per group: the model's and the adversary's (FactorVAE), three (VAE-GAN)
        assert len(optimizer) == len(objective.optimiser_groups(module.model))


#: the weights each regularised objective's yaml sets, from the paper it cites
PAPER_WEIGHTS = {
    # Kumar et al. 2018: DIP-VAE-I λ_d = 10 λ_od, DIP-VAE-II λ_d = λ_od
    "dip_vae_i": {"lambda_off_diagonal": 10.0, "lambda_diagonal": 100.0},
    "dip_vae_ii": {"lambda_off_diagonal": 10.0, "lambda_diagonal": 10.0},
    # Tolstikhin et al. 2018, MNIST: λ = 10
    "wae_mmd": {"lambda_": 10.0},
}


@pytest.mark.parametrize("option", sorted(PAPER_WEIGHTS))
def test_each_regularised_objective_yaml_sets_its_papers_weights(option):
    from omegaconf import OmegaConf

    node = OmegaConf.load(CONFIG_DIR / "objective" / f"{option}.yaml")
    assert {key: node[key] for key in PAPER_WEIGHTS[option]} == PAPER_WEIGHTS[option]


def test_objective_beta_tcvae_is_never_silently_the_elbo(make_config):
    """β = 1 makes β-TCVAE exactly the ELBO: the option sets Chen et al.'s β = 6 on the total
    correlation, which the command line's beta.value still overrides."""
    assert make_config("objective=beta_tcvae").beta.value == 6.0
    assert make_config("objective=beta_tcvae", "beta.value=2.5").beta.value == 2.5
    assert make_config().beta.value == 1.0  # objective=elbo stays the ELBO
