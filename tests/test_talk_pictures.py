"""Pictures ready for a talk: slide-sized report plots with log axes for scale parameters and
the spread over seeds, class names, the most active latent dimensions."""

from __future__ import annotations

import pytest
import torch

from vaelab.data.fashion_mnist import FashionMNISTDataModule
from vaelab.data.mnist import MNISTDataModule
from vaelab.plots.figures import SLIDE_DPI, SLIDE_PANEL, save_figure, sweep_figure
from vaelab.plots.grids import reconstruction_grid, upscale_factor
from vaelab.plots.pictures import dataset_class_names, traversal_dims


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


def test_class_names_come_from_the_dataset():
    assert dataset_class_names(FashionMNISTDataModule)[:2] == ["T-shirt/top", "Trouser"]
    assert dataset_class_names(MNISTDataModule) == [str(d) for d in range(10)]
    assert dataset_class_names(object()) is None


def test_traversals_show_the_most_active_dimensions_first():
    activity = torch.tensor([0.0, 2.0, 0.001, 0.5, 1.0])
    assert traversal_dims(activity, 5, 3) == [1, 4, 3]
    assert traversal_dims(None, 32, 10) == list(range(10))


def test_reconstruction_grid_labels_blocks_of_pairs_and_pads_the_last():
    class HalfGrey:  # stands in for a VAE: reconstructions are inputs × 0.5
        def reconstruct(self, x, labels=None):  # noqa: ARG002 (the interface's signature)
            return 0.5 * x

    inputs = torch.ones(20, 1, 28, 28)  # 8 + 8 + 4 pairs
    grid = reconstruction_grid(HalfGrey(), inputs)
    side = upscale_factor(28) * 28 + 2 * 4  # an upscaled digit and its padding
    assert grid.shape[0] == 3
    assert grid.shape[1] == 6 * side
    rows = grid[0, :: side // 2][1::2]  # the middle line of each of the 6 rows
    digits = rows[:, -side // 2]  # in the last column: only full blocks reach it
    assert digits.tolist() == [1.0, 0.5, 1.0, 0.5, 1.0, 1.0]  # the 4-pair block is padded white
    label_pixels = grid[0, :, :8]  # the label text starts 8 px in
    assert label_pixels.min() == 1.0  # the label column starts white
