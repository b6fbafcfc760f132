"""scripts/gpu_checks.sh, dry-run on the CPU (DEVICE=cpu QUICK=1): the eval stage trains a
model, runs vaelab-eval on it and writes the numbers a GPU session would record."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from vaelab.paths import PROJECT_ROOT

# runs the GPU script end to end on the CPU (a minute)
pytestmark = pytest.mark.slow


def test_eval_stage_trains_evaluates_and_reports(mnist_data_dir, tmp_path):
    out = tmp_path / "gpu"
    env = {**os.environ, "DEVICE": "cpu", "QUICK": "1", "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", "scripts/gpu_checks.sh", "eval", str(mnist_data_dir), str(out)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "eval_metrics.json").read_text())
    assert metrics["num_importance_samples"] == 50
    assert metrics["num_points"] == 1000  # QUICK: 2 test batches of 500
    # the importance-weighted estimate is a tighter bound than the ELBO, on average
    assert math.isfinite(metrics["iw_nll"])
    assert metrics["iw_nll"] <= metrics["neg_elbo"] + 0.5
    assert "k = 50 on 1000 test points" in (out / "eval.md").read_text()
    assert "torch" in (out / "device.txt").read_text()
