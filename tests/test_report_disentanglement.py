"""vaelab-report on a sweep whose jobs have disentanglement metrics: the Locatello-style
figures (metric against β per family over seeds; rank correlation between metrics)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from vaelab.evaluation.conditional import DISENTANGLEMENT_SETTINGS_KEY
from vaelab.evaluation.disentanglement import METRIC_NAMES
from vaelab.evaluation.disentanglement.settings import DisentanglementSettings
from vaelab.evaluation.sweep import read_sweep
from vaelab.plots.disentanglement import MetricJob, rank_correlation, regulariser_parameter
from vaelab.report import DISENTANGLEMENT_PNG, RANK_CORRELATION_PNG, render_markdown
from vaelab.report import main as report_main

BETAS = (1, 4, 16)
SEEDS = (0, 1)
FAMILIES = ("mlp", "conv")


def _metrics(beta: float, seed: int, family: str) -> dict[str, float]:
    """MIG rises with β, SAP is a monotone function of MIG, explicitness falls with β, the rest
    also rise; seeds and families shift them a little."""
    base = np.log(beta) / np.log(16) * 0.8 + 0.01 * seed + (0.05 if family == "conv" else 0.0)
    values = {name: float(base) for name in METRIC_NAMES}
    values["sap"] = float(base**2)
    values["explicitness"] = float(1 - base)
    return values


def _sweep(root: Path, settings: dict | None = None) -> Path:
    """``settings``: the disentanglement sample sizes each job's eval/metrics.json records."""
    for index, (family, beta, seed) in enumerate(
        (f, b, s) for f in FAMILIES for b in BETAS for s in SEEDS
    ):
        folder = root / str(index)
        (folder / ".hydra").mkdir(parents=True)
        overrides = [f"model={family}", f"beta.value={beta}", f"seed={seed}"]
        (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        (folder / "metrics.json").write_text(json.dumps({"val/elbo": -100.0 + beta}))
        (folder / "eval").mkdir()
        scores = {**_metrics(beta, seed, family)}
        if settings is not None:
            scores[DISENTANGLEMENT_SETTINGS_KEY] = {**settings, "seed": seed}
        (folder / "eval" / "metrics.json").write_text(json.dumps(scores))
    return root


def test_rank_correlation_of_monotone_and_reversed_metrics():
    jobs = [MetricJob({}, _metrics(b, s, f)) for f in FAMILIES for b in BETAS for s in SEEDS]
    matrix = rank_correlation(jobs, ["mig", "sap", "explicitness"])
    np.testing.assert_allclose(matrix, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]], atol=1e-12)


def test_regulariser_is_beta_or_gamma():
    assert regulariser_parameter(["model", "beta.value", "seed"]) == "beta.value"
    assert regulariser_parameter(["objective.gamma", "seed"]) == "objective.gamma"
    assert regulariser_parameter(["model.latent_dim"]) is None


def test_report_section_lists_every_job_with_its_metrics(tmp_path):
    sweep = read_sweep(_sweep(tmp_path / "sweep"))
    markdown = render_markdown(sweep, "report.png", [DISENTANGLEMENT_PNG])
    section = markdown.split("## Disentanglement metrics", 1)[1]
    assert f"]({DISENTANGLEMENT_PNG})" in section
    assert "Against beta.value" in section
    rows = [line for line in section.splitlines() if line.startswith("| ") and "job" not in line]
    assert len(rows) == len(FAMILIES) * len(BETAS) * len(SEEDS)
    header = next(line for line in section.splitlines() if line.startswith("| job"))
    assert all(name in header for name in METRIC_NAMES)


def _sizes_sentence(tmp_path: Path, settings: dict | None) -> str:
    sweep = read_sweep(_sweep(tmp_path / "sweep", settings))
    section = render_markdown(sweep, None).split("## Disentanglement metrics", 1)[1]
    return next(line for line in section.splitlines() if "jobs evaluated" in line)


def test_report_says_at_which_sample_sizes_the_scores_were_computed(tmp_path):
    literature = vars(DisentanglementSettings()) | {"encode_batch_size": 256}
    assert "definitions and sample sizes." in _sizes_sentence(tmp_path / "a", literature)
    smaller = literature | {"num_train": 1000, "num_eval": 500}
    sentence = _sizes_sentence(tmp_path / "b", smaller)
    assert "num_train=1000 (10000), num_eval=500 (5000); smaller samples" in sentence
    assert "num_variance_estimate" not in sentence  # unchanged sizes are not listed
    assert "definitions." in _sizes_sentence(tmp_path / "c", None)


def test_report_warns_when_jobs_were_scored_at_different_sizes(tmp_path):
    root = _sweep(tmp_path / "sweep", vars(DisentanglementSettings()))
    eval_file = root / "0" / "eval" / "metrics.json"
    scores = json.loads(eval_file.read_text())
    scores[DISENTANGLEMENT_SETTINGS_KEY]["num_train"] = 500
    eval_file.write_text(json.dumps(scores))
    section = render_markdown(read_sweep(root), None).split("## Disentanglement metrics", 1)[1]
    assert "sample sizes differ" in section


def test_report_prints_whole_numbers_as_integers(tmp_path):
    """val/elbo = −100 + β is a whole float (−84.0 at β = 16): printed −84, not −84.00."""
    markdown = render_markdown(read_sweep(_sweep(tmp_path / "sweep")), None)
    assert "| -84 |" in markdown
    assert "-84.00" not in markdown


@pytest.mark.slow
def test_report_draws_the_disentanglement_figures(tmp_path):
    sweep = _sweep(tmp_path / "sweep")
    report_main([str(sweep)])
    markdown = (sweep / "report.md").read_text()
    assert "## Disentanglement metrics" in markdown
    for name in (DISENTANGLEMENT_PNG, RANK_CORRELATION_PNG):
        assert f"]({name})" in markdown
        with Image.open(sweep / name) as image:
            assert image.format == "PNG"
    section = markdown.split("## Disentanglement metrics", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "job" not in line]
    assert len(rows) == len(FAMILIES) * len(BETAS) * len(SEEDS)


@pytest.mark.slow
def test_a_sweep_without_disentanglement_metrics_has_no_such_section(tmp_path):
    sweep = _sweep(tmp_path / "sweep")
    for folder in sweep.iterdir():
        (folder / "eval" / "metrics.json").write_text(json.dumps({"iw_nll": 90.0}))
    report_main([str(sweep)])
    assert "Disentanglement" not in (sweep / "report.md").read_text()
    assert not (sweep / DISENTANGLEMENT_PNG).exists()
