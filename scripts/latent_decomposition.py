"""The KL of trained runs split into index-code MI, total correlation and dimension-wise KL
(Chen et al. 2018, eq. 2), with the same estimator for every run, as a Markdown table.

For each run (a run dir or .ckpt), the first ``--num-points`` test images are the data set:
one code z_n ~ q(z|x_n) each, and log q(z) and log q(z_d) of the aggregate posterior of those
N posteriors are exact (β-TCVAE's minibatch-stratified estimator with the batch = the whole
set, vaelab.objectives.beta_tcvae.decompose_kl). MI + TC + dim-KL is the Monte-Carlo KL of
the same codes, reported beside the closed-form mean KL. Any objective's run works (the
β-VAE's as much as β-TCVAE's), so their TCs compare directly.

  python scripts/latent_decomposition.py RUN [RUN ...] [--num-points 1000] [--draws 5]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.distributions import kl_divergence

from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
from vaelab.evaluation.encodings import prepare_batch
from vaelab.objectives.beta_tcvae import decompose_kl


@torch.no_grad()
def decomposition(run_path: Path, num_points: int, draws: int, seed: int) -> dict[str, float]:
    device = torch.device("cpu")
    run = load_run(
        locate_checkpoint(run_path),
        device,
        data_overrides={"download": False, "num_workers": 0, "on_device": False},
    )
    model = run.module.model
    images, labels = [], []
    for batch in run.datamodule.test_dataloader():
        x, y = prepare_batch(run.datamodule, batch, device)
        images.append(x)
        labels.append(y)
        if sum(len(chunk) for chunk in images) >= num_points:
            break
    x = torch.cat(images)[:num_points]
    y = torch.cat(labels)[:num_points]
    posterior = model.encode(x, y)
    torch.manual_seed(seed)
    sums = {"mutual_information": 0.0, "total_correlation": 0.0, "dimension_wise_kl": 0.0}
    for _ in range(draws):  # one code per point per draw; average the draws
        z = posterior.sample()
        parts = decompose_kl(posterior, z, model.prior.log_prob(z), len(x), "stratified")
        for name in sums:
            sums[name] += getattr(parts, name).mean().item() / draws
    kl = kl_divergence(posterior, model.prior.distribution()).mean().item()
    return {**sums, "kl": kl, "num_points": len(x)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--num-points", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("| run | MI | TC | dim-KL | MI+TC+dim-KL | KL (closed form) |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        row = decomposition(run, args.num_points, args.draws, args.seed)
        total = row["mutual_information"] + row["total_correlation"] + row["dimension_wise_kl"]
        print(
            f"| {run} | {row['mutual_information']:.2f} | {row['total_correlation']:.2f} | "
            f"{row['dimension_wise_kl']:.2f} | {total:.2f} | {row['kl']:.2f} |"
        )


if __name__ == "__main__":
    main()
