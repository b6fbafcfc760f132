"""Reconstructions and prior samples of several trained runs side by side in one picture
(docs/experiments.md, "Zoo II (c): reconstruction losses and SWAE — MNIST").

The top row holds the first ``--num`` test images; below it each run has one row: its
reconstructions E[x | z = E_q z] of those images, then ``--num`` decoder means E[x|z] of
z ~ p(z) drawn with one seeded generator (the same z draws for every run with the same prior).
Each run is ``LABEL=RUN`` (a run dir or .ckpt); the rows are labelled on the left. Grids are
torchvision's make_grid; nothing is trained or downloaded.

  python scripts/recon_losses_figure.py bernoulli=RUN ms_ssim=RUN ... \\
      --output docs/figures/recon_losses_mnist.png

The runs of docs/experiments.md come from ``vaelab-train model=mlp model.latent_dim=10
trainer.max_epochs=5`` (MLP [400, 200], batch 100, Adam 1e-3, seed 42) with ``likelihood=``
bernoulli, ms_ssim, log_cosh or perceptual, or ``objective=swae``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
from vaelab.evaluation.encodings import prepare_batch

#: pixels between the reconstructions and the samples of a row, and for the row labels
GAP, LABEL_WIDTH = 12, 96


def labelled_run(text: str) -> tuple[str, Path]:
    label, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"{text!r}: give LABEL=RUN (a run dir or .ckpt)")
    return label, Path(path)


@torch.no_grad()
def run_row(run_path: Path, num: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's test inputs, and its reconstructions beside its samples, as one image row."""
    device = torch.device("cpu")
    run = load_run(
        locate_checkpoint(run_path),
        device,
        data_overrides={"download": False, "num_workers": 0, "on_device": False},
    )
    model = run.module.model
    x, y = prepare_batch(run.datamodule, next(iter(run.datamodule.test_dataloader())), device)
    x, y = x[:num], None if y is None else y[:num]
    reconstructions = model.reconstruct(x, y if model.conditions_on else None).clamp(0, 1)
    generator = torch.Generator().manual_seed(seed)
    labels = model.labels_for_samples(num, generator)
    samples = model.sample(num, labels, generator=generator).clamp(0, 1)
    return x, torch.cat([reconstructions, samples])


def row_image(images: torch.Tensor, num: int) -> torch.Tensor:
    """Two grids of ``num`` images (reconstructions | samples) with a gap: [3, H, W]."""
    left = make_grid(images[:num], nrow=num, padding=2, pad_value=1.0)
    if len(images) == num:
        right = torch.ones_like(left)
    else:
        right = make_grid(images[num:], nrow=num, padding=2, pad_value=1.0)
    gap = torch.ones(left.shape[0], left.shape[1], GAP)
    return torch.cat([left, gap, right], dim=2)


def figure(rows: list[tuple[str, torch.Tensor]], num: int) -> Image.Image:
    """The rows stacked, each labelled on its left, the columns titled above."""
    grids = [row_image(images, num) for _, images in rows]
    height, width = grids[0].shape[1], grids[0].shape[2]
    title = 16
    canvas = Image.new("RGB", (LABEL_WIDTH + width, title + height * len(grids)), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((LABEL_WIDTH + 4, 2), "reconstructions of the test images", fill="black")
    draw.text((LABEL_WIDTH + (width + GAP) // 2 + 4, 2), "samples of p(z)", fill="black")
    for index, ((label, _), grid) in enumerate(zip(rows, grids, strict=True)):
        pixels = (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        top = title + index * height
        canvas.paste(Image.fromarray(pixels), (LABEL_WIDTH, top))
        draw.text((4, top + height // 2 - 6), label, fill="black")
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=labelled_run, help="LABEL=RUN (dir or .ckpt)")
    parser.add_argument("--output", type=Path, default=Path("docs/figures/recon_losses_mnist.png"))
    parser.add_argument("--num", type=int, default=10, help="images per half-row")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prior draws")
    args = parser.parse_args()
    rows: list[tuple[str, torch.Tensor]] = []
    for label, path in args.runs:
        inputs, images = run_row(path, args.num, args.seed)
        if not rows:
            rows.append(("test images", inputs))
        rows.append((label, images))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure(rows, args.num).save(args.output)
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
