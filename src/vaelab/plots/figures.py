"""Matplotlib figures of a trained VAE (seeds 000, 003, 004) and of a sweep.

Every function returns a :class:`matplotlib.figure.Figure` drawn with the Agg canvas (no
pyplot, no global state); :func:`save_figure` writes it as a PNG of exactly
``figsize × dpi`` pixels and :func:`figure_to_array` renders it for TensorBoard.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.ndimage import gaussian_filter
from torch import Tensor

from vaelab.evaluation.encodings import Encodings
from vaelab.evaluation.learning_curves import QUANTITIES, LearningCurves

DPI = 100
CLASS_COLOURS = "tab10"
#: probability mass enclosed by the white posterior-density contours of the manifold plot
CONTOUR_MASSES = (0.5, 0.9)
SPLIT_STYLES = {"train": {"color": "tab:blue"}, "val": {"color": "tab:orange"}}
QUANTITY_TITLES = {
    "loss": "Loss (−ELBO, β-weighted)",
    "kl": "KL(q(z|x) || p(z))",
    "recon": "Reconstruction −E_q log p(x|z)",
}


def new_figure(width: float, height: float, dpi: int = DPI) -> Figure:
    """A figure of ``width × height`` inches (× ``dpi`` pixels) on an Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG (size = figsize × the figure's dpi)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=figure.dpi, format="png")
    return path


def figure_to_array(figure: Figure) -> np.ndarray:
    """The rendered figure as uint8 [H, W, 3] (for ``SummaryWriter.add_image``)."""
    canvas = figure.canvas
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _grid_to_numpy(grid: Tensor) -> np.ndarray:
    """A [3, H, W] make_grid image in [0, 1] → [H, W, 3] for imshow."""
    return grid.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


# -- the latent space ---------------------------------------------------------------------
def pca_basis(points: Tensor, components: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """Centre and top principal directions of ``points`` [N, D]: (mean [D], W [D, k],
    explained variance ratio [k])."""
    data = points.double()
    centre = data.mean(0)
    _, singular, vh = torch.linalg.svd(data - centre, full_matrices=False)
    variance = singular**2
    ratio = variance[:components] / variance.sum().clamp_min(1e-300)
    return centre, vh[:components].T, ratio


def colour_labels(labels: Tensor) -> Tensor:
    """The class label [N] of each point; a factor data set's labels are its factors [N, F]
    (dSprites, an npz with factors), and the first factor (dSprites: shape) colours them."""
    return labels if labels.ndim == 1 else labels[:, 0]


def project_encodings(encodings: Encodings) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """2-D coordinates, ±σ along each axis, axis labels and a title note.

    latent_dim = 2 is shown as is; D > 2 is projected on the first two principal components
    of the posterior means (σ along a direction w: sqrt(Σ_j w_j² σ_j²), exact for a diagonal
    q); D = 1 is shown against the class label.
    """
    mean, stddev = encodings.mean.double(), encodings.stddev.double()
    dim = mean.shape[1]
    if dim == 2:
        return mean.numpy(), stddev.numpy(), ["$z_1$", "$z_2$"], ""
    if dim == 1:
        y = colour_labels(encodings.labels).double().unsqueeze(1)
        return (
            torch.cat([mean, y], 1).numpy(),
            torch.cat([stddev, 0 * y], 1).numpy(),
            ["$z_1$", "class"],
            "",
        )
    centre, basis, ratio = pca_basis(mean)
    projected = (mean - centre) @ basis
    projected_std = ((stddev**2) @ (basis**2)).sqrt()
    labels = [f"PC {i + 1} ({100 * float(r):.0f}% var.)" for i, r in enumerate(ratio)]
    return projected.numpy(), projected_std.numpy(), labels, f"PCA of the {dim}-D posterior means"


def _class_names(labels: np.ndarray, names: Sequence[str] | None) -> dict[int, str]:
    found = sorted(int(v) for v in np.unique(labels))
    return {
        v: (
            names[v]
            if names is not None and 0 <= v < len(names)
            else ("unlabelled" if v < 0 else str(v))
        )
        for v in found
    }


def _draw_encodings(
    axes,
    encodings: Encodings,
    class_names: Sequence[str] | None,
    error_bars: bool,
    title: str,
    legend: bool = True,
) -> None:
    points, spread, axis_labels, note = project_encodings(encodings)
    labels = colour_labels(encodings.labels).cpu().numpy()
    cmap = colormaps[CLASS_COLOURS]
    for value, name in _class_names(labels, class_names).items():
        mask = labels == value
        colour = "0.5" if value < 0 else cmap(value % cmap.N)
        if error_bars:
            axes.errorbar(
                points[mask, 0],
                points[mask, 1],
                xerr=spread[mask, 0],
                yerr=spread[mask, 1],
                fmt="o",
                markersize=2,
                elinewidth=0.6,
                alpha=0.45,
                color=colour,
                label=name,
            )
        else:
            axes.scatter(points[mask, 0], points[mask, 1], s=6, alpha=0.7, color=colour, label=name)
    axes.set_xlabel(axis_labels[0])
    axes.set_ylabel(axis_labels[1])
    axes.set_title(f"{title}\n({note})" if note else title, fontsize=10)
    if not legend:
        return
    box = axes.legend(
        fontsize=10, markerscale=3, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False
    )
    for handle in box.legend_handles:
        handle.set_alpha(1.0)


def latent_scatter_figure(encodings: Encodings, class_names: Sequence[str] | None = None) -> Figure:
    """Test encodings E_q[z|x] coloured by class with ±σ error bars (seed 004); the class
    names in a legend beside the plot."""
    figure = new_figure(9, 6)
    axes = figure.add_subplot()
    _draw_encodings(
        axes,
        encodings,
        class_names,
        error_bars=True,
        title=f"Posterior means ± σ of {len(encodings)} test images",
    )
    figure.tight_layout()
    return figure


def before_after_figure(
    before: Encodings, after: Encodings, class_names: Sequence[str] | None = None
) -> Figure:
    """Encodings of the same images before training (epoch 0) and after (seed 003)."""
    figure = new_figure(15, 6)
    left, right = figure.subplots(1, 2)
    _draw_encodings(
        left,
        before,
        class_names,
        error_bars=False,
        title=f"Encodings of {len(before)} {before.split} images before training",
        legend=False,
    )
    _draw_encodings(
        right,
        after,
        class_names,
        error_bars=False,
        title=f"The same images after training (step {after.global_step})",
    )
    figure.tight_layout()
    return figure


def _mass_levels(density: np.ndarray, masses: Sequence[float], total: float) -> dict[float, float]:
    """Density level → mass: the super-level set of each level holds that fraction of
    ``total`` (highest-density regions); ascending levels."""
    values = np.sort(density.ravel())[::-1]
    cumulative = np.cumsum(values)
    levels: dict[float, float] = {}
    for mass in sorted(masses, reverse=True):
        index = int(np.searchsorted(cumulative, mass * total))
        if index < len(values) and values[index] > 0:
            levels.setdefault(float(values[index]), mass)
    return dict(sorted(levels.items()))


def latent_manifold_figure(
    manifold: Tensor, span: float, points_per_axis: int, posterior_means: Tensor
) -> Figure:
    """Decoder means over a grid of z ∈ [−span, span]² (seed 000's plot_latent_space) with
    white contours of the encoded test points' density (seed 004): a 2-D histogram smoothed
    with a Gaussian kernel (Scott's rule), at the levels enclosing :data:`CONTOUR_MASSES` of
    the points."""
    step = 2 * span / max(points_per_axis - 1, 1)
    edge = span + step / 2
    figure = new_figure(8, 8)
    axes = figure.add_subplot()
    axes.imshow(
        _grid_to_numpy(manifold),
        extent=(-edge, edge, -edge, edge),
        origin="upper",
        interpolation="nearest",
    )
    means = posterior_means.double().cpu().numpy()
    bins = 3 * points_per_axis
    counts, x_edges, y_edges = np.histogram2d(
        means[:, 0], means[:, 1], bins=bins, range=[[-edge, edge], [-edge, edge]]
    )
    # Gaussian smoothing with Scott's bandwidth σ̂ · n^(−1/6) for 2-D data
    bandwidth = float(means.std(axis=0).mean()) * max(len(means), 2) ** (-1 / 6)
    density = gaussian_filter(counts, sigma=max(bandwidth / (x_edges[1] - x_edges[0]), 0.5))
    levels = _mass_levels(density, CONTOUR_MASSES, total=float(len(means)))
    centres_x = (x_edges[:-1] + x_edges[1:]) / 2
    centres_y = (y_edges[:-1] + y_edges[1:]) / 2
    inside = 100 * counts.sum() / max(len(means), 1)
    if levels:
        contour = axes.contour(
            centres_x, centres_y, density.T, levels=list(levels), colors="white", linewidths=2
        )
        axes.clabel(
            contour, fmt={level: f"{100 * m:.0f}%" for level, m in levels.items()}, fontsize=9
        )
    axes.set_xlim(-edge, edge)
    axes.set_ylim(-edge, edge)
    axes.set_xlabel("$z_1$")
    axes.set_ylabel("$z_2$")
    axes.set_title(
        "Latent manifold: E[x|z] over a grid of z\n"
        f"white: density of {len(means)} encoded test images "
        f"({'/'.join(f'{int(100 * m)}%' for m in CONTOUR_MASSES)} contours; "
        f"{inside:.0f}% inside the plot)",
        fontsize=10,
    )
    figure.tight_layout()
    return figure


def latent_traversal_figure(
    grid: Tensor,
    dims: Sequence[int],
    values: Sequence[float],
    activity: Sequence[float] | None,
    latent_dim: int,
    activity_threshold: float,
) -> Figure:
    """Rows: one latent dimension each, swept over ``values`` around a test code, all other
    dimensions fixed; ``grid`` is the make_grid image with one row per dimension; each row is
    labelled with its ``activity`` Var_x E_q[z_j], active above ``activity_threshold``."""
    image = _grid_to_numpy(grid)
    rows, cols = len(dims), len(values)
    width = 1.6 + 0.45 * cols
    figure = new_figure(width, 1.0 + 0.45 * rows)
    axes = figure.add_subplot()
    axes.imshow(image, interpolation="nearest")
    height, breadth = image.shape[:2]
    axes.set_yticks([(i + 0.5) * height / rows for i in range(rows)])
    axes.set_yticklabels(
        [f"$z_{{{d + 1}}}$" + (f" ({activity[d]:.2g})" if activity else "") for d in dims],
        fontsize=9,
    )
    axes.set_xticks([(j + 0.5) * breadth / cols for j in range(cols)])
    axes.set_xticklabels([f"{round(v, 6) + 0.0:+.1f}" for v in values], fontsize=7)
    shown = "all" if rows == latent_dim else f"the {rows} most active of"
    axes.set_title(
        f"Latent traversals around the first test image's code: {shown} "
        f"{latent_dim} dims swept, the others fixed"
        + (
            f"\n(in brackets: Var_x E_q[z_j], active if > {activity_threshold:g})"
            if activity
            else ""
        ),
        fontsize=9,
    )
    figure.tight_layout()
    return figure


def discrete_traversal_figure(grid: Tensor, categories: Sequence[int]) -> Figure:
    """Rows: one categorical variable each, set to each of its ``categories[row]`` categories
    (columns) around the first test image's code; ``grid`` is the make_grid image."""
    image = _grid_to_numpy(grid)
    rows, cols = len(categories), max(categories)
    figure = new_figure(1.6 + 0.45 * cols, 1.0 + 0.45 * rows)
    axes = figure.add_subplot()
    axes.imshow(image, interpolation="nearest")
    height, breadth = image.shape[:2]
    axes.set_yticks([(i + 0.5) * height / rows for i in range(rows)])
    axes.set_yticklabels([f"$c_{{{n + 1}}}$" for n in range(rows)], fontsize=9)
    axes.set_xticks([(j + 0.5) * breadth / cols for j in range(cols)])
    axes.set_xticklabels([str(k + 1) for k in range(cols)], fontsize=7)
    axes.set_title(
        "Discrete traversals around the first test image's code:\neach categorical variable "
        "(row) set to each category,\nthe others at their most probable one",
        fontsize=8,
    )
    figure.tight_layout()
    return figure


def _epoch_axis(axes, epoch_ends: Sequence[int]) -> None:
    """Dotted lines at epoch ends and a top axis numbering the epochs."""
    if not epoch_ends:
        return
    every = max(1, math.ceil(len(epoch_ends) / 12))
    for step in epoch_ends:
        axes.axvline(step, color="0.8", linestyle=":", linewidth=0.8, zorder=0)
    top = axes.secondary_xaxis("top")
    shown = list(range(every - 1, len(epoch_ends), every))
    top.set_xticks([epoch_ends[i] for i in shown])
    top.set_xticklabels([str(i + 1) for i in shown], fontsize=7)
    top.set_xlabel("epoch", fontsize=8)


def learning_curves_figure(curves: LearningCurves) -> Figure:
    """Loss, KL and reconstruction of train and val against the step, epochs on top
    (seed 003's learning curves)."""
    figure = new_figure(15, 4.5)
    panels = figure.subplots(1, len(QUANTITIES))
    for axes, quantity in zip(panels, QUANTITIES, strict=True):
        for split, curve in curves.curves.get(quantity, {}).items():
            stepwise = curve.label != split
            axes.plot(
                curve.steps,
                curve.values,
                marker="" if stepwise else "o",
                markersize=4,
                linewidth=1.0 if stepwise else 1.8,
                alpha=0.6 if stepwise else 1.0,
                label=curve.label,
                **SPLIT_STYLES.get(split, {}),
            )
        _epoch_axis(axes, curves.epoch_ends)
        axes.set_xlabel("optimizer step")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel("nats per data point")
        axes.set_title(QUANTITY_TITLES[quantity], fontsize=10)
        if axes.lines:
            axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


# -- a sweep ---------------------------------------------------------------------------------
def _numeric(values: Sequence[object]) -> bool:
    try:
        [float(v) for v in values]
    except (TypeError, ValueError):
        return False
    return True


#: swept parameters that act as a scale (a factor, a rate, a width): drawn on a log axis
SCALE_PARAMETER = re.compile(
    r"(^|[._])(beta|lr|learning_rate|weight_decay|scale|sigma|std|gamma|capacity|num_samples)"
    r"([._]|$)",
    re.IGNORECASE,
)
#: a swept parameter whose jobs repeat one setting: shown as spread, not as a panel
SEED_PARAMETER = "seed"
#: report figures fill a 16:9 slide: one panel is SLIDE_PANEL inches at SLIDE_DPI
SLIDE_PANEL = (8.0, 4.5)
SLIDE_DPI = 160


def _log_axis(param: str, values: Sequence[float]) -> bool:
    """A log axis for positive values of a scale parameter, or any spanning > 1 decade."""
    if len(set(values)) < 2 or min(values) <= 0:
        return False
    return bool(SCALE_PARAMETER.search(param)) or max(values) / min(values) > 10


def _spread(x: Sequence[float], scores: Sequence[float]) -> tuple[list, list, list, int]:
    """Per distinct x: the mean score, the standard deviation over its jobs (seeds) and the
    largest number of jobs sharing one x."""
    groups: dict[float, list[float]] = {}
    for value, score in zip(x, scores, strict=True):
        groups.setdefault(value, []).append(score)
    xs = sorted(groups)
    means = [float(np.mean(groups[v])) for v in xs]
    stds = [float(np.std(groups[v], ddof=1)) if len(groups[v]) > 1 else 0.0 for v in xs]
    return xs, means, stds, max(len(g) for g in groups.values())


def sweep_figure(
    metric: str,
    maximize: bool,
    params: Sequence[str],
    rows: Sequence[dict[str, object]],
    failed: Sequence[dict[str, object]],
) -> Figure:
    """The optimised metric against each swept parameter, sized for a slide: one panel per
    parameter, scale parameters (β, lr, …) and values spanning > 1 decade on a log axis,
    others as categories; jobs that share a value (other seeds) as faint points around their
    mean ± standard deviation; the best job starred, failed jobs marked ✗ on the lower edge."""
    panel_params = [p for p in params if p != SEED_PARAMETER] or list(params)
    panels = max(len(panel_params), 1)
    columns = min(panels, 2)
    grid_rows = math.ceil(panels / columns)
    figure = new_figure(SLIDE_PANEL[0] * columns, SLIDE_PANEL[1] * grid_rows, dpi=SLIDE_DPI)
    axes_list = np.atleast_1d(figure.subplots(grid_rows, columns)).ravel()
    scores = [float(r["score"]) for r in rows]
    best = (max if maximize else min)(range(len(rows)), key=lambda i: scores[i]) if rows else None
    for axes, param in zip(axes_list, panel_params or ["job"], strict=False):
        values = [r["params"].get(param, r.get("job")) for r in rows]
        failed_values = [f["params"].get(param, f.get("job")) for f in failed]
        numeric = _numeric(values + failed_values) and bool(values + failed_values)
        if numeric:
            x = [float(v) for v in values]
            x_failed = [float(v) for v in failed_values]
        else:
            categories = sorted({str(v) for v in values + failed_values})
            x = [categories.index(str(v)) for v in values]
            x_failed = [categories.index(str(v)) for v in failed_values]
            axes.set_xticks(range(len(categories)))
            axes.set_xticklabels(categories, rotation=30, ha="right", fontsize=11)
        repeated = bool(x) and len(set(x)) < len(x)
        if x:
            xs, means, stds, per_value = _spread(x, scores)
            if repeated:
                axes.errorbar(
                    xs,
                    means,
                    yerr=stds,
                    fmt="o-",
                    color="tab:blue",
                    capsize=5,
                    zorder=3,
                    markersize=7,
                    label=f"mean ± sd over up to {per_value} jobs (seeds)",
                )
            elif len(panel_params) == 1 and len(x) > 1:  # one parameter: join in x order
                axes.plot(xs, means, color="tab:blue", alpha=0.5, zorder=2)
        axes.scatter(
            x,
            scores,
            s=25 if repeated else 50,
            color="tab:blue",
            alpha=0.4 if repeated else 1,
            zorder=3,
            label="job",
        )
        if best is not None:
            axes.scatter(
                [x[best]],
                [scores[best]],
                s=300,
                marker="*",
                color="gold",
                edgecolors="black",
                zorder=4,
                label=f"best (job {rows[best]['job']})",
            )
        if x_failed:
            lower = min(scores) if scores else 0.0
            axes.scatter(
                x_failed,
                [lower] * len(x_failed),
                marker="x",
                s=80,
                color="tab:red",
                zorder=4,
                label="failed",
            )
        if numeric and _log_axis(param, x + x_failed):
            axes.set_xscale("log")
        if numeric and len(set(x + x_failed)) <= 10:  # few values: tick exactly those
            ticks = sorted(set(x + x_failed))
            axes.set_xticks(ticks)
            axes.set_xticklabels([f"{v:g}" for v in ticks], fontsize=11)
            axes.minorticks_off()
        axes.set_xlabel(param + (" (log scale)" if axes.get_xscale() == "log" else ""), fontsize=12)
        axes.set_ylabel(f"{metric} ({'higher' if maximize else 'lower'} is better)", fontsize=12)
        axes.tick_params(labelsize=11)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=10)
    for axes in axes_list[panels:]:
        axes.set_visible(False)
    figure.suptitle(
        f"{metric} of {len(rows)} finished jobs" + (f", {len(failed)} failed" if failed else ""),
        fontsize=14,
    )
    figure.tight_layout()
    return figure


def sampler_quality_figure(scores: dict[str, dict[str, dict[str, float]]]) -> Figure:
    """Sample quality of models × samplers (``{model label: {sampler: {fid, precision,
    recall}}}``): FID as bars grouped by model, one colour per sampler (lower is better), and
    precision against recall, one marker per pair (up and right is better)."""
    models = list(scores)
    samplers = sorted({name for by_sampler in scores.values() for name in by_sampler})
    samplers.sort(key=lambda name: name != "prior")  # today's behaviour first
    colours = colormaps["tab10"]
    figure = new_figure(SLIDE_PANEL[0] * 2, SLIDE_PANEL[1], dpi=SLIDE_DPI)
    fid_axes, pr_axes = figure.subplots(1, 2)
    width = 0.8 / max(len(samplers), 1)
    for index, sampler in enumerate(samplers):
        positions = [m + (index - (len(samplers) - 1) / 2) * width for m in range(len(models))]
        heights = [scores[model].get(sampler, {}).get("fid", math.nan) for model in models]
        fid_axes.bar(positions, heights, width, color=colours(index), label=sampler)
        pairs = [
            (model, scores[model][sampler].get("recall"), scores[model][sampler].get("precision"))
            for model in models
            if sampler in scores[model]
        ]
        pairs = [(model, x, y) for model, x, y in pairs if x is not None and y is not None]
        if pairs:
            pr_axes.scatter(
                [x for _, x, _ in pairs],
                [y for _, _, y in pairs],
                color=colours(index),
                s=60,
                label=sampler,
            )
            for model, x, y in pairs:
                pr_axes.annotate(
                    model, (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points"
                )
    fid_axes.set_xticks(range(len(models)))
    fid_axes.set_xticklabels(models, rotation=30, ha="right", fontsize=11)
    fid_axes.set_ylabel("FID (lower is better)")
    fid_axes.legend(title="sampler", fontsize=9)
    pr_axes.set_xlabel("recall")
    pr_axes.set_ylabel("precision")
    pr_axes.set_xlim(0, 1)
    pr_axes.set_ylim(0, 1)
    pr_axes.legend(title="sampler", fontsize=9)
    figure.tight_layout()
    return figure
