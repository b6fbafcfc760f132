"""vaelab.api.compose: ``vaelab.compose`` gives the config ``vaelab-train`` runs with, refuses
what the command line refuses with the same one line, and Python values become overrides
that Hydra's parser reads back unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

import vaelab
from tests.conftest import compose_config
from tests.entry_points import cli_error
from vaelab.api.compose import override
from vaelab.evaluation.sweep import parse_overrides
from vaelab.paths import PROJECT_ROOT


def test_compose_gives_the_config_a_run_gets(tmp_path):
    overrides = ["data=digits", "model.latent_dim=4", "beta.value=2"]
    composed = vaelab.compose(*overrides)
    run = compose_config(overrides, tmp_path / "run")  # as Hydra hands it to vaelab-train
    assert composed.model.latent_dim == 4
    assert composed.beta == run.beta
    assert composed.model == run.model
    assert composed.data == run.data
    assert Path(composed.paths.output_dir).parent == PROJECT_ROOT / "logs" / "train" / "runs"
    # resolved: readable without Hydra, the overrides recorded as the hparams logger sees them
    assert "${" not in OmegaConf.to_yaml(composed)
    assert list(composed.callbacks.hparams_logger.overrides) == overrides
    evaluation = vaelab.compose("ckpt_path=/nowhere", "eval.num_samples=7", config="eval")
    assert evaluation.eval.num_samples == 7


@pytest.mark.parametrize(
    ("overrides", "gist"),
    [
        (["data=nope"], "Could not find 'data/nope'"),
        (["model.latent_dim=0"], "model.latent_dim=0 must be an integer >= 1"),
    ],
)
def test_a_bad_override_is_the_command_lines_one_line_error(
    overrides, gist, monkeypatch, capsys, tmp_path
):
    from vaelab.train import main

    with pytest.raises(vaelab.VaelabError) as raised:
        vaelab.compose(*overrides)
    message = cli_error(
        main, ["vaelab-train", *overrides, f"paths.log_dir={tmp_path}"], monkeypatch, capsys
    )
    assert str(raised.value) == message
    assert gist in message


def test_flags_and_unknown_configs_are_refused():
    with pytest.raises(vaelab.VaelabError, match="a sweep from Python is a loop over"):
        vaelab.compose("--multirun", "beta.value=1,2")
    with pytest.raises(vaelab.VaelabError, match="Could not override 'no_such_key'"):
        vaelab.compose("no_such_key=1")
    with pytest.raises(vaelab.VaelabError, match="config='train'"):
        vaelab.compose(config="report")


@pytest.mark.parametrize(
    "value",
    [
        "a b",
        "it's",
        "back\\slash",
        "ends in \\",
        "\\'",
        "x,y=[1]",
        "",
        3,
        0.25,
        True,
        None,
        [1, "two"],
    ],
)
def test_python_values_are_overrides_hydra_reads_back(value):
    (text,) = override("some.key", value)
    assert parse_overrides([text]) == {"some.key": value}


def test_a_mapping_sets_each_key_and_an_object_is_refused():
    assert override("eval", {"seed": 1, "pictures": {"traversal_steps": 5}}) == [
        "eval.seed=1",
        "eval.pictures.traversal_steps=5",
    ]
    assert override("p", Path("/a b")) == ["p='/a b'"]
    with pytest.raises(vaelab.VaelabError, match="cannot pass object"):
        override("key", object())
