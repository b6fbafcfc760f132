"""vaelab.api.sweep: ``vaelab.load_sweep`` reads a sweep as ``vaelab-report`` does — the
same table of finished jobs, best first, as plain rows (and as a DataFrame), the failed jobs
with their error, and vaelab-report's error for a folder that is not a sweep."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import vaelab
from vaelab.report import main as report_main


def _job(root: Path, name: str, overrides: list[str], metrics=None, error=None) -> None:
    folder = root / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / "config.yaml").write_text(yaml.safe_dump({"optimized_metric": "val/elbo"}))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    if error is not None:
        (folder / "error.txt").write_text(f"{error}\n\nTraceback (most recent call last): ...")


@pytest.fixture
def sweep_dir(tmp_path) -> Path:
    _job(tmp_path, "0", ["beta.value=1", "seed=1"], {"val/elbo": -150.5, "test/kl": 3.0})
    _job(tmp_path, "1", ["beta.value=4", "seed=1"], {"val/elbo": -140.25, "test/kl": 0.5})
    _job(tmp_path, "2", ["beta.value=16", "seed=1"], error="invalid config: beta.value=16 …")
    return tmp_path


def _report_rows(markdown: str) -> list[list[str]]:
    """The cells of report.md's table of finished jobs."""
    section = markdown.split("## Finished jobs, best first", 1)[1].split("##", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


def test_the_table_is_vaelab_reports_as_plain_rows(sweep_dir):
    sweep = vaelab.load_sweep(sweep_dir)
    assert sweep.metric == "val/elbo"
    assert sweep.maximize
    assert sweep.swept == ["beta.value"]
    rows = sweep.table()
    assert rows == [
        {"rank": 1, "job": "1", "beta.value": 4, "val/elbo": -140.25, "test/kl": 0.5},
        {"rank": 2, "job": "0", "beta.value": 1, "val/elbo": -150.5, "test/kl": 3.0},
    ]
    report_main([str(sweep_dir)])
    cells = _report_rows((sweep_dir / "report.md").read_text())
    assert [re.sub(r"\[(\w+)\]\(.*\)", r"\1", row[1]) for row in cells] == ["1", "0"]
    assert [float(row[3]) for row in cells] == [row["val/elbo"] for row in rows]
    assert sweep.failed == {"2": "invalid config: beta.value=16 …"}
    assert sweep.unreadable == {}


def test_to_pandas_holds_the_same_rows(sweep_dir):
    pytest.importorskip("pandas")
    frame = vaelab.load_sweep(sweep_dir).to_pandas()
    assert list(frame.columns) == ["rank", "job", "beta.value", "val/elbo", "test/kl"]
    assert frame.to_dict("records") == vaelab.load_sweep(sweep_dir).table()


def test_a_folder_that_is_no_sweep_is_vaelab_reports_error(tmp_path, capsys):
    with pytest.raises(vaelab.VaelabError) as raised:
        vaelab.load_sweep(tmp_path)
    with pytest.raises(SystemExit):
        report_main([str(tmp_path)])
    assert f"vaelab: error: {raised.value}" in capsys.readouterr().err
    assert "no jobs in" in str(raised.value)
