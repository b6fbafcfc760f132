"""The codes drawn on the manifold they live on: the unit sphere S² (a 3-D code on the sphere:
Davidson et al. 2018's Figure 1 style) or the Poincaré disc (a 2-D code on the ball of curvature
−c: Mathieu et al. 2019's latent plots), coloured by class. Which models get it is
``plots/policy.py``'s decision, read from the model's ``latent_geometry``."""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from torch import Tensor

from vaelab.plots.figures import new_figure
from vaelab.posteriors.geometry import LatentGeometry


def latent_geometry_figure(
    codes: Tensor, labels: Tensor | None, geometry: LatentGeometry
) -> Figure:
    """``codes`` [N, 3] on S² (posterior means, put back on the sphere: a vMF's mean is
    A_d(κ) μ) or [N, 2] in the Poincaré disc, coloured by ``labels``."""
    points = codes.detach().float().cpu()
    colours = None
    if labels is not None and bool((labels >= 0).all()):
        colours = colormaps["tab10"](labels.cpu().numpy() % 10)
    if geometry.manifold == "sphere":
        return _sphere_figure(torch.nn.functional.normalize(points, dim=-1), colours)
    if geometry.manifold == "poincare_ball":
        return _disc_figure(points, colours, geometry.curvature)
    raise ValueError(f"no picture for codes on {geometry.describe()}")


def _sphere_figure(points: Tensor, colours) -> Figure:
    figure = new_figure(7, 7)
    axes = figure.add_subplot(projection="3d")
    u, v = np.meshgrid(np.linspace(0, 2 * math.pi, 25), np.linspace(0, math.pi, 13))
    axes.plot_wireframe(
        np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.85", linewidth=0.5
    )
    x, y, z = points.numpy().T
    axes.scatter(x, y, z, c=colours, s=6, depthshade=True)
    axes.set_box_aspect((1, 1, 1))
    axes.set_title(f"Posterior mean directions of {len(points)} test images on S²")
    return figure


def _disc_figure(points: Tensor, colours, curvature: float) -> Figure:
    figure = new_figure(7, 7)
    axes = figure.add_subplot()
    radius = 1 / math.sqrt(curvature)
    angle = np.linspace(0, 2 * math.pi, 200)
    axes.plot(radius * np.cos(angle), radius * np.sin(angle), color="0.3", linewidth=1)
    x, y = points.numpy().T
    axes.scatter(x, y, c=colours, s=6)
    axes.set_aspect("equal")
    axes.set_xlim(-1.05 * radius, 1.05 * radius)
    axes.set_ylim(-1.05 * radius, 1.05 * radius)
    axes.set_title(
        f"Posterior means of {len(points)} test images in the Poincaré disc (c = {curvature:g})"
    )
    return figure
