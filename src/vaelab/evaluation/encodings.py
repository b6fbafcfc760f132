"""Posterior encodings E_q[z|x] and their marginal σ for a data split (seed 003, seed 004)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.distributions import Distribution

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel

SPLITS = ("train", "val", "test")


@dataclass
class Encodings:
    """``mean`` and ``stddev`` [N, D] of q(z|x) (stddev: marginal σ of each dimension) and the
    class ``labels`` [N] (−1 when unlabelled); rows are the split's first N examples."""

    mean: Tensor
    stddev: Tensor
    labels: Tensor
    split: str = "test"
    epoch: int = 0
    global_step: int = 0

    def __len__(self) -> int:
        return len(self.mean)

    def save(self, path: str | Path) -> None:
        """Tensors and plain values only, so :func:`load_encodings` can use weights_only=True."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "mean": self.mean.cpu(),
                "stddev": self.stddev.cpu(),
                "labels": self.labels.cpu(),
                "split": self.split,
                "epoch": int(self.epoch),
                "global_step": int(self.global_step),
            },
            path,
        )


def load_encodings(path: str | Path) -> Encodings:
    """Read a file written by :meth:`Encodings.save` (never executes code from the file)."""
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        return Encodings(
            mean=stored["mean"],
            stddev=stored["stddev"],
            labels=stored["labels"],
            split=str(stored["split"]),
            epoch=int(stored["epoch"]),
            global_step=int(stored["global_step"]),
        )
    except (OSError, RuntimeError, KeyError, TypeError, ValueError) as err:
        raise VaelabError(
            f"cannot read the encodings snapshot {path} ({err}); delete it, or "
            "re-run training with callbacks.encoding_snapshot enabled"
        ) from err


def marginal_stddev(q: Distribution) -> Tensor:
    """σ of each latent dimension under q (the diagonal of a full covariance)."""
    return q.variance.clamp_min(0).sqrt()


def split_loader(datamodule, split: str):
    """The datamodule's loader for ``split`` (train/val/test)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return getattr(datamodule, f"{split}_dataloader")()


def prepare_batch(datamodule, batch, device: torch.device) -> tuple[Tensor, Tensor]:
    """Move a (images, labels) batch to ``device`` and apply the datamodule's
    ``on_after_batch_transfer`` (scaling to [0, 1], binarization), as the Trainer does."""
    images, labels = batch[0], batch[1] if len(batch) > 1 else None
    if labels is None:
        labels = torch.full((len(images),), -1, dtype=torch.long)
    moved = [images.to(device), labels.to(device)]
    hook = getattr(datamodule, "on_after_batch_transfer", None)
    if hook is not None:
        moved = hook(moved, 0)
    return moved[0], moved[1]


@torch.no_grad()
def encode_split(
    model: LatentVariableModel, datamodule, split: str, max_points: int, device: torch.device
) -> Encodings:
    """q(z|x) of the first ``max_points`` examples of ``split`` (loader order, unshuffled)."""
    means, stddevs, labels = [], [], []
    collected = 0
    for batch in split_loader(datamodule, split):
        if collected >= max_points:
            break
        x, y = prepare_batch(datamodule, batch, device)
        take = min(len(x), max_points - collected)
        q = model.latent_codes(x[:take], y[:take])
        means.append(q.mean.float().cpu())
        stddevs.append(marginal_stddev(q).float().cpu())
        labels.append(y[:take].cpu())
        collected += take
    if not means:
        raise VaelabError(f"the {split} split is empty; nothing to encode")
    return Encodings(
        mean=torch.cat(means), stddev=torch.cat(stddevs), labels=torch.cat(labels), split=split
    )
