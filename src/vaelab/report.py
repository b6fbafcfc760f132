"""``vaelab-report <multirun dir>``: one page per sweep — report.md and report.png.

report.md ranks the finished jobs (best first by the optimised metric), shows the swept
parameters and the metrics of each, lists the failed jobs with their error and gives the
command that reproduces the best job; report.png plots the optimised metric against each
swept parameter. Also ``python -m vaelab.report``.
"""

from __future__ import annotations

import argparse
import io
import math
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from vaelab.atomic_io import atomic_write_bytes, atomic_write_json, atomic_write_text
from vaelab.cli import run_reporting_errors
from vaelab.errors import VaelabError
from vaelab.evaluation.active_units import ACTIVITY_THRESHOLD
from vaelab.evaluation.disentanglement import METRIC_NAMES as DISENTANGLEMENT_METRICS
from vaelab.evaluation.disentanglement.settings import DisentanglementSettings
from vaelab.evaluation.sweep import Sweep, SweepJob, read_sweep
from vaelab.evaluation.sweep_udr import (
    DEFAULT_POINTS as UDR_DEFAULT_POINTS,
)
from vaelab.evaluation.sweep_udr import (
    UDR_NAMES,
    SweepUDR,
    jobs_with_checkpoints,
    seed_groups,
    sweep_udr,
)
from vaelab.interruption import enter_stage, reset_stage
from vaelab.plots.disentanglement import (
    MetricJob,
    metric_curves_figure,
    rank_correlation,
    rank_correlation_figure,
    regulariser_parameter,
)
from vaelab.plots.figures import sampler_quality_figure, save_figure, sweep_figure
from vaelab.run_files import ERROR_FILE, REPORT_MD, REPORT_PNG
from vaelab.stage_progress import Mode, stage

#: metric columns shown when a job has them: (key, header)
METRIC_COLUMNS = (
    ("val/elbo", "val ELBO"),
    ("test/elbo", "test ELBO"),
    ("test/recon", "test recon"),
    ("test/kl", "test KL"),
    ("eval/iw_nll", "IW-NLL"),
    ("eval/bits_per_dim", "bits/dim"),
    ("eval/active_units", "active units"),
    ("eval/exact_nll", "exact NLL"),
    ("eval/fid", "FID"),
)
#: the disentanglement figures' files, next to report.png
DISENTANGLEMENT_PNG = "disentanglement_metrics.png"
RANK_CORRELATION_PNG = "metric_rank_correlation.png"
DISENTANGLEMENT_FIGURES = (DISENTANGLEMENT_PNG, RANK_CORRELATION_PNG)
#: the UDR scores, groups and pairwise matrices, next to report.md
UDR_JSON = "udr.json"
#: --udr: auto (where the sweep has trained models to compare; a refusal is a note), on (a
#: refusal is an error), off
UDR_MODES = ("auto", "on", "off")
#: FID and precision/recall of each job × sampler, next to report.png
SAMPLERS_PNG = "samplers.png"
#: the disentanglement settings that change a score (not the encoder's batch or the seed)
SAMPLE_SIZES = (
    "num_train",
    "num_eval",
    "group_size",
    "num_variance_estimate",
    "num_bins",
    "active_std_threshold",
)
GLOSSARY = {
    "val/elbo": "ELBO on the validation split (nats per data point, a lower bound on log p(x); "
    "higher is better)",
    "test/elbo": "ELBO of the best checkpoint on the test split",
    "test/recon": "−E_q log p(x|z) on the test split (nats)",
    "test/kl": "KL(q(z|x) || p(z)) on the test split (nats)",
    "eval/iw_nll": "−log p(x) estimated with k importance samples by vaelab-eval (lower is better)",
    "eval/bits_per_dim": "IW-NLL / (D · ln 2)",
    "eval/active_units": "latent dimensions with Var_x(E_q[z_u|x]) > "
    f"{ACTIVITY_THRESHOLD:g} unless eval.active_unit_threshold says otherwise (Burda et al. 2015)",
    "eval/exact_nll": "exact −log p(x) where the model has one (PPCA)",
    "eval/fid": "Fréchet distance of model samples to the test split in vaelab-eval's feature "
    "space (lower is better)",
}


def _format(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5):
            return f"{value:.3g}"
        if value.is_integer():  # a count or a grid value: 16, not 16.00
            return str(int(value))
        return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4g}"
    return str(value)


