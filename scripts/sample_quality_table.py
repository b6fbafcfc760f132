"""FID and precision/recall (k = 3) of trained runs' prior samples, one markdown row per run,
in a feature classifier's space — for every run with a ``sample``, autoencoders included
(``vaelab-eval`` computes the same numbers, but only after its IW-NLL stage, which a model
without a prior p(z) refuses).

  python scripts/sample_quality_table.py --classifier <log dir>/feature_classifiers/mnist RUN_DIR…

The samples are ``model.sample`` (z ~ the model's prior, or N(0, I) for an autoencoder), the
real images the run's whole test split, as in ``vaelab-eval``'s sample-quality stage
(:func:`vaelab.evaluation.sample_quality.sample_quality`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
from vaelab.evaluation.encodings import prepare_batch
from vaelab.evaluation.feature_extractors import load_classifier_features
from vaelab.evaluation.sample_quality import sample_quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--classifier", type=Path, required=True)
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = torch.device("cpu")
    print("| run | FID | precision | recall | samples |\n|---|---|---|---|---|")
    for run_dir in args.runs:
        run = load_run(locate_checkpoint(run_dir), device)
        model = run.module.model
        extractor = load_classifier_features(args.classifier, device, tuple(model.input_shape))
        real = (
            prepare_batch(run.datamodule, batch, device)[0]
            for batch in run.datamodule.test_dataloader()
        )
        torch.manual_seed(args.seed)
        with torch.no_grad():
            result = sample_quality(model, real, extractor, args.num_samples, args.seed)
        print(
            f"| {run_dir.name} | {result.fid:.2f} | {result.precision:.3f} | "
            f"{result.recall:.3f} | {result.num_generated} |"
        )


if __name__ == "__main__":
    main()
