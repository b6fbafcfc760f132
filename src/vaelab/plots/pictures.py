"""The pictures of ``vaelab-eval``: image grids (make_grid) and matplotlib figures of a run.

Each picture is computed from the trained VAE, the test-set evaluation and the run's files;
one that does not apply (e.g. the 2-D manifold for latent_dim ≠ 2) is listed with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import torch
from matplotlib.figure import Figure
from torch import Tensor
from torchvision.utils import make_grid

from vaelab.evaluation.active_units import ACTIVITY_THRESHOLD, active_units
from vaelab.evaluation.encodings import Encodings, encode_split, load_encodings
from vaelab.evaluation.learning_curves import read_learning_curves, tensorboard_dir
from vaelab.evaluation.metrics import TestSetEvaluation
from vaelab.models.interface import CategoricalBlock, LatentVariableModel
from vaelab.plots.figures import (
    before_after_figure,
    discrete_traversal_figure,
    latent_manifold_figure,
    latent_scatter_figure,
    latent_traversal_figure,
    learning_curves_figure,
)
from vaelab.plots.grids import (
    class_conditional_sample_grid,
    latent_manifold_grid,
    prior_sample_grid,
    reconstruction_grid,
)
from vaelab.plots.latent_geometry import latent_geometry_figure
from vaelab.plots.policy import (
    CLASS_SAMPLES,
    DISCRETE_TRAVERSALS,
    LATENT_GEOMETRY,
    LATENT_MANIFOLD,
    LATENT_TRAVERSALS,
    PRIOR_SAMPLES,
    RECONSTRUCTIONS,
    PicturePlan,
    draw_unless_missing,
    picture_plan,
)
from vaelab.samplers.base import Sampler
from vaelab.schema import (
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Range,
    Seed,
    checked_arguments,
)

#: where the encoding-snapshot callback stores the epoch-0 encodings, relative to the run dir
SNAPSHOT_FILE = Path("encodings") / "epoch000.pt"


@dataclass
class PictureOptions:
    """``eval.pictures`` (the schema of that config key): what to draw; the defaults follow
    seeds 000 (manifold over [−3, 3]²) and 004."""

    num_reconstructions: NonNegativeInt = 16
    num_prior_samples: NonNegativeInt = 64
    prior_seed: Seed = 0
    manifold_points: Annotated[int, Range(ge=2)] = 20
    manifold_span: PositiveFloat = 3.0
    scatter_points: PositiveInt = 2000
    traversal_steps: Annotated[int, Range(ge=2)] = 11
    traversal_span: PositiveFloat = 3.0
    #: traversals show the k most active latent dimensions (all of them if there are fewer)
    traversal_max_dims: PositiveInt = 10
    #: samples per class row of a class-conditional model's grid
    samples_per_class: PositiveInt = 10


@checked_arguments("eval.pictures")
@dataclass
class PictureSettings(PictureOptions):
    """The options, and the active-unit threshold of the evaluation they picture."""

    activity_threshold: float = ACTIVITY_THRESHOLD


@dataclass
class Pictures:
    """Image grids [3, H, W] in [0, 1], figures, and the pictures skipped with the reason."""

    grids: dict[str, Tensor] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _subset(encodings: Encodings, count: int) -> Encodings:
    return Encodings(
        mean=encodings.mean[:count],
        stddev=encodings.stddev[:count],
        labels=encodings.labels[:count],
        split=encodings.split,
        epoch=encodings.epoch,
        global_step=encodings.global_step,
    )


def dataset_class_names(datamodule) -> list[str] | None:
    """The data set's class names: the datamodule's ``class_names`` or its torchvision
    dataset's ``classes`` (Fashion-MNIST: T-shirt/top, Trouser, …); None if it has none."""
    names = getattr(datamodule, "class_names", None)
    if names is None:
        names = getattr(getattr(datamodule, "torchvision_class", None), "classes", None)
    if names is None:
        return None
    # MNIST's "0 - zero": the digit says it all
    return [str(i) if str(name).startswith(f"{i} ") else str(name) for i, name in enumerate(names)]


