"""Signal-to-noise ratio of the encoder's gradient against k, for each gradient estimator.

  python scripts/gradient_snr.py                  # the linear-Gaussian table (seconds, CPU)
  python scripts/gradient_snr.py --run RUN_DIR    # also a trained vaelab run, on test images

Linear-Gaussian model: p(z) = N(0, 1), p(x|z) = N(a z + b, 1), q(z|x) = N(μ, σ²) with learnable
(μ, log σ²) shared by all x. Each of ``--copies`` copies of one x draws its own k samples, so
one backward gives that many independent gradient estimates (the per-copy gradient of the
encoder's output). SNR = |mean| / std over the copies (Rainforth et al. 2018), per component.
Rainforth et al. (Theorem 1): for IWAE the encoder's SNR falls as O(1/√k); Tucker et al. 2018:
with DReG it does not. ``--run`` adds the mean per-component SNR over a trained model's encoder
and decoder parameters (:func:`vaelab.evaluation.gradient_snr.gradient_snr`) for IWAE_k with
each estimator, on one batch of test images.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from vaelab.likelihoods import GaussianLikelihood
from vaelab.models.vae import VAE
from vaelab.nets.networks import EncoderDecoder
from vaelab.objectives import IWAE
from vaelab.posteriors import DiagonalGaussianPosterior
from vaelab.schedules import ConstantBeta

ESTIMATORS = ("reparam", "stl", "dreg")
#: the data point and a q that is not the exact posterior N(x/2, 1/2) of a = 1, b = 0
X, MU, LOG_VAR, A, B = 1.5, 0.3, -0.5, 1.0, 0.0


class SharedGaussianEncoder(nn.Module):
    """q(z|x) = N(μ, σ²) for every x; keeps its output [N, 2] so that each copy's gradient
    can be read after one backward."""

    def __init__(self, mu: float, log_var: float) -> None:
        super().__init__()
        self.params = nn.Parameter(torch.tensor([mu, log_var]))
        self.output: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        output = self.params.expand(x.shape[0], 2) * 1.0
        if output.requires_grad:
            output.retain_grad()
        self.output = output
        return output


class AffineDecoder(nn.Module):
    """z ↦ a z + b as a 1×1×1 image."""

    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, z: Tensor) -> Tensor:
        return (self.a * z + self.b).reshape(-1, 1, 1, 1)


def linear_gaussian_vae(
    mu: float = MU, log_var: float = LOG_VAR, a: float = A, b: float = B
) -> VAE:
    networks = EncoderDecoder(SharedGaussianEncoder(mu, log_var), AffineDecoder(a, b))
    return VAE(
        lambda **sizes: networks,
        latent_dim=1,
        input_shape=(1, 1, 1),
        posterior=DiagonalGaussianPosterior("log_var"),
        likelihood=GaussianLikelihood("fixed", scale=1.0),
    )


@dataclass
class GradientDraws:
    """Independent gradient estimates, one per copy of x: the encoder's (μ, log σ²) [N, 2]
    and the decoder's (a, b) summed over copies [2] (the decoder is shared)."""

    encoder: Tensor
    decoder_sum: Tensor


def gradient_draws(
    vae: VAE, objective: IWAE, num_copies: int, seed: int, x: float = X
) -> GradientDraws:
    """Set up (which may probe the model), then draw with ``seed``."""
    weighting = ConstantBeta(1.0)
    objective.setup(vae, weighting, {})
    vae.zero_grad()
    torch.manual_seed(seed)
    copies = torch.full((num_copies, 1, 1, 1), x)
    objective(vae, copies, None, weighting, 0).loss.sum().backward()
    decoder = torch.stack([vae.decoder.a.grad, vae.decoder.b.grad])
    return GradientDraws(encoder=vae.encoder.output.grad.clone(), decoder_sum=decoder)


@dataclass
class SNRRow:
    k: int
    estimator: str
    snr_mu: float
    snr_log_var: float
    mean_mu: float
    se_mu: float


def snr_table(
    ks: tuple[int, ...] = (1, 4, 16, 64, 256),
    estimators: tuple[str, ...] = ESTIMATORS,
    num_copies: int = 20_000,
    seed: int = 0,
    vae_options: dict | None = None,
) -> list[SNRRow]:
    """One row per (k, estimator): SNR of the encoder's two gradient components."""
    rows = []
    for k in ks:
        for estimator in estimators:
            draws = gradient_draws(
                linear_gaussian_vae(**(vae_options or {})), IWAE(k, estimator), num_copies, seed
            ).encoder
            snr = draws.mean(0).abs() / draws.std(0)
            rows.append(
                SNRRow(
                    k,
                    estimator,
                    snr_mu=snr[0].item(),
                    snr_log_var=snr[1].item(),
                    mean_mu=draws[:, 0].mean().item(),
                    se_mu=(draws[:, 0].std() / math.sqrt(num_copies)).item(),
                )
            )
    return rows


def print_table(rows: list[SNRRow]) -> None:
    print("| k | estimator | SNR ∂/∂μ | SNR ∂/∂log σ² | E[∂loss/∂μ] ± s.e. |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row.k} | {row.estimator} | {row.snr_mu:.3f} | {row.snr_log_var:.3f} | "
            f"{row.mean_mu:+.5f} ± {row.se_mu:.5f} |"
        )


def run_table(run_dir: Path, k: int, num_draws: int, batch_size: int) -> None:
    """Encoder/decoder SNR of IWAE_k's estimators at a trained run's checkpoint."""
    from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
    from vaelab.evaluation.encodings import prepare_batch
    from vaelab.evaluation.gradient_snr import gradient_snr

    location = locate_checkpoint(run_dir)
    device = torch.device("cpu")
    run = load_run(
        location,
        device,
        {"download": False, "num_workers": 0, "eval_batch_size": batch_size, "on_device": False},
    )
    x = prepare_batch(run.datamodule, next(iter(run.datamodule.test_dataloader())), device)[0]
    x = x[:batch_size].float()
    model = run.module.model.float().train()
    print(
        f"\n{location.run_dir.name} (step {run.global_step}): IWAE k = {k}, {batch_size} "
        f"test images, {num_draws} draws (a pure-noise component reads ≈ "
        f"{math.sqrt(2 / math.pi / num_draws):.3f})"
    )
    print("| estimator | encoder SNR | decoder SNR |")
    print("|---|---|---|")
    for estimator in ESTIMATORS:
        torch.manual_seed(0)
        snr = gradient_snr(model, IWAE(k, estimator), x, None, num_draws)
        print(f"| {estimator} | {snr.encoder:.4f} | {snr.decoder:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument("--copies", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", type=Path, nargs="*", default=[])
    parser.add_argument("--run-k", type=int, default=10)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"Linear-Gaussian model, x = {X}, q = N({MU}, e^{LOG_VAR}) (exact posterior N(0.75, 0.5)),"
        f" {args.copies} independent estimates per row"
    )
    print_table(snr_table(tuple(args.ks), num_copies=args.copies, seed=args.seed))
    for run_dir in args.run:
        run_table(run_dir, args.run_k, args.draws, args.batch)


if __name__ == "__main__":
    main()
