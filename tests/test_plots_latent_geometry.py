"""The codes drawn on their manifold: S² with its wireframe, the Poincaré disc with its rim."""

from __future__ import annotations

import pytest
import torch

from vaelab.plots.latent_geometry import latent_geometry_figure
from vaelab.posteriors.geometry import EUCLIDEAN, SPHERE, poincare_ball


def test_codes_are_drawn_on_the_unit_sphere_and_in_a_disc_of_radius_one_over_root_c():
    labels = torch.arange(6) % 3
    on_sphere = latent_geometry_figure(3 * torch.randn(6, 3), labels, SPHERE)
    points = on_sphere.axes[0].collections[-1]._offsets3d  # the scatter's (x, y, z)
    radii = torch.tensor(list(zip(*points, strict=True)), dtype=torch.float32).norm(dim=-1)
    torch.testing.assert_close(radii, torch.ones(6))
    in_disc = latent_geometry_figure(0.4 * torch.rand(6, 2), labels, poincare_ball(2.0))
    assert in_disc.axes[0].get_xlim()[1] == pytest.approx(1.05 / 2**0.5)


def test_codes_in_r_d_have_no_such_picture():
    with pytest.raises(ValueError, match="R\\^D"):
        latent_geometry_figure(torch.randn(4, 2), None, EUCLIDEAN)
