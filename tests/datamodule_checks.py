"""Checks shared by the datamodules' tests: the multiset of frames of a split, and a batch as the
model gets it."""

from __future__ import annotations

import hashlib
from collections import Counter

import torch


def frame_counts(images: torch.Tensor) -> Counter:
    """Multiset of frames (by content), to compare splits without indices."""
    return Counter(hashlib.sha1(frame.numpy().tobytes()).hexdigest() for frame in images)


def batch_on_device(datamodule, split: str) -> list[torch.Tensor]:
    batch = next(iter(getattr(datamodule, f"{split}_dataloader")()))
    return datamodule.on_after_batch_transfer(list(batch), 0)
