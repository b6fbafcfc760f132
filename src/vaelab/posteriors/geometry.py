"""The space a latent code lives in, declared by its posterior and prior (never guessed from
their classes): R^D, the unit sphere S^(D−1) or the Poincaré ball of curvature −c.

A VAE refuses a posterior and a prior that declare different geometries (their densities would
be with respect to different base measures, so log p(z) − log q(z|x) would mean nothing), and
``plots/policy.py`` reads the model's geometry to decide the latent pictures (a sphere of
D = 3 and a ball of D = 2 are drawn as themselves; decoded grids and traversals, which leave
the manifold, are skipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: the manifolds a latent may live on
Manifold = Literal["euclidean", "sphere", "poincare_ball"]


@dataclass(frozen=True)
class LatentGeometry:
    """``manifold`` and, for the Poincaré ball, its curvature parameter c > 0 (sectional
    curvature −c, radius 1/√c); 0 for the others."""

    manifold: Manifold = "euclidean"
    curvature: float = 0.0

    @property
    def is_euclidean(self) -> bool:
        return self.manifold == "euclidean"

    def describe(self) -> str:
        """A few words for messages: 'R^D', 'the unit sphere', 'the Poincaré ball (c = 1)'."""
        if self.manifold == "sphere":
            return "the unit sphere"
        if self.manifold == "poincare_ball":
            return f"the Poincaré ball (c = {self.curvature:g})"
        return "R^D"


EUCLIDEAN = LatentGeometry()
SPHERE = LatentGeometry("sphere")


def poincare_ball(curvature: float) -> LatentGeometry:
    """The Poincaré ball of curvature −``curvature``."""
    return LatentGeometry("poincare_ball", float(curvature))