def _cell(text: object) -> str:
    """Markdown table cell: one line, pipes escaped."""
    return " ".join(_format(text).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _link(sweep: Sweep, job: SweepJob) -> str:
    return f"[{job.name}]({job.path.relative_to(sweep.path).as_posix()}/)"


def _metric_columns(sweep: Sweep) -> list[tuple[str, str]]:
    present = {key for job in sweep.jobs for key in job.metrics}
    columns = [(k, h) for k, h in METRIC_COLUMNS if k in present and k != sweep.metric]
    return [(sweep.metric, f"**{sweep.metric}**"), *columns]


def finished_table(sweep: Sweep) -> list[dict[str, object]]:
    """The report's table of finished jobs, best first, as plain rows: ``rank``, ``job`` (its
    folder's name), each swept parameter, then the optimised metric and the other metric
    columns by their logged names (None where a job lacks one)."""
    columns = _metric_columns(sweep)
    return [
        {
            "rank": i + 1,
            "job": job.name,
            **{key: job.params.get(key) for key in sweep.swept},
            **{key: job.metrics.get(key) for key, _ in columns},
        }
        for i, job in enumerate(sweep.ranked())
    ]


def reproduce_command(job: SweepJob) -> str:
    return "vaelab-train " + " ".join(shlex.quote(o) for o in job.overrides)


def _disentanglement_jobs(
    sweep: Sweep, udr: SweepUDR | None = None
) -> tuple[list[MetricJob], list[str]]:
    """Finished jobs with every disentanglement metric that some job has (the supervised ones
    from vaelab-eval, UDR from ``udr``), and those metrics."""
    present = [
        m for m in DISENTANGLEMENT_METRICS if any(f"eval/{m}" in j.metrics for j in sweep.jobs)
    ]
    udr_scores = udr.scores if udr is not None else {}
    present_udr = [m for m in UDR_NAMES if any(m in s for s in udr_scores.values())]

    def metrics(job: SweepJob) -> dict[str, float] | None:
        if not all(f"eval/{m}" in job.metrics for m in present):
            return None
        if not all(m in udr_scores.get(job.name, {}) for m in present_udr):
            return None
        return {
            **{m: job.metrics[f"eval/{m}"] for m in present},
            **{m: udr_scores[job.name][m] for m in present_udr},
        }

    names = [*present, *present_udr]
    jobs = [
        MetricJob(job.params, scores, job.name)
        for job in sweep.ranked()
        if (scores := metrics(job)) is not None
    ]
    return (jobs, names) if names and jobs else ([], [])


def sample_sizes_note(settings: Sequence[dict | None]) -> str:
    """A sentence on how the jobs' disentanglement sample sizes compare with
    disentanglement_lib's: the same, all smaller alike (noisier scores), or differing."""
    literature = {k: getattr(DisentanglementSettings(), k) for k in SAMPLE_SIZES}
    known = [{k: s.get(k) for k in SAMPLE_SIZES} for s in settings if s]
    if not known:
        return "Scores use disentanglement_lib's definitions."
    if any(sizes != known[0] for sizes in known):
        return (
            "Scores use disentanglement_lib's definitions, but the jobs' sample sizes differ "
            "(eval/metrics.json: disentanglement_settings): compare them with care."
        )
    changed = {k: v for k, v in known[0].items() if v != literature[k]}
    if not changed:
        return "Scores use disentanglement_lib's definitions and sample sizes."
    sizes = ", ".join(f"{k}={_format(v)} ({_format(literature[k])})" for k, v in changed.items())
    return (
        "Scores use disentanglement_lib's definitions at other sample sizes than the "
        f"literature's (in brackets): {sizes}; smaller samples give noisier scores."
    )


def _udr_sentence(udr: SweepUDR | None, udr_note: str | None) -> str:
    """What report.md says of UDR: how it was computed, or why it was not."""
    if udr_note:
        return f"UDR (Duan et al. 2020) not computed: {udr_note}."
    if udr is None or not udr.scores:
        return ""
    groups = sum(len(group) > 1 for group in udr.groups)
    return (
        "udr_lasso and udr_spearman are UDR_L and UDR_S (Duan et al. 2020, unsupervised: no "
        "factors read): each job's median similarity to the jobs of its setting trained from "
        f"other seeds ({groups} setting(s) with several seeds), on {udr.num_points} shared "
        f"{udr.split} observations, over the latents whose mean KL exceeds "
        f"{_format(udr.kl_threshold)} nats (pairs and counts in {UDR_JSON})."
    )


def _disentanglement_section(
    sweep: Sweep,
    figures: Sequence[str],
    udr: SweepUDR | None = None,
    udr_note: str | None = None,
) -> list[str]:
    jobs, names = _disentanglement_jobs(sweep, udr)
    udr_text = _udr_sentence(udr, udr_note)
    if not jobs:
        return ["", "## Disentanglement metrics", "", udr_text] if udr_note else []
    x_param = regulariser_parameter(sweep.swept)
    evaluated = {job.name for job in jobs}
    supervised = [name for name in names if name not in UDR_NAMES]
    if supervised:
        sizes = sample_sizes_note(
            [job.disentanglement_settings for job in sweep.jobs if job.name in evaluated]
        )
        intro = (
            f"{len(jobs)} jobs evaluated with vaelab-eval on ground-truth factors (the "
            f"representation is the encoder mean). {sizes} "
        )
    else:
        intro = f"{len(jobs)} jobs scored without ground-truth factors. "
    lines = [
        "",
        "## Disentanglement metrics",
        "",
        f"{intro}"
        f"Against {x_param or 'the job'}, per model family, spread over seeds; then the "
        "rank correlation between the metrics (Locatello et al. 2019, Fig. 2–3).",
        *(["", udr_text] if udr_text else []),
        "",
        *(f"![{name}]({name})" for name in figures),
        "",
    ]
    lines += _table(
        ["job", *sweep.swept, *names],
        [
            [job.name, *(job.params.get(k) for k in sweep.swept), *(job.metrics[m] for m in names)]
            for job in jobs
        ],
    )
    return lines


def _job_label(sweep: Sweep, job: SweepJob) -> str:
    """A job as the sampler table names it: its swept parameters, else its folder."""
    swept = [f"{key}={_format(job.params.get(key))}" for key in sweep.swept if key in job.params]
    return ", ".join(swept) or job.name


def sampler_scores(sweep: Sweep) -> dict[str, dict[str, dict[str, float]]]:
    """``{job label: {sampler: {fid, precision, recall}}}`` of the finished jobs that
    vaelab-eval evaluated with one sampler or more."""
    return {_job_label(sweep, job): job.samplers for job in sweep.ranked() if job.samplers}


def _sampler_section(sweep: Sweep, figure_name: str | None) -> list[str]:
    """Models × samplers: one row per job and sampler (issue 24)."""
    scores = sampler_scores(sweep)
    if not scores:
        return []
    rows = [
        [model, sampler, values.get("fid"), values.get("precision"), values.get("recall")]
        for model, by_sampler in scores.items()
        for sampler, values in sorted(by_sampler.items(), key=lambda item: item[0] != "prior")
    ]
    lines = [
        "",
        "## Sample quality by sampler",
        "",
        "FID (lower is better) and precision/recall (Kynkäänniemi et al. 2019) of samples whose "
        "codes come from each sampler: `prior` is the model's p(z), the others a density "
        "fitted to the training codes after training (`vaelab-eval ckpt_path=<job> "
        "sampler=gmm`; each evaluation adds its sampler's row).",
        "",
        *_table(["job", "sampler", "FID", "precision", "recall"], rows),
    ]
    if figure_name:
        lines += ["", f"![FID and precision/recall by sampler]({figure_name})"]
    return lines


def render_markdown(
    sweep: Sweep,
    figure_name: str | None,
    disentanglement_figures: Sequence[str] = (),
    udr: SweepUDR | None = None,
    udr_note: str | None = None,
    sampler_figure: str | None = None,
) -> str:
    """The report's Markdown text; ``udr``: the sweep's UDR scores, ``udr_note``: why they
    were not computed."""
    ranked, failed, unreadable = sweep.ranked(), sweep.failed, sweep.unreadable
    direction = "higher is better" if sweep.maximize else "lower is better"
    not_read = f", {len(unreadable)} unreadable" if unreadable else ""
    lines = [
        f"# Sweep report: `{sweep.path.name}`",
        "",
        f"`{sweep.path}` — {len(sweep.jobs)} jobs: {len(ranked)} finished, "
        f"{len(failed)} failed{not_read}. Ranked by **{sweep.metric}** ({direction}).",
        "",
    ]
    scored = [job for job in ranked if math.isfinite(sweep.score(job))]
    if scored:
        best = scored[0]
        settings = ", ".join(f"`{k}={_format(best.params.get(k))}`" for k in sweep.swept)
        lines += [
            f"**Best: job {best.name}** — {settings or 'no swept parameters'} → "
            f"{sweep.metric} = **{_format(sweep.score(best))}**",
            "",
            f"Reproduce it: `{reproduce_command(best)}`",
            "",
        ]
        if len(scored) > 1:
            spread = abs(sweep.score(scored[0]) - sweep.score(scored[-1]))
            lines += [f"Spread between best and worst finished job: {_format(spread)}.", ""]
    else:
        lines += ["**No job finished with a value of the optimised metric.**", ""]
    if figure_name:
        lines += [f"![{sweep.metric} against each swept parameter]({figure_name})", ""]
    columns = _metric_columns(sweep)
    lines += ["## Finished jobs, best first", ""]
    if ranked:
        header = ["rank", "job", *sweep.swept, *(h for _, h in columns)]
        rows = [
            [row["rank"], _link(sweep, job), *list(row.values())[2:]]
            for row, job in zip(finished_table(sweep), ranked, strict=True)
        ]
        lines += _table(header, rows)
    else:
        lines += ["None."]
    lines += ["", f"## Failed jobs ({len(failed)})", ""]
    if failed:
        lines += _table(
            ["job", *sweep.swept, "error"],
            [
                [_link(sweep, job), *(job.params.get(k) for k in sweep.swept), job.error]
                for job in failed
            ],
        )
        lines += [
            "",
            f"A failed job's directory holds `{ERROR_FILE}` (the message, then the "
            "traceback) or, if the process died, its Hydra log.",
        ]
    else:
        lines += ["None."]
    if unreadable:
        lines += ["", f"## Unreadable jobs ({len(unreadable)})", ""]
        lines += _table(
            ["job", "why"], [[_link(sweep, job), "; ".join(job.unreadable)] for job in unreadable]
        )
        lines += [
            "",
            "These jobs are left out of the ranking: restore or delete the named files (a "
            "job rerun by relaunching the sweep writes them again).",
        ]
    lines += _disentanglement_section(sweep, disentanglement_figures, udr, udr_note)
    lines += _sampler_section(sweep, sampler_figure)
    glossary = [
        f"- **{key}**: {text}" for key, text in GLOSSARY.items() if key in {k for k, _ in columns}
    ]
    if glossary:
        lines += [
            "",
            "## Columns",
            "",
            *glossary,
            "- Evaluate a job with `vaelab-eval ckpt_path=<job dir>` to fill the IW-NLL, "
            "bits/dim and active-unit columns.",
        ]
    return "\n".join(lines) + "\n"


def compute_udr(
    sweep: Sweep, mode: str = "auto", num_points: int = UDR_DEFAULT_POINTS, progress=None
) -> tuple[SweepUDR | None, str | None]:
    """The sweep's UDR and, where it was not computed, why (one line). ``mode``: ``auto``
    scores sweeps where two trained jobs share a setting but the seed and turns a refusal
    into the note (other sweeps: nothing said); ``on`` lets the refusal stop the report;
    ``off`` skips UDR."""
    if mode not in UDR_MODES:
        raise VaelabError(f"--udr must be one of {', '.join(UDR_MODES)}, got {mode!r}")
    if mode == "off":
        return None, None
    if mode == "auto":
        trained = [job for job, _ in jobs_with_checkpoints(sweep)]
        if not any(len(group) > 1 for group in seed_groups(trained, sweep.swept)):
            return None, None
    try:
        return sweep_udr(sweep, num_points, progress=progress), None
    except VaelabError as err:
        if mode == "on":
            raise
        return None, str(err)


def write_report(
    path: str | Path,
    metric: str | None = None,
    maximize: bool | None = None,
    output_dir: str | Path | None = None,
    progress: Mode | None = None,
    udr: str = "auto",
    udr_points: int = UDR_DEFAULT_POINTS,
) -> tuple[Path, Path]:
    """Read the multirun at ``path``; write report.md and report.png (into ``output_dir``,
    default the multirun dir); return their paths. ``progress``: the
    :mod:`vaelab.stage_progress` mode of the read and the figures (None: by the terminal).
    ``udr``, ``udr_points``: :func:`compute_udr`'s mode and shared sample size; the scores
    also go to udr.json."""
    sweep = read_sweep(path, metric, maximize, progress)
    folder = Path(output_dir) if output_dir else sweep.path
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise VaelabError(
            f"cannot write the report into {folder} ({err.strerror}); pass --output-dir a "
            "writable folder"
        ) from err
    udr_result, udr_note = compute_udr(sweep, udr, udr_points, progress)
    if udr_note:
        print(f"vaelab: warning: {udr_note}")
    if udr_result is not None:
        atomic_write_json(folder / UDR_JSON, udr_result.as_json())
    ranked = [job for job in sweep.ranked() if math.isfinite(sweep.score(job))]
    rows = [{"job": job.name, "params": job.params, "score": sweep.score(job)} for job in ranked]
    failed = [{"job": job.name, "params": job.params} for job in sweep.failed]
    has_metrics = bool(_disentanglement_jobs(sweep, udr_result)[0])
    extra_figures = len(DISENTANGLEMENT_FIGURES) if has_metrics else 0
    scores = sampler_scores(sweep)
    extra_figures += 1 if scores else 0
    with stage("report figures", 1 + extra_figures, "figures", mode=progress) as bar:
        figure = sweep_figure(sweep.metric, sweep.maximize, sweep.swept, rows, failed)
        image = io.BytesIO()
        figure.savefig(image, dpi=figure.dpi, format="png")
        png = atomic_write_bytes(folder / REPORT_PNG, image.getbuffer())
        bar.advance()
        extra = write_disentanglement_figures(sweep, folder, udr_result)
        samplers_png = (
            save_figure(sampler_quality_figure(scores), folder / SAMPLERS_PNG) if scores else None
        )
        bar.advance(extra_figures)
    markdown = folder / REPORT_MD

    def shown(path: Path) -> str:
        return path.name if folder == sweep.path else str(path)

    atomic_write_text(
        markdown,
        render_markdown(
            sweep,
            shown(png),
            [shown(path) for path in extra],
            udr_result,
            udr_note,
            sampler_figure=shown(samplers_png) if samplers_png else None,
        ),
    )
    return markdown, png


def write_disentanglement_figures(
    sweep: Sweep, folder: Path, udr: SweepUDR | None = None
) -> list[Path]:
    """The metric curves and the rank-correlation matrix, when jobs have disentanglement
    metrics or UDR scores (none otherwise)."""
    jobs, names = _disentanglement_jobs(sweep, udr)
    if not jobs:
        return []
    curves = save_figure(
        metric_curves_figure(jobs, names, sweep.swept), folder / DISENTANGLEMENT_PNG
    )
    matrix = rank_correlation_figure(rank_correlation(jobs, names), names)
    return [curves, save_figure(matrix, folder / RANK_CORRELATION_PNG)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaelab-report",
        description="Summarise a Hydra multirun: report.md (jobs ranked by the optimised metric, "
        "failed jobs with their error) and report.png (metric vs each swept param).",
    )
    parser.add_argument("multirun_dir", help="e.g. logs/train/multiruns/2025-01-01_12-00-00")
    parser.add_argument(
        "--metric", default=None, help="metric to rank by (default: the jobs' optimized_metric)"
    )
    parser.add_argument(
        "--direction",
        choices=("maximize", "minimize"),
        default=None,
        help="default: the sweeper's, else maximize for ELBO-like names",
    )
    parser.add_argument("--output-dir", default=None, help="default: the multirun dir")
    parser.add_argument(
        "--udr",
        choices=UDR_MODES,
        default="auto",
        help="UDR (Duan et al. 2020) of the trained jobs, among each setting's seeds: auto "
        "(where a setting has two trained seeds; a sweep it cannot rank gets a note), on (that "
        "is an error), off",
    )
    parser.add_argument(
        "--udr-points",
        type=int,
        default=UDR_DEFAULT_POINTS,
        help=f"test observations every model encodes for UDR (default {UDR_DEFAULT_POINTS})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    maximize = None if args.direction is None else args.direction == "maximize"

    def task() -> None:
        enter_stage(
            "reading the sweep and writing the report",
            kept=lambda: (
                "the sweep's files, unchanged (report.md and report.png are written "
                "whole or not at all)"
            ),
            resume=shlex.join(["vaelab-report", *(sys.argv[1:] if argv is None else argv)]),
        )
        markdown, png = write_report(
            args.multirun_dir,
            args.metric,
            maximize,
            args.output_dir,
            udr=args.udr,
            udr_points=args.udr_points,
        )
        print(f"Wrote {markdown}\nWrote {png}")
        for job in read_sweep(args.multirun_dir, args.metric, maximize).unreadable:
            print(f"vaelab: warning: job {job.name} is unreadable: {'; '.join(job.unreadable)}")

    reset_stage()
    run_reporting_errors(task)


if __name__ == "__main__":
    main()
