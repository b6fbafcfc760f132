"""Which pictures a model gets, decided once from its interface: the training callback
(``callbacks/image_logger.py``) and ``vaelab-eval`` (``plots/pictures.py``) both draw what
:func:`picture_plan` lists, and leave out what it skips, with its reason.

The plan reads a model only through :class:`~vaelab.models.interface.LatentVariableModel`:
``num_classes`` (one row of samples per class), ``latent_structure.code_dim`` (the codes the
latent pictures read: a 2-D code gets the decoded manifold, any other the traversals) and its
``categorical_blocks`` (one-hot variables: swept category by category). Whether a
model can draw samples is its own to say: one lacking the part (a VQ-VAE before its stage-2
prior is trained) raises :class:`~vaelab.models.interface.MissingCapability` when asked, and
:func:`draw_unless_missing` turns that into a skipped picture.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from vaelab.models.interface import LatentVariableModel, MissingCapability

Picture = TypeVar("Picture")

#: the names of the pictures a plan decides on (vaelab-eval's file names)
RECONSTRUCTIONS = "reconstructions"
PRIOR_SAMPLES = "prior_samples"
CLASS_SAMPLES = "class_conditional_samples"
LATENT_MANIFOLD = "latent_manifold"
LATENT_TRAVERSALS = "latent_traversals"
DISCRETE_TRAVERSALS = "discrete_traversals"
LATENT_GEOMETRY = "latent_geometry"


@dataclass(frozen=True)
class PicturePlan:
    """The pictures of one model. ``skipped`` names each picture the plan leaves out and why."""

    #: inputs above their reconstructions E[x | z = E_q z] (every model)
    reconstructions: bool
    #: decoded draws z ~ p(z), labels from ``labels_for_samples`` (a model may still refuse:
    #: :func:`draw_unless_missing`)
    samples: bool
    #: K for a class-conditional model: one row of samples per class; None otherwise
    class_rows: int | None
    #: the decoded grid of a 2-D code space (unconditional models with 2-D codes)
    latent_manifold: bool
    #: one code's dimensions swept one at a time (every model without the manifold)
    traversals: bool
    #: the size of the code the latent pictures read (``latent_structure.code_dim``)
    code_dim: int
    skipped: Mapping[str, str] = field(default_factory=dict)
    #: each categorical variable of the code set to each of its categories in turn (models
    #: whose ``latent_structure`` has ``categorical_blocks``); traversals then sweep the
    #: other, continuous dimensions only
    discrete_traversals: bool = False
    #: the codes drawn on their manifold (``latent_geometry``: a 3-D code on the sphere S², a
    #: 2-D code in the Poincaré disc); a code off R^D gets no decoded grid and no traversals,
    #: which would leave its manifold
    latent_geometry: bool = False


def picture_plan(model: LatentVariableModel) -> PicturePlan:
    """The pictures ``model`` gets (the same for training and vaelab-eval)."""
    structure = model.latent_structure
    code_dim = int(structure.code_dim)
    discrete = bool(structure.categorical_blocks)
    continuous = bool(structure.continuous_dims)
    class_rows = int(model.num_classes) if model.num_classes else None
    two_dimensional = code_dim == 2
    manifold = two_dimensional and class_rows is None
    skipped = {}
    if class_rows is None:
        skipped[CLASS_SAMPLES] = "the model is not class-conditional"
    if manifold:
        skipped[LATENT_TRAVERSALS] = "latent_dim = 2: see latent_manifold"
    elif two_dimensional:  # a conditional model's manifold would need a class
        skipped[LATENT_MANIFOLD] = "a class-conditional model: see class samples"
    else:
        skipped[LATENT_MANIFOLD] = f"needs latent_dim = 2, got {code_dim}"
    traversals = not manifold and continuous
    if discrete and not continuous:
        skipped[LATENT_TRAVERSALS] = "every code dimension is categorical: see discrete_traversals"
    geometry = model.latent_geometry
    drawable = (geometry.manifold, code_dim) in (("sphere", 3), ("poincare_ball", 2))
    if not geometry.is_euclidean:  # (codes in R^D have the manifold or traversals instead)
        off = f"the codes live on {geometry.describe()}: a sweep through R^{code_dim} leaves it"
        skipped[LATENT_MANIFOLD] = skipped[LATENT_TRAVERSALS] = off
        manifold = traversals = False
        if not drawable:
            skipped[LATENT_GEOMETRY] = (
                f"codes on {geometry.describe()} are drawn for a 3-D sphere or a 2-D ball, "
                f"got latent_dim = {code_dim}"
            )
    return PicturePlan(
        reconstructions=True,
        samples=True,
        class_rows=class_rows,
        latent_manifold=manifold,
        traversals=traversals,
        code_dim=code_dim,
        skipped=skipped,
        discrete_traversals=discrete,
        latent_geometry=drawable,
    )


def draw_unless_missing(draw: Callable[[], Picture]) -> tuple[Picture | None, str | None]:
    """``(picture, None)``, or ``(None, reason)`` when the model lacks a part the picture needs
    (it raised :class:`MissingCapability`, e.g. a VQ-VAE of stage 1 asked for samples)."""
    try:
        return draw(), None
    except MissingCapability as missing:
        return None, str(missing)