@torch.no_grad()
def traversal_grid(
    model: LatentVariableModel,
    code: Tensor,
    dims: list[int],
    values: Tensor,
    label: Tensor | None = None,
) -> Tensor:
    """Decoder means with one dimension of ``code`` [D] set to each of ``values``; one row
    per dimension in ``dims`` (a conditional model decodes them all with the code's
    ``label``, a 0-d tensor)."""
    z = code.to(values).repeat(len(dims), len(values), 1)  # [rows, cols, D]
    for row, dim in enumerate(dims):
        z[row, :, dim] = values
    labels = label.to(values.device).expand(len(dims) * len(values)) if label is not None else None
    images = model.decode(z.reshape(-1, code.shape[-1]), labels).mean
    return make_grid(images.float().clamp(0, 1), nrow=len(values), pad_value=1.0)


def traversal_dims(
    activity: Tensor | None, latent_dim: int, count: int, among: list[int] | None = None
) -> list[int]:
    """The ``count`` most active latent dimensions, most active first (the first ``count``
    without an activity estimate), ``among`` the given ones (default: all)."""
    among = list(range(latent_dim)) if among is None else among
    if activity is None:
        return among[:count]
    order = torch.argsort(activity[among], descending=True, stable=True)[:count]
    return [among[i] for i in order.tolist()]


def at_most_probable_categories(code: Tensor, blocks: Sequence[CategoricalBlock]) -> Tensor:
    """``code`` [D] with each categorical variable's probabilities replaced by the one-hot
    vector of its most probable category (a code of the discrete model)."""
    code = code.clone()
    for block in blocks:
        chosen = code[block.start : block.start + block.size].argmax()
        code[block.start : block.start + block.size] = 0
        code[block.start + chosen] = 1
    return code


@torch.no_grad()
def discrete_traversal_grid(
    model: LatentVariableModel, code: Tensor, label: Tensor | None = None
) -> Tensor:
    """Decoder means with one categorical variable of ``code`` [D] set to each of its
    categories in turn, the other variables at their most probable category and the
    continuous dimensions kept; one row per variable (``latent_structure.categorical_blocks``),
    as many columns as the largest variable has categories (blank beyond a smaller one's)."""
    blocks = model.latent_structure.categorical_blocks
    base = at_most_probable_categories(code, blocks)
    columns = max(block.size for block in blocks)
    z = base.repeat(len(blocks), columns, 1)  # [rows, cols, D]
    for row, block in enumerate(blocks):
        z[row, :, block.start : block.start + block.size] = 0
        for category in range(block.size):
            z[row, category, block.start + category] = 1
    labels = label.expand(len(blocks) * columns) if label is not None else None
    images = model.decode(z.reshape(-1, code.shape[-1]), labels).mean.float().clamp(0, 1)
    images = images.reshape(len(blocks), columns, *images.shape[1:])
    for row, block in enumerate(blocks):
        images[row, block.size :] = 1.0  # no such category: blank
    return make_grid(images.flatten(0, 1), nrow=columns, pad_value=1.0)


def _traversal(
    model: LatentVariableModel,
    plan: PicturePlan,
    result: TestSetEvaluation,
    settings: PictureSettings,
) -> Figure:
    latent_dim = plan.code_dim
    activity = (
        active_units(result.encodings.mean, settings.activity_threshold).activity
        if result.num_points > 1
        else None
    )
    dims = traversal_dims(
        activity, latent_dim, settings.traversal_max_dims, model.latent_structure.continuous_dims
    )
    device = model.device
    values = torch.linspace(
        -settings.traversal_span, settings.traversal_span, settings.traversal_steps, device=device
    )
    label = result.encodings.labels[0] if plan.class_rows else None
    blocks = model.latent_structure.categorical_blocks
    code = at_most_probable_categories(result.encodings.mean[0].to(device), blocks)
    grid = traversal_grid(model, code, dims, values, label)
    return latent_traversal_figure(
        grid.cpu(),
        dims,
        values.tolist(),
        activity.tolist() if activity is not None else None,
        latent_dim,
        settings.activity_threshold,
    )


