"""vaelab.report (vaelab-report) on a real 3-job Hydra multirun (one job fails) and on hand-made
sweep dirs (readable jobs ranked, unreadable ones listed with why, an unwritable output folder
in one line); on a sweep whose jobs have disentanglement metrics, its section and the
Locatello-style figures (metric against β per family over seeds; rank correlation between
metrics); UDR's columns beside them (or alone, for data without factors) on hand-made digits
sweeps of real checkpoints, and the one line for a sweep UDR cannot rank."""

from __future__ import annotations

import json
import re
import shutil
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from tests.conftest import FAST
from tests.disentanglement_sweep import BETAS, FAMILIES, SEEDS, sweep_metrics
from tests.sweep_job import sweep_job
from tests.udr_sweep import udr_job
from vaelab.errors import VaelabError
from vaelab.evaluation.conditional import DISENTANGLEMENT_SETTINGS_KEY
from vaelab.evaluation.disentanglement import METRIC_NAMES
from vaelab.evaluation.disentanglement.settings import DisentanglementSettings
from vaelab.evaluation.sweep import parse_override, read_sweep
from vaelab.report import (
    DISENTANGLEMENT_PNG,
    RANK_CORRELATION_PNG,
    UDR_JSON,
    compute_udr,
    render_markdown,
)
from vaelab.report import main as report_main
from vaelab.run_files import CONFIG_FILE


@pytest.fixture(scope="module")
def multirun_dir(mnist_data_dir, tmp_path_factory) -> Path:
    """``vaelab-train --multirun model.latent_dim=2,3,0``: the last job is a user error
    (latent_dim must be >= 1): it writes error.txt and the sweep exits with status 1."""
    from vaelab.train import main as train_main

    root = tmp_path_factory.mktemp("sweep")
    sweep_dir = root / "multirun"
    argv = [
        "vaelab-train",
        "--multirun",
        *FAST,
        f"paths.data_dir={mnist_data_dir}",
        f"paths.log_dir={root}",
        f"hydra.sweep.dir={sweep_dir}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=10",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "data.eval_batch_size=500",
        "callbacks.image_logger=null",
        "callbacks.encoding_snapshot.num_points=10",
        "model.latent_dim=2,3,0",
    ]
    saved_argv = sys.argv
    sys.argv = argv
    GlobalHydra.instance().clear()
    try:
        with pytest.raises(SystemExit) as stopped:
            train_main()
        assert stopped.value.code == 1
    finally:
        sys.argv = saved_argv
        GlobalHydra.instance().clear()
    return sweep_dir


def _table_rows(markdown: str, heading: str) -> list[list[str]]:
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[1:]]


def test_report_ranks_finished_jobs_and_names_the_failed_one(multirun_dir, capsys):
    report_main([str(multirun_dir)])
    assert f"Wrote {multirun_dir / 'report.md'}" in capsys.readouterr().out
    markdown = (multirun_dir / "report.md").read_text()
    val_elbo = {
        job: json.loads((multirun_dir / job / "metrics.json").read_text())["val/elbo"]
        for job in ("0", "1")
    }
    best, worst = sorted(val_elbo, key=val_elbo.get, reverse=True)
    rows = _table_rows(markdown, "## Finished jobs, best first")
    assert [row[0] for row in rows] == ["1", "2"]
    assert [re.search(r"\[(\d+)\]", row[1]).group(1) for row in rows] == [best, worst]
    assert rows[0][2] == {"0": "2", "1": "3"}[best]  # the swept model.latent_dim column
    assert float(rows[0][3]) == pytest.approx(val_elbo[best], abs=0.01)
    assert f"**Best: job {best}**" in markdown
    assert "Ranked by **val/elbo** (higher" in markdown
    assert "Reproduce it: `vaelab-train" in markdown
    failed = _table_rows(markdown, "## Failed jobs (1)")
    assert len(failed) == 1
    assert "[2]" in failed[0][0]
    assert failed[0][1] == "0"
    assert "latent_dim=0 must be" in failed[0][2]
    assert "Traceback" not in failed[0][2]
    assert "3 jobs: 2 finished, 1 failed" in markdown


def test_report_png_plots_the_metric_against_the_swept_parameter(multirun_dir):
    report_main([str(multirun_dir)])
    png = multirun_dir / "report.png"
    assert png.stat().st_size > 5000
    with Image.open(png) as image:
        # one panel of 8 × 4.5 inches at 160 dpi: a 16:9 slide
        assert image.format == "PNG"
        assert image.size == (1280, 720)


def _job(
    root: Path,
    name: str,
    overrides: list[str],
    metrics: dict | None = None,
    error: str | None = None,
    log: str | None = None,
    optimized: str | None = None,
) -> None:
    folder = root / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if optimized:
        (folder / "config.yaml").write_text(yaml.safe_dump({"optimized_metric": optimized}))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    if error is not None:
        (folder / "error.txt").write_text(error)
    if log is not None:
        (folder / "train.log").write_text(log)


