"""scripts/sampler_table.py: the table of runs × samplers from what vaelab-eval stored."""

from __future__ import annotations

import importlib.util
import json

from vaelab.paths import PROJECT_ROOT


def _script():
    spec = importlib.util.spec_from_file_location(
        "sampler_table", PROJECT_ROOT / "scripts" / "sampler_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_table_lists_each_stored_run_and_sampler(tmp_path, capsys):
    run = tmp_path / "vae"
    (run / "eval").mkdir(parents=True)
    scores = {"gmm": {"fid": 30.27, "precision": 0.8612, "recall": 0.5386}, "prior": {"fid": 98.6}}
    (run / "eval" / "metrics.json").write_text(json.dumps({"samplers": scores}))
    _script().main(["--run", f"VAE={run}", "--samplers", "prior", "gmm", "maf", "--dry-run"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[2:] == [
        "| VAE | prior | 98.6 | — | — |",
        "| VAE | gmm | 30.3 | 0.861 | 0.539 |",
    ]
