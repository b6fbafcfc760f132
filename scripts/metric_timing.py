"""Wall time of each disentanglement metric at disentanglement_lib's default sizes (10 000
training points, 5 000 held out, 64 per β-VAE / FactorVAE example), and of FID and
precision/recall on 10 000 points.

The observations come from a toy ground-truth set with dSprites' factor grid (3, 6, 40, 32,
32) whose "encoder" reads the factors back (plus five noise codes), so the times are those of
the metrics themselves, not of an encoder. Run from the repository root:

    PYTHONPATH=src python scripts/metric_timing.py [--num-train 10000] [--skip dci]
    PYTHONPATH=src python scripts/metric_timing.py --synthetic    # the table of known cases
    PYTHONPATH=src python scripts/metric_timing.py --run <run dir> [--sizes quick]
    PYTHONPATH=src python scripts/metric_timing.py --count-encodings [--sizes quick]

``--run`` times vaelab-eval's disentanglement evaluation of a trained run (its encoder, its
data) at the given sizes and prints the JSON of scores, seconds and encoded observations.
``--count-encodings`` counts the observations one evaluation sends through the encoder on
dSprites' grid (noise-free, so each distinct one is encoded once) without an encoder.

Prints a Markdown table (seconds) and the scores. ``--synthetic`` prints instead the metrics of
the synthetic representations of tests/ground_truth_toy.py (factors + noise, a
rotation, a duplicated factor, noise) at 2 000 / 1 000 points.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ground_truth_toy import FactorPixels, factors_and_noise
from vaelab.evaluation.disentanglement import DisentanglementSettings, compute_disentanglement
from vaelab.evaluation.fid import frechet_distance
from vaelab.evaluation.precision_recall import precision_recall

DSPRITES_FACTORS = (3, 6, 40, 32, 32)
NOISE_CODES = 5
FEATURE_DIM = 128
#: the metrics timed together (one classifier fit serves all three, one both)
GROUPS = {
    "beta_vae_score": ("beta_vae_score",),
    "factor_vae_score": ("factor_vae_score",),
    "mig": ("mig",),
    "sap": ("sap",),
    "dci": ("dci_disentanglement", "dci_completeness", "dci_informativeness"),
    "modularity_explicitness": ("modularity", "explicitness"),
}


def print_synthetic_table() -> None:
    from tests.ground_truth_toy import synthetic_table
    from vaelab.evaluation.disentanglement import METRIC_NAMES

    table = synthetic_table()
    print("| representation | " + " | ".join(METRIC_NAMES) + " |")
    print("|---" * (len(METRIC_NAMES) + 1) + "|")
    for case, scores in table.items():
        print(f"| {case} | " + " | ".join(f"{scores[n]:.3f}" for n in METRIC_NAMES) + " |")


def time_run(run_dir: str | None, sizes: str, count_only: bool) -> None:
    import json

    from vaelab.evaluation.disentanglement import ENCODED_KEY

    settings = DisentanglementSettings(sizes=sizes)
    if count_only:
        data = FactorPixels(DSPRITES_FACTORS, noise_pixels=0)
        wanted = ("beta_vae_score", "factor_vae_score", "mig")
        scores = compute_disentanglement(data, factors_and_noise(data), settings, wanted)
        print(f"{sizes} sizes: {scores[ENCODED_KEY]:,} observations encoded")
        return
    from vaelab.evaluation.checkpoint import load_run, locate_checkpoint

    run = load_run(
        locate_checkpoint(run_dir),
        torch.device("cpu"),
        data_overrides={"download": False, "num_workers": 0, "on_device": False},
    )
    model = run.module.model.eval()

    @torch.no_grad()
    def encoder_mean(observations: torch.Tensor) -> torch.Tensor:
        return model.encode(observations).mean

    start = time.perf_counter()
    scores = compute_disentanglement(run.datamodule, encoder_mean, settings)
    scores["total_seconds"] = time.perf_counter() - start
    scores["torch_threads"] = torch.get_num_threads()
    print(json.dumps(scores, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-train", type=int, default=10_000)
    parser.add_argument("--num-eval", type=int, default=5_000)
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(GROUPS))
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--run", default=None, help="a trained run dir to time")
    parser.add_argument("--count-encodings", action="store_true")
    parser.add_argument("--sizes", default="literature", choices=("literature", "quick"))
    args = parser.parse_args()
    if args.synthetic:
        print_synthetic_table()
        return
    if args.run or args.count_encodings:
        time_run(args.run, args.sizes, args.count_encodings)
        return
    data = FactorPixels(DSPRITES_FACTORS, noise_pixels=NOISE_CODES)
    settings = DisentanglementSettings(
        num_train=args.num_train, num_eval=args.num_eval, num_variance_estimate=args.num_train
    )
    rows = []
    for group, names in GROUPS.items():
        if group in args.skip:
            continue
        start = time.perf_counter()
        scores = compute_disentanglement(data, factors_and_noise(data), settings, names)
        seconds = time.perf_counter() - start
        rows.append((group, seconds, ", ".join(f"{n} {scores[n]:.3f}" for n in names)))
        print(f"{group}: {seconds:.1f} s", flush=True)
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(args.num_train, FEATURE_DIM, generator=generator)
    generated = torch.randn(args.num_train, FEATURE_DIM, generator=generator) + 0.1
    start = time.perf_counter()
    fid = frechet_distance(real, generated)
    rows.append(("fid", time.perf_counter() - start, f"fid {fid:.3f}"))
    start = time.perf_counter()
    scores = precision_recall(real, generated)
    rows.append(
        (
            "precision_recall",
            time.perf_counter() - start,
            f"precision {scores.precision:.3f}, recall {scores.recall:.3f}",
        )
    )
    print(
        f"\n{args.num_train} training / {args.num_eval} held-out points; torch threads "
        f"{torch.get_num_threads()}\n"
    )
    print("| metric | seconds | scores (factors + noise codes) |\n|---|---|---|")
    for group, seconds, text in rows:
        print(f"| {group} | {seconds:.1f} | {text} |")


if __name__ == "__main__":
    main()
