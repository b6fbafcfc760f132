"""Locatello et al. (2019)-style figures of a sweep with disentanglement metrics: each metric
against the regularisation strength (β or γ) per model family, with the spread over seeds;
and the rank (Spearman) correlation between the metrics over all jobs (their Fig. 2 and 3)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from vaelab.plots.figures import SEED_PARAMETER, new_figure

#: a swept parameter that sets the regularisation strength (β of β-VAE, γ of FactorVAE, …)
REGULARISER = re.compile(r"(^|[._])(beta|gamma)([._]|$)", re.IGNORECASE)
PANEL = (4.0, 3.2)
DPI = 100


@dataclass
class MetricJob:
    """One finished job: its swept parameters and its disentanglement metrics."""

    params: Mapping[str, object]
    metrics: Mapping[str, float]
    name: str = ""


def regulariser_parameter(params: Sequence[str]) -> str | None:
    """The swept parameter that is β or γ (``beta.value``, ``objective.gamma``), if any."""
    return next((p for p in params if REGULARISER.search(p)), None)


def _family(job: MetricJob, family_params: Sequence[str]) -> str:
    if not family_params:
        return "all jobs"
    return ", ".join(f"{p}={job.params.get(p)}" for p in family_params)


def metric_curves_figure(
    jobs: Sequence[MetricJob], metric_names: Sequence[str], swept: Sequence[str]
) -> Figure:
    """One panel per metric: the metric against β/γ (log axis when positive), one line per
    model family (the other swept parameters but the seed) through the median over seeds,
    each seed a faint point, the band from the lowest to the highest seed."""
    x_param = regulariser_parameter(swept)
    family_params = [p for p in swept if p not in (x_param, SEED_PARAMETER)]
    columns = min(len(metric_names), 3)
    rows = math.ceil(len(metric_names) / columns)
    figure = new_figure(PANEL[0] * columns, PANEL[1] * rows + 0.6, dpi=DPI)
    axes_list = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    families = sorted({_family(job, family_params) for job in jobs})
    colours = [f"C{i % 10}" for i in range(len(families))]
    for axes, metric in zip(axes_list, metric_names, strict=False):
        for family, colour in zip(families, colours, strict=True):
            points: dict[float, list[float]] = {}
            for job in jobs:
                value = job.metrics.get(metric)
                if _family(job, family_params) != family or value is None:
                    continue
                x = float(job.params.get(x_param, 0.0)) if x_param else 0.0
                points.setdefault(x, []).append(float(value))
            if not points:
                continue
            xs = sorted(points)
            seeds_x = [x for x in xs for _ in points[x]]
            seeds_y = [value for x in xs for value in points[x]]
            axes.scatter(seeds_x, seeds_y, s=12, color=colour, alpha=0.4)
            lowest = [min(points[x]) for x in xs]
            highest = [max(points[x]) for x in xs]
            axes.fill_between(xs, lowest, highest, color=colour, alpha=0.15)
            medians = [float(np.median(points[x])) for x in xs]
            axes.plot(xs, medians, "o-", color=colour, label=family, markersize=4)
        if x_param and all(float(j.params.get(x_param, 0)) > 0 for j in jobs):
            axes.set_xscale("log")
        axes.set_title(metric, fontsize=10)
        axes.set_xlabel(x_param or "", fontsize=9)
        axes.grid(alpha=0.3)
        axes.tick_params(labelsize=8)
    for axes in axes_list[len(metric_names) :]:
        axes.set_visible(False)
    if len(families) > 1 or family_params:
        handles, labels = axes_list[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="lower center", ncol=min(len(families), 4), fontsize=8)
    figure.suptitle(
        f"Disentanglement metrics of {len(jobs)} jobs: median over seeds, band min–max",
        fontsize=11,
    )
    figure.tight_layout(rect=(0, 0.06 if len(families) > 1 or family_params else 0, 1, 0.97))
    return figure


def rank_correlation(jobs: Sequence[MetricJob], metric_names: Sequence[str]) -> np.ndarray:
    """Spearman rank correlation [M, M] between the metrics over the jobs that have them all
    (NaN where a metric is constant)."""
    table = np.array([[job.metrics[m] for m in metric_names] for job in jobs], dtype=float)
    if len(table) < 3:
        return np.full((len(metric_names), len(metric_names)), np.nan)
    correlation = spearmanr(table).statistic
    return np.atleast_2d(correlation) if len(metric_names) > 1 else np.ones((1, 1))


def rank_correlation_figure(correlation: np.ndarray, metric_names: Sequence[str]) -> Figure:
    """The rank-correlation matrix as an annotated heat map (−1 blue … +1 red)."""
    size = 1.0 + 0.6 * len(metric_names)
    figure = new_figure(size + 1.2, size, dpi=DPI)
    axes = figure.subplots()
    image = axes.imshow(correlation, cmap="RdBu_r", vmin=-1, vmax=1)
    axes.set_xticks(range(len(metric_names)))
    axes.set_xticklabels(metric_names, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(len(metric_names)))
    axes.set_yticklabels(metric_names, fontsize=8)
    for i in range(len(metric_names)):
        for j in range(len(metric_names)):
            value = correlation[i, j]
            text = "—" if not math.isfinite(value) else f"{value:.2f}"
            colour = "white" if math.isfinite(value) and abs(value) > 0.6 else "black"
            axes.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
    figure.colorbar(image, ax=axes, fraction=0.046)
    axes.set_title("Spearman rank correlation between metrics", fontsize=10)
    figure.tight_layout()
    return figure
