"""The KL of trained runs split into index-code MI, total correlation and dimension-wise KL
(Chen et al. 2018, eq. 2), with the same estimator for every run, as a Markdown table.

For each run (a run dir or .ckpt), q(z) is the aggregate posterior of the whole test split
(N points): each test batch of ``--batch-size`` draws one code z_n ~ q(z|x_n) per point and
estimates log q(z) and log q(z_d) by β-TCVAE's minibatch-stratified sampling with that N
(vaelab.objectives.beta_tcvae.decompose_kl); the parts are averaged over the split.
``--batch-size`` = N makes the estimate exact for the N-component mixture. MI + TC + dim-KL
is the Monte-Carlo KL of the same codes, reported beside the closed-form mean KL. Any
objective's run works (the β-VAE's as much as β-TCVAE's), so their TCs compare directly.
MI ≤ log N (the index of the data point carries at most log N nats).

  python scripts/latent_decomposition.py RUN [RUN ...] [--batch-size 1000]
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
def decomposition(run_path: Path, batch_size: int, seed: int) -> dict[str, float]:
    device = torch.device("cpu")
    run = load_run(
        locate_checkpoint(run_path),
        device,
        data_overrides={
            "download": False,
            "num_workers": 0,
            "on_device": False,
            "eval_batch_size": batch_size,
        },
    )
    model = run.module.model
    dataset_size = run.datamodule.data_info()["num_test"]
    torch.manual_seed(seed)
    sums = dict.fromkeys(
        ("mutual_information", "total_correlation", "dimension_wise_kl", "kl"), 0.0
    )
    for batch in run.datamodule.test_dataloader():
        x, y = prepare_batch(run.datamodule, batch, device)
        posterior = model.encode(x, y)
        z = posterior.sample()
        parts = decompose_kl(posterior, z, model.prior.log_prob(z), dataset_size, "stratified")
        for name in ("mutual_information", "total_correlation", "dimension_wise_kl"):
            sums[name] += getattr(parts, name).sum().item() / dataset_size
        kl = kl_divergence(posterior, model.prior.distribution())
        sums["kl"] += kl.sum().item() / dataset_size
    return {**sums, "num_points": dataset_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("| run | MI | TC | dim-KL | MI+TC+dim-KL | KL (closed form) |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        row = decomposition(run, args.batch_size, args.seed)
        total = row["mutual_information"] + row["total_correlation"] + row["dimension_wise_kl"]
        print(
            f"| {run} | {row['mutual_information']:.2f} | {row['total_correlation']:.2f} | "
            f"{row['dimension_wise_kl']:.2f} | {total:.2f} | {row['kl']:.2f} |"
        )


if __name__ == "__main__":
    main()
