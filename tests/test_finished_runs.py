"""A finished run dir is skipped only for the run that made it, and any bytes in a checkpoint's
place are refused with one message."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from tests.conftest import FAST, compose_config
from vaelab.checkpoints import load_checkpoint
from vaelab.errors import VaelabError
from vaelab.run_files import CONFIG_FILE, METRICS_FILE
from vaelab.train import _finished_metrics


def _finished_run(tmp_path, *overrides: str):
    cfg = compose_config([*FAST, "data=digits", *overrides], tmp_path / "run")
    run_dir = tmp_path / "run"
    (run_dir / CONFIG_FILE).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (run_dir / METRICS_FILE).write_text(json.dumps({"val/elbo": -30.0}))
    return run_dir


def test_the_same_run_is_skipped_with_its_metrics(tmp_path):
    _finished_run(tmp_path, "model.latent_dim=3")
    again = compose_config([*FAST, "data=digits", "model.latent_dim=3"], tmp_path / "run")
    assert _finished_metrics(again) == {"val/elbo": -30.0}


def test_another_run_in_a_finished_run_dir_is_refused_not_given_its_metrics(tmp_path):
    _finished_run(tmp_path, "model.latent_dim=3")
    other = compose_config([*FAST, "data=digits", "model.latent_dim=5"], tmp_path / "run")
    with pytest.raises(VaelabError, match=r"other settings \(model differ"):
        _finished_metrics(other)


@pytest.mark.parametrize("content", [b"a" * 64, b"\x80\x02}q\x00.", b"PK\x03\x04 torn"])
def test_any_bytes_in_a_checkpoints_place_are_refused(tmp_path, content):
    path = tmp_path / "last.ckpt"
    path.write_bytes(content)
    with pytest.raises(VaelabError, match="refused to load"):
        load_checkpoint(path)
