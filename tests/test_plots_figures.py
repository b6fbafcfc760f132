"""vaelab.plots.figures: report plots ready for a talk, slide-sized, with log axes for scale
parameters and the spread over seeds; the traversal figure states the active-units threshold it
was given."""

from __future__ import annotations

import pytest
import torch

from vaelab.plots.figures import (
    SLIDE_DPI,
    SLIDE_PANEL,
    latent_traversal_figure,
    save_figure,
    sweep_figure,
)


def _rows(beta_seed_score):
    return [
        {"job": str(i), "params": {"beta.value": beta, "seed": seed}, "score": score}
        for i, (beta, seed, score) in enumerate(beta_seed_score)
    ]


def test_report_plot_is_slide_sized_with_a_log_beta_axis(tmp_path):
    rows = _rows([(0.5, 0, -95.0), (1.0, 0, -90.0), (4.0, 0, -110.0)])
    figure = sweep_figure("val/elbo", True, ["beta.value"], rows, [])
    (axes,) = [a for a in figure.axes if a.get_visible()]
    assert axes.get_xscale() == "log"  # 0.5 … 4 spans less than a decade, but β is a scale
    path = save_figure(figure, tmp_path / "report.png")
    from PIL import Image

    assert Image.open(path).size == (SLIDE_PANEL[0] * SLIDE_DPI, SLIDE_PANEL[1] * SLIDE_DPI)


def test_report_plot_shows_the_spread_over_seeds():
    scores = [(0.5, 0, -95.0), (0.5, 1, -97.0), (2.0, 0, -90.0), (2.0, 1, -94.0)]
    figure = sweep_figure("val/elbo", True, ["beta.value", "seed"], _rows(scores), [])
    visible = [a for a in figure.axes if a.get_visible()]
    assert len(visible) == 1  # the seed is spread, not a parameter of its own
    (bars,) = visible[0].containers
    means = bars.lines[0].get_ydata()
    assert list(means) == [-96.0, -92.0]
    # the error bar at β = 2 spans ± the sample standard deviation of its two seeds
    bottom, top = sorted(bars.lines[2][0].get_segments()[1][:, 1])
    assert top - bottom == pytest.approx(2 * torch.tensor([-94.0, -90.0]).std().item())


def test_traversal_title_states_the_threshold_it_was_given():
    dims, values = [0, 1], [-1.0, 0.0, 1.0]
    grid = torch.rand(3, 2 * 10, 3 * 10)
    figure = latent_traversal_figure(grid, dims, values, [0.3, 0.001], 2, activity_threshold=0.05)
    title = figure.axes[0].get_title()
    assert "active if > 0.05" in title
    assert "0.01" not in title
