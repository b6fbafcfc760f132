"""vaelab-report on a sweep whose jobs have disentanglement metrics: the Locatello-style
figures (metric against β per family over seeds; rank correlation between metrics)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from vaelab.evaluation.disentanglement import METRIC_NAMES
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


def _sweep(root: Path) -> Path:
    for index, (family, beta, seed) in enumerate(
        (f, b, s) for f in FAMILIES for b in BETAS for s in SEEDS
    ):
        folder = root / str(index)
        (folder / ".hydra").mkdir(parents=True)
        overrides = [f"model={family}", f"beta.value={beta}", f"seed={seed}"]
        (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        (folder / "metrics.json").write_text(json.dumps({"val/elbo": -100.0 + beta}))
        (folder / "eval").mkdir()
        (folder / "eval" / "metrics.json").write_text(json.dumps(_metrics(beta, seed, family)))
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
