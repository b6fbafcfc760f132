"""Sample quality of a generative model: FID and precision/recall of its samples against real
images, in a feature space (:mod:`vaelab.evaluation.feature_extractors`).

The samples are the model's pictures E[x|z], z ~ p(z) (``model.sample``), as in VAE papers'
FIDs, or z from an ex-post sampler fitted to the training codes (``sampler=``,
:meth:`vaelab.samplers.base.Sampler.pictures`); the real images are the test split's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vaelab.evaluation.fid import frechet_distance
from vaelab.evaluation.precision_recall import NEIGHBOURS, precision_recall
from vaelab.models.interface import LatentVariableModel
from vaelab.samplers.base import Sampler
from vaelab.samplers.prior import PriorSampler
from vaelab.stage_progress import Mode, stage

#: samples drawn per batch
SAMPLE_BATCH = 500


@dataclass
class SampleQuality:
    fid: float
    precision: float
    recall: float
    num_real: int
    num_generated: int
    neighbours: int
    feature_space: str


@torch.no_grad()
def extract_features(extractor: nn.Module, images: Iterable[Tensor]) -> Tensor:
    """Features [N, K] (float64, CPU) of batches of images."""
    device = next(extractor.parameters()).device
    return torch.cat([extractor(batch.to(device)).double().cpu() for batch in images])


@torch.no_grad()
def model_samples(
    model: LatentVariableModel, num: int, seed: int, sampler: Sampler | None = None
) -> list[Tensor]:
    """``num`` pictures of the model in batches, drawn under ``seed`` with the codes of
    ``sampler`` (default: the model's own ``sample``); the global RNG is forked, so its state
    outside is left as it was."""
    sampler = sampler if sampler is not None else PriorSampler()
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        pictures = [
            sampler.pictures(model, min(SAMPLE_BATCH, num - start)).float()
            for start in range(0, num, SAMPLE_BATCH)
        ]
    return pictures


def compare_features(
    real: Tensor, generated: Tensor, feature_space: str, neighbours: int = NEIGHBOURS
) -> SampleQuality:
    scores = precision_recall(real, generated, neighbours)
    return SampleQuality(
        fid=frechet_distance(real, generated),
        precision=scores.precision,
        recall=scores.recall,
        num_real=len(real),
        num_generated=len(generated),
        neighbours=neighbours,
        feature_space=feature_space,
    )


def sample_quality(
    model: LatentVariableModel,
    real_images: Iterable[Tensor],
    extractor: nn.Module,
    num_samples: int,
    seed: int = 0,
    progress: Mode | None = None,
    sampler: Sampler | None = None,
) -> SampleQuality:
    """FID and precision/recall of ``num_samples`` model samples (codes from ``sampler``,
    default p(z)) against ``real_images``; the feature pass and the comparison are
    :mod:`vaelab.stage_progress` stages."""
    real_batches = list(real_images)
    num_real = sum(len(batch) for batch in real_batches)
    with stage(
        "sample quality: samples and features", num_real + num_samples, "images", mode=progress
    ) as bar:
        real = extract_features(extractor, bar.track(real_batches, size=len))
        pictures = model_samples(model, num_samples, seed, sampler)
        generated = extract_features(extractor, bar.track(pictures, size=len))
    with stage(
        "sample quality: FID and precision/recall",
        1,
        f"comparison of {num_real:,} × {num_samples:,} feature vectors",
        mode=progress,
    ) as bar:
        scores = compare_features(real, generated, getattr(extractor, "description", "features"))
        bar.advance()
    return scores
