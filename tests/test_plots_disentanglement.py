"""vaelab.plots.disentanglement: the rank correlation between metrics and the regulariser each job
is plotted against."""

from __future__ import annotations

import numpy as np

from tests.disentanglement_sweep import BETAS, FAMILIES, SEEDS, sweep_metrics
from vaelab.plots.disentanglement import MetricJob, rank_correlation, regulariser_parameter


def test_rank_correlation_of_monotone_and_reversed_metrics():
    jobs = [MetricJob({}, sweep_metrics(b, s, f)) for f in FAMILIES for b in BETAS for s in SEEDS]
    matrix = rank_correlation(jobs, ["mig", "sap", "explicitness"])
    np.testing.assert_allclose(matrix, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]], atol=1e-12)


def test_regulariser_is_beta_or_gamma():
    assert regulariser_parameter(["model", "beta.value", "seed"]) == "beta.value"
    assert regulariser_parameter(["objective.gamma", "seed"]) == "objective.gamma"
    assert regulariser_parameter(["model.latent_dim"]) is None