def test_direction_crash_and_metric_choice_on_a_handmade_sweep(tmp_path):
    _job(
        tmp_path,
        "0",
        ["optimizer.lr=0.01", "seed=1"],
        {"val/elbo": -150.0, "val/kl": 3.0},
        optimized="val/elbo",
    )
    _job(
        tmp_path,
        "1",
        ["optimizer.lr=0.001", "seed=1"],
        {"val/elbo": -140.0, "val/kl": 9.0},
        optimized="val/elbo",
    )
    _job(
        tmp_path,
        "2",
        ["optimizer.lr=1.0", "seed=1"],
        log="[INFO] start\n[ERROR] RuntimeError: CUDA error: out of memory\n",
    )
    sweep = read_sweep(tmp_path)
    assert sweep.swept == ["optimizer.lr"]
    assert sweep.maximize
    assert [job.name for job in sweep.ranked()] == ["1", "0"]
    assert "out of memory" in sweep.failed[0].error
    by_kl = read_sweep(tmp_path, metric="val/kl")
    assert not by_kl.maximize
    assert [job.name for job in by_kl.ranked()] == ["0", "1"]
    (tmp_path / "multirun.yaml").write_text(
        yaml.safe_dump({"hydra": {"sweeper": {"direction": "maximize"}}})
    )
    assert read_sweep(tmp_path, metric="val/kl").maximize  # the sweeper's word wins
    report_main([str(tmp_path), "--metric", "val/kl", "--direction", "minimize"])
    markdown = (tmp_path / "report.md").read_text()
    assert "(lower is better)" in markdown
    assert "**Best: job 0**" in markdown
    assert "did not finish" not in markdown
    assert "out of memory" in markdown


def test_not_a_sweep_is_a_clear_error(tmp_path):
    with pytest.raises(VaelabError, match="no jobs in"):
        read_sweep(tmp_path)
    with pytest.raises(SystemExit):
        report_main([str(tmp_path / "missing")])


def test_override_parsing_keeps_types():
    assert parse_override("model.latent_dim=10") == ("model.latent_dim", 10)
    assert parse_override("optimizer.lr=1e-3") == ("optimizer.lr", 1e-3)
    assert parse_override("+trainer.deterministic=true") == ("trainer.deterministic", True)
    assert parse_override("likelihood=gaussian") == ("likelihood", "gaussian")
    assert parse_override("~callbacks.progress_bar") is None


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
        scores = {**sweep_metrics(beta, seed, family)}
        if settings is not None:
            scores[DISENTANGLEMENT_SETTINGS_KEY] = {**settings, "seed": seed}
        (folder / "eval" / "metrics.json").write_text(json.dumps(scores))
    return root


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


def test_report_ranks_the_readable_jobs_and_lists_the_unreadable_ones_with_why(tmp_path, capsys):
    sweep_job(tmp_path, "0", 0.01, json.dumps({"val/elbo": -150.0}))
    sweep_job(tmp_path, "1", 0.001, json.dumps({"val/elbo": -140.0}))
    sweep_job(tmp_path, "2", 0.1, '{"val/elbo": -1')  # cut short
    bad_config = sweep_job(tmp_path, "3", 0.2, json.dumps({"val/elbo": -130.0}))
    (bad_config / CONFIG_FILE).write_text("optimized_metric: [unclosed\n")
    bad_overrides = sweep_job(tmp_path, "4", 0.3, json.dumps({"val/elbo": -120.0}))
    (bad_overrides / ".hydra" / "overrides.yaml").write_text("- optimizer.lr=[0.3\n")
    report_main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "job 2 is unreadable: metrics.json:" in out
    markdown = (tmp_path / "report.md").read_text()
    assert "5 jobs: 2 finished, 0 failed, 3 unreadable" in markdown
    assert "**Best: job 1**" in markdown
    unreadable = markdown.split("## Unreadable jobs (3)", 1)[1]
    assert "[2](2/) | metrics.json: Expecting" in unreadable
    assert "[3](3/) | config.yaml:" in unreadable
    assert "[4](4/) | .hydra/overrides.yaml:" in unreadable


def test_report_into_an_unwritable_folder_is_one_line(tmp_path, capsys):
    sweep_job(tmp_path, "0", 0.01, json.dumps({"val/elbo": -150.0}))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    with pytest.raises(SystemExit):
        report_main([str(tmp_path), "--output-dir", str(blocker / f"out-{uuid.uuid4().hex}")])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("vaelab: error:")


# -- UDR (evaluation/sweep_udr.py) beside the supervised metrics -------------------------------
@pytest.fixture(scope="module")
def udr_digits_sweep(tmp_path_factory) -> Path:
    """Two seeds of one digits setting (z = 3, real checkpoints, no factors: no supervised
    disentanglement metrics)."""
    root = tmp_path_factory.mktemp("udr_digits_sweep")
    for seed in (0, 1):
        udr_job(root, str(seed), ["model.latent_dim=3"], seed)
    return root


