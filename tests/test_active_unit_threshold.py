"""The active-units threshold δ lives in one place (evaluation.active_units); the traversal
figure, the pictures' default, vaelab-eval's default and the report's glossary follow it."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from vaelab.evaluation.active_units import ACTIVITY_THRESHOLD
from vaelab.paths import CONFIG_DIR
from vaelab.plots.figures import latent_traversal_figure
from vaelab.plots.pictures import PictureSettings
from vaelab.report import GLOSSARY


def test_traversal_title_states_the_threshold_it_was_given():
    dims, values = [0, 1], [-1.0, 0.0, 1.0]
    grid = torch.rand(3, 2 * 10, 3 * 10)
    figure = latent_traversal_figure(grid, dims, values, [0.3, 0.001], 2, activity_threshold=0.05)
    title = figure.axes[0].get_title()
    assert "active if > 0.05" in title
    assert "0.01" not in title


def test_defaults_are_the_one_threshold():
    assert PictureSettings().activity_threshold == ACTIVITY_THRESHOLD
    # vaelab-eval: null means ACTIVITY_THRESHOLD (no second copy of the number in conf/)
    assert OmegaConf.load(CONFIG_DIR / "eval.yaml").eval.active_unit_threshold is None
    assert f"> {ACTIVITY_THRESHOLD:g} " in GLOSSARY["eval/active_units"]
