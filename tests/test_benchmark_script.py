"""scripts/benchmark.py runs end to end on a few steps and prints its table (no speed is
asserted: timings belong in docs/benchmarks.md, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vaelab.paths import PROJECT_ROOT

# runs the benchmark script end to end
pytestmark = pytest.mark.slow

VARIANTS = ["a", "c", "d", "l"]


def test_benchmark_prints_a_row_per_variant_with_a_ratio(mnist_data_dir, tmp_path):
    raw = tmp_path / "raw.json"
    result = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "scripts" / "benchmark.py"),
            f"--data-dir={mnist_data_dir}",
            "--batch-sizes=64",
            "--warmup-steps=2",
            "--timed-images=256",
            "--repeats=1",
            "--threads=1",
            f"--json={raw}",
            "--variants",
            *VARIANTS,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| (")]
    assert [row.split(")")[0].removeprefix("| (") for row in rows] == VARIANTS
    for row in rows:
        ratio = row.rstrip(" |").rsplit("|", 1)[-1].strip()
        assert float(ratio) > 0, row
    measured = json.loads(raw.read_text())
    assert sorted(measured) == sorted(f"{v}@64" for v in VARIANTS)
    assert all(m[0]["images_per_s"] > 0 for m in measured.values())


def test_paired_compile_prints_median_quartiles_and_range_of_each_ratio(mnist_data_dir):
    result = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "scripts" / "benchmark.py"),
            f"--data-dir={mnist_data_dir}",
            "--batch-sizes=64",
            "--warmup-steps=1",
            "--threads=1",
            "--paired-compile=3",
            "--pair-steps=1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "compiles in one graph" in result.stdout + result.stderr
    assert "3 rounds of 1 steps each, 1 threads" in result.stdout
    assert result.stderr.count("(g)/(d) wall") == 3
    for kind in ("wall", "cpu"):
        line = next(x for x in result.stdout.splitlines() if x.strip().startswith(f"{kind}:"))
        median = float(line.split("median ")[1].split(",")[0])
        low, high = (float(v) for v in line.split("range ")[1].split("–"))
        assert 0 < low <= median <= high, line