def make_pictures(
    model: LatentVariableModel,
    result: TestSetEvaluation,
    inputs: Tensor,
    run_dir: Path,
    datamodule,
    settings: PictureSettings,
    global_step: int,
    snapshot: Path | None = None,
    labels: Tensor | None = None,
    sampler: Sampler | None = None,
) -> Pictures:
    """Every picture of the issue for this run (``inputs``: a batch of test images and their
    ``labels``; ``snapshot``: the epoch-0 encodings file, default
    ``<run>/encodings/epoch000.pt``); which model pictures are drawn is
    :func:`~vaelab.plots.policy.picture_plan`'s decision. The sample grid draws its codes from
    ``sampler`` (default p(z)); one of another sampler is named ``samples_<sampler>``."""
    pictures = Pictures()
    plan = picture_plan(model)
    class_names = dataset_class_names(datamodule)
    count = settings.num_reconstructions
    shown_labels = labels[:count] if labels is not None else None
    if plan.reconstructions:
        pictures.grids[RECONSTRUCTIONS] = (
            reconstruction_grid(model, inputs[:count], shown_labels).float().cpu()
        )
    if plan.samples:
        samples_name = PRIOR_SAMPLES
        if sampler is not None and sampler.needs_fit:
            samples_name = f"samples_{sampler.name}"
        samples, missing = draw_unless_missing(
            lambda: prior_sample_grid(
                model, settings.num_prior_samples, seed=settings.prior_seed, sampler=sampler
            )
        )
        if samples is not None:
            pictures.grids[samples_name] = samples.float().cpu()
        else:
            pictures.skipped[samples_name] = missing
    if plan.class_rows:
        pictures.grids[CLASS_SAMPLES] = (
            class_conditional_sample_grid(
                model, settings.samples_per_class, class_names, seed=settings.prior_seed
            )
            .float()
            .cpu()
        )
    after = _subset(result.encodings, len(result.encodings))
    after.global_step = global_step
    if plan.latent_manifold:
        manifold = latent_manifold_grid(model, settings.manifold_points, settings.manifold_span)
        pictures.figures[LATENT_MANIFOLD] = latent_manifold_figure(
            manifold.cpu(), settings.manifold_span, settings.manifold_points, after.mean
        )
    if plan.traversals:
        pictures.figures[LATENT_TRAVERSALS] = _traversal(model, plan, result, settings)
    if plan.discrete_traversals:
        label = result.encodings.labels[0] if plan.class_rows else None
        grid = discrete_traversal_grid(model, result.encodings.mean[0].to(model.device), label)
        pictures.figures[DISCRETE_TRAVERSALS] = discrete_traversal_figure(
            grid.cpu(), [block.size for block in model.latent_structure.categorical_blocks]
        )
    if plan.latent_geometry:
        shown = _subset(after, settings.scatter_points)
        pictures.figures[LATENT_GEOMETRY] = latent_geometry_figure(
            shown.mean, shown.labels, model.latent_geometry
        )
    for name in (
        CLASS_SAMPLES,
        LATENT_MANIFOLD,
        LATENT_TRAVERSALS,
        DISCRETE_TRAVERSALS,
        LATENT_GEOMETRY,
    ):
        if name in plan.skipped:
            pictures.skipped[name] = plan.skipped[name]
    pictures.figures["latent_scatter"] = latent_scatter_figure(
        _subset(after, settings.scatter_points), class_names
    )
    events = tensorboard_dir(run_dir)
    curves = read_learning_curves(events)
    if curves:
        pictures.figures["learning_curves"] = learning_curves_figure(curves)
    else:
        pictures.skipped["learning_curves"] = (
            f"no TensorBoard events in {events} (train with logger=tensorboard)"
        )
    snapshot = Path(snapshot) if snapshot is not None else run_dir / SNAPSHOT_FILE
    if snapshot.is_file():
        before = load_encodings(snapshot)
        device = model.device
        now = encode_split(model, datamodule, before.split, len(before), device)
        now.global_step = global_step
        pictures.figures["before_after"] = before_after_figure(before, now, class_names)
    else:
        pictures.skipped["before_after"] = (
            f"no epoch-0 snapshot {snapshot} (train with the callbacks.encoding_snapshot callback)"
        )
    return pictures
