"""vaelab.evaluation.sweep: a sweep job's overrides keep their types."""

from __future__ import annotations

import json

from tests.sweep_job import sweep_job


def test_report_overrides_keep_their_types(tmp_path):
    from vaelab.evaluation.sweep import parse_override, read_sweep

    assert parse_override("model.net.hidden_dims=[400,200]") == (
        "model.net.hidden_dims",
        [400, 200],
    )
    assert parse_override("ckpt_path=null") == ("ckpt_path", None)
    assert parse_override("task_name='007'") == ("task_name", "007")
    sweep_job(tmp_path, "0", 0.01, json.dumps({"val/elbo": -150.0}))
    job = read_sweep(tmp_path).jobs[0]
    assert job.params == {
        "optimizer.lr": 0.01,
        "model.net.hidden_dims": [400, 200],
        "ckpt_path": None,
    }
