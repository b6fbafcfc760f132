"""UDR of a sweep's trained models (evaluation/sweep_udr.py) on hand-made digits sweeps of real
checkpoints: every job of a setting gets its scores, equal to UDR computed directly from the
loaded models on the same test observations; jobs are compared only with the seeds of their
setting; a sweep mixing latent sizes or data, or with no setting of two seeds, is refused in
one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from tests.udr_sweep import udr_job
from vaelab.errors import VaelabError
from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
from vaelab.evaluation.sweep import read_sweep
from vaelab.evaluation.sweep_udr import UDR_NAMES, seed_groups, sweep_udr
from vaelab.evaluation.udr import encode_for_udr, udr_scores
from vaelab.run_files import CONFIG_FILE

#: of digits' 180 test images
POINTS = 150


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """Two seeds of β = 1 (jobs 0, 1) and one of β = 4 (job 2), z = 3."""
    root = tmp_path_factory.mktemp("udr_sweep")
    for name, (beta, seed) in enumerate([(1.0, 0), (1.0, 1), (4.0, 0)]):
        udr_job(root, str(name), ["model.latent_dim=3", f"beta.value={beta}"], seed)
    return root


def _copy_jobs(sweep_dir, names, destination):
    for name in names:
        shutil.copytree(sweep_dir / name, destination / name)
    return destination


def test_each_job_gets_the_udr_of_its_models_codes_among_its_settings_seeds(sweep_dir):
    sweep = read_sweep(sweep_dir)
    assert seed_groups(sweep.jobs, sweep.swept) == [[0, 1], [2]]
    result = sweep_udr(sweep, POINTS, progress="silent")
    assert result.groups == [["0", "1"]]
    assert sorted(result.scores) == ["0", "1"]  # β = 4 has one seed: no partner, no score
    assert result.num_points == POINTS
    assert result.informative == {"0": 3, "1": 3, "2": 3}
    # the same numbers from the loaded models, encoding the first test points here
    runs = [load_run(locate_checkpoint(sweep_dir / name), torch.device("cpu")) for name in "01"]
    datamodule = runs[0].datamodule
    images = next(iter(datamodule.test_dataloader()))[0]
    x = datamodule.on_after_batch_transfer([images, None], 0)[0][:POINTS]
    codes = [encode_for_udr(run.module.model, x) for run in runs]
    for name in UDR_NAMES:
        direct = udr_scores(codes, name.removeprefix("udr_")).model_scores
        assert [result.scores[job][name] for job in "01"] == pytest.approx(direct)
        assert all(0.0 < value <= 1.0 for value in direct)
    pairwise = np.array(result.pairwise["udr_spearman"], dtype=float)
    first, other_seed, other_beta = (result.jobs.index(name) for name in "012")
    assert np.isnan(pairwise[first, other_beta])  # β = 1 and β = 4 are never paired
    assert result.scores["0"]["udr_spearman"] == pytest.approx(pairwise[other_seed, first])
    assert json.loads(json.dumps(result.as_json()))["groups"] == [["0", "1"]]


def test_a_sweep_mixing_latent_sizes_is_refused_in_one_line(sweep_dir, tmp_path):
    _copy_jobs(sweep_dir, ["0", "1"], tmp_path)
    udr_job(tmp_path, "2", ["model.latent_dim=2", "beta.value=1.0"], 2)
    with pytest.raises(VaelabError, match="one latent size") as refused:
        sweep_udr(read_sweep(tmp_path), 50, progress="silent")
    message = str(refused.value)
    assert "\n" not in message
    assert "job 2 has 2 latent dimensions and job 0 3" in message


def test_a_sweep_mixing_data_or_without_two_seeds_is_refused(sweep_dir, tmp_path):
    _copy_jobs(sweep_dir, ["0", "1"], tmp_path)
    config = tmp_path / "1" / CONFIG_FILE
    original = config.read_text()
    changed = yaml.safe_load(original)
    changed["data"]["val_size"] = 100
    config.write_text(yaml.safe_dump(changed))
    with pytest.raises(VaelabError, match=r"one data set, but job 1 has data.val_size=100"):
        sweep_udr(read_sweep(tmp_path), 50, progress="silent")
    config.write_text(original)
    overrides = tmp_path / "1" / ".hydra" / "overrides.yaml"
    overrides.write_text(yaml.safe_dump(["model.latent_dim=3", "beta.value=4.0", "seed=1"]))
    with pytest.raises(VaelabError, match="no setting of this sweep has two"):
        sweep_udr(read_sweep(tmp_path), 50, progress="silent")
