"""FID and precision/recall (k = 3) of trained runs' samples, one markdown row per run, in a
feature classifier's space — for every run with a ``sample``, autoencoders included, without
the rest of ``vaelab-eval`` (which computes the same numbers after its test-set stage).

  python scripts/sample_quality_table.py --classifier <log dir>/feature_classifiers/mnist \
      [--sampler gmm] RUN_DIR…

The samples are ``model.sample`` (z ~ the model's prior, or N(0, I) for an autoencoder) or,
with ``--sampler <name>``, decoded codes of that ex-post sampler (``conf/sampler/<name>.yaml``,
fitted on the training codes and saved beside the checkpoint exactly as ``vaelab-eval
sampler=<name>`` does); the real images are the run's whole test split, as in ``vaelab-eval``'s
sample-quality stage (:func:`vaelab.evaluation.sample_quality.sample_quality`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
from vaelab.evaluation.encodings import prepare_batch
from vaelab.evaluation.feature_extractors import load_classifier_features
from vaelab.evaluation.sample_quality import sample_quality
from vaelab.evaluation.sampler_fit import fitted_sampler
from vaelab.paths import CONFIG_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--classifier", type=Path, required=True)
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sampler", default="prior", help="an option of conf/sampler/")
    args = parser.parse_args()
    device = torch.device("cpu")
    sampler_config = OmegaConf.load(CONFIG_DIR / "sampler" / f"{args.sampler}.yaml")
    print("| run | sampler | FID | precision | recall | samples |\n|---|---|---|---|---|---|")
    for run_dir in args.runs:
        location = locate_checkpoint(run_dir)
        run = load_run(location, device)
        model = run.module.model
        sampler = fitted_sampler(
            instantiate(sampler_config),
            model,
            run.datamodule,
            location.checkpoint,
            run.global_step,
            device,
            seed=args.seed,
        ).sampler
        extractor = load_classifier_features(args.classifier, device, tuple(model.input_shape))
        real = (
            prepare_batch(run.datamodule, batch, device)[0]
            for batch in run.datamodule.test_dataloader()
        )
        torch.manual_seed(args.seed)
        with torch.no_grad():
            result = sample_quality(
                model, real, extractor, args.num_samples, args.seed, sampler=sampler
            )
        print(
            f"| {run_dir.name} | {args.sampler} | {result.fid:.2f} | {result.precision:.3f} | "
            f"{result.recall:.3f} | {result.num_generated} |"
        )


if __name__ == "__main__":
    main()