def test_report_of_a_sweep_without_factors_shows_the_udr_columns(udr_digits_sweep):
    sweep = read_sweep(udr_digits_sweep)
    udr, note = compute_udr(sweep, "auto", num_points=100, progress="silent")
    assert note is None
    markdown = render_markdown(sweep, None, [], udr)
    section = markdown.split("## Disentanglement metrics", 1)[1]
    assert "2 jobs scored without ground-truth factors" in section
    assert "UDR_L and UDR_S (Duan et al. 2020" in section
    assert "on 100 shared test observations" in section
    rows = _table_rows(markdown, "## Disentanglement metrics")
    header = next(line for line in section.splitlines() if line.startswith("| job"))
    assert header == "| job | seed | udr_lasso | udr_spearman |"
    by_job = {row[0]: row for row in rows}
    assert set(by_job) == {"0", "1"}
    for job in ("0", "1"):
        assert float(by_job[job][2]) == pytest.approx(udr.scores[job]["udr_lasso"], abs=1e-3)
        assert 0.0 < float(by_job[job][3]) <= 1.0
    assert compute_udr(sweep, "off") == (None, None)


def test_a_sweep_udr_cannot_rank_gets_a_note_or_with_udr_on_an_error_and_a_grid_nothing(
    udr_digits_sweep, tmp_path
):
    for job in ("0", "1"):
        shutil.copytree(udr_digits_sweep / job, tmp_path / job)
    config = tmp_path / "1" / CONFIG_FILE
    changed = yaml.safe_load(config.read_text())
    changed["data"]["test_size"] = 0.5
    config.write_text(yaml.safe_dump(changed))
    sweep = read_sweep(tmp_path)
    udr, note = compute_udr(sweep, "auto", progress="silent")
    assert udr is None
    assert "one data set, but job 1 has data.test_size=0.5" in note
    section = render_markdown(sweep, None, [], udr, note).split("## Disentanglement metrics")[1]
    assert f"UDR (Duan et al. 2020) not computed: {note}." in section
    with pytest.raises(VaelabError, match="one data set"):
        compute_udr(sweep, "on", progress="silent")
    # a sweep with no setting trained from two seeds (a plain grid): auto says nothing
    overrides = tmp_path / "1" / ".hydra" / "overrides.yaml"
    overrides.write_text(yaml.safe_dump(["model.latent_dim=3", "beta.value=4.0", "seed=1"]))
    assert compute_udr(read_sweep(tmp_path), "auto") == (None, None)
    assert "Disentanglement" not in render_markdown(read_sweep(tmp_path), None)


@pytest.mark.slow
def test_report_draws_udr_beside_the_supervised_metrics(udr_digits_sweep, tmp_path, capsys):
    """vaelab-report end to end on jobs that also have (made-up) supervised scores: udr.json,
    one table and the figures with both."""
    for job in ("0", "1"):
        shutil.copytree(udr_digits_sweep / job, tmp_path / job)
        (tmp_path / job / "eval").mkdir()
        scores = sweep_metrics(1, int(job), "mlp")
        (tmp_path / job / "eval" / "metrics.json").write_text(json.dumps(scores))
    report_main([str(tmp_path), "--udr", "on", "--udr-points", "120"])
    assert "Wrote" in capsys.readouterr().out
    stored = json.loads((tmp_path / UDR_JSON).read_text())
    assert stored["num_points"] == 120
    assert sorted(stored["scores"]) == ["0", "1"]
    markdown = (tmp_path / "report.md").read_text()
    for name in (DISENTANGLEMENT_PNG, RANK_CORRELATION_PNG):
        assert f"]({name})" in markdown
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG"
    header = next(line for line in markdown.splitlines() if line.startswith("| job | seed"))
    assert header.endswith("| explicitness | udr_lasso | udr_spearman |")
    assert "2 jobs evaluated with vaelab-eval on ground-truth factors" in markdown


def test_report_tables_and_plots_each_job_by_sampler(tmp_path):
    """Models × samplers (issue 24): one row per job and sampler from eval/metrics.json's
    ``samplers``, and samplers.png; a job never evaluated with a sampler has no row."""
    from vaelab.report import SAMPLERS_PNG

    root = tmp_path / "sweep"
    scores = {
        "0": {"prior": {"fid": 98.6, "precision": 0.75, "recall": 0.67}, "gmm": {"fid": 30.3}},
        "1": {"prior": {"fid": 80.0, "precision": 0.8, "recall": 0.5}},
    }
    for index, name in enumerate(("0", "1", "2")):
        folder = sweep_job(
            root, name, 10.0 ** -(index + 2), json.dumps({"val/elbo": -90.0 - index})
        )
        (folder / "eval").mkdir()
        samplers = scores.get(name, {})
        (folder / "eval" / "metrics.json").write_text(json.dumps({"samplers": samplers}))
    report_main([str(root)])
    markdown = (root / "report.md").read_text()
    section = markdown.split("## Sample quality by sampler", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| optimizer.lr")]
    assert rows == [
        "| optimizer.lr=0.01 | prior | 98.60 | 0.75 | 0.67 |",
        "| optimizer.lr=0.01 | gmm | 30.30 |  |  |",
        "| optimizer.lr=0.001 | prior | 80 | 0.8 | 0.5 |",
    ]
    assert f"]({SAMPLERS_PNG})" in section
    with Image.open(root / SAMPLERS_PNG) as image:
        assert image.format == "PNG"
