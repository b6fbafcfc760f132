"""The example notebooks run: docs/examples/explore_a_run.ipynb is executed top to bottom in
a fresh kernel (nbclient, from the dev extra) on digits, within about a minute, and shows
what it says; the copy in the repository has its outputs stripped."""

from __future__ import annotations

import json
import os
import time

import pytest

from vaelab.paths import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "docs" / "examples" / "explore_a_run.ipynb"
#: seconds the notebook may take, kernel start-up included ("under a minute" on an idle CPU;
#: the margin is for a machine shared with other jobs)
TIME_LIMIT = 120
#: seconds one cell may take before nbclient gives up (the time limit above is the test)
CELL_TIMEOUT = 600


def _read():
    import nbformat

    return nbformat.read(NOTEBOOK, as_version=4)


def test_the_notebook_is_committed_without_outputs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code
    assert all(not cell["outputs"] and cell["execution_count"] is None for cell in code)


def _text(output) -> str:
    if output.output_type == "stream":
        return output.text
    data = output.get("data", {})
    return data.get("text/plain", "") + data.get("text/html", "")


@pytest.mark.slow
def test_explore_a_run_runs_top_to_bottom_on_digits(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    notebook = _read()
    source = str(PROJECT_ROOT / "src")  # the kernel imports this checkout's vaelab
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
    )
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    started = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - started
    assert elapsed < TIME_LIMIT, f"the notebook took {elapsed:.0f} s"
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(_text(output) for output in outputs)
    assert "Run('" in text
    assert "E_q[z|x]: (16, 2)" in text
    assert "IW-NLL " in text
    assert "active units" in text
    assert "beta.value" in text  # the sweep's table
    assert "job 0: beta = 1" in text
    assert "job 1: beta = 4" in text
    assert "failed jobs: none" in text
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) >= 6  # reconstructions, traversal, samples, codes, one per job
    for job in ("0", "1"):
        assert (tmp_path / "explore_a_run_sweep" / job / "metrics.json").is_file()
        assert (tmp_path / "explore_a_run_sweep" / job / ".hydra" / "overrides.yaml").is_file()
