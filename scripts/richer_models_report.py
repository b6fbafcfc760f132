"""The numbers of docs/experiments.md's "richer models" section for trained runs: −ELBO and
IW-NLL from each run's ``vaelab-eval`` (eval/metrics.json), active units per stochastic layer
(hierarchies) and, for a class-conditional model, the accuracy of a classifier trained on the
real training images on the model's samples of each class.

Usage: python scripts/richer_models_report.py RUN_DIR [RUN_DIR …] [--points 1000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from vaelab.data.image_datamodule import PIXEL_MAX
from vaelab.evaluation.active_units import active_units
from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
from vaelab.evaluation.class_samples import accuracy, class_sample_accuracy, train_classifier
from vaelab.evaluation.encodings import prepare_batch
from vaelab.run_files import EVAL_DIR, METRICS_FILE


def layer_active_units(run, points: int) -> list[int]:
    """Active units of each stochastic layer (one entry for a one-layer model)."""
    model = run.module.model
    means: list[list[torch.Tensor]] = []
    seen = 0
    for batch in run.datamodule.test_dataloader():
        x, y = prepare_batch(run.datamodule, batch, torch.device("cpu"))
        if hasattr(model, "layer_codes"):  # a hierarchy: every layer
            codes = model.layer_codes(x)
        else:
            codes = [model.latent_codes(x, y)]
        means = means or [[] for _ in codes]
        for column, q in zip(means, codes, strict=True):
            column.append(q.mean.detach())
        seen += len(x)
        if seen >= points:
            break
    return [active_units(torch.cat(column)[:points]).count for column in means]


def sample_accuracy(run, samples_per_class: int) -> dict[str, float]:
    datamodule = run.datamodule
    datamodule.setup("fit")
    train, test = datamodule.splits["train"], datamodule.splits["test"]
    classifier = train_classifier(
        train.images.float() / PIXEL_MAX, train.labels, run.module.model.num_classes
    )
    torch.manual_seed(0)
    scored = class_sample_accuracy(run.module.model, classifier, samples_per_class)
    test_accuracy = accuracy(classifier, test.images.float() / PIXEL_MAX, test.labels)
    return {
        "classifier_test_accuracy": test_accuracy,
        "sample_accuracy": scored.accuracy,
        "sample_accuracy_per_class": scored.per_class,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--samples-per-class", type=int, default=100)
    args = parser.parse_args()
    for run_dir in args.runs:
        metrics = json.loads((run_dir / EVAL_DIR / METRICS_FILE).read_text())
        run = load_run(locate_checkpoint(run_dir), torch.device("cpu"), {"download": False})
        row = {
            "run": run_dir.name,
            "neg_elbo": round(metrics["neg_elbo"], 2),
            "iw_nll": round(metrics["iw_nll"], 2),
            "k": metrics["num_importance_samples"],
            "n": metrics["num_points"],
            "epoch": metrics["epoch"],
            "active_units_per_layer": layer_active_units(run, args.points),
        }
        if run.module.model.num_classes:
            row |= sample_accuracy(run, args.samples_per_class)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
