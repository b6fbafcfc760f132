"""Batches drawn from a split that lives on the training device (``data.on_device=true``).

For datasets that fit in accelerator memory the whole split is one uint8 tensor on the
device; a batch is an index gather there. No per-item Python, no worker processes and no
host-to-device copy per step (one index permutation per epoch is the only transfer).
Scaling to [0, 1] and dynamic binarization then run on the device in the datamodule's
``on_after_batch_transfer``, exactly as for the DataLoader path.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from vaelab.schema import PositiveInt, checked_arguments


@checked_arguments("data")
class ShardedPermutation:
    """Index batches over ``num_examples`` items for one rank of ``world_size``.

    The epoch's order is ``randperm(num_examples)`` from a generator seeded with
    ``seed + epoch`` (identical on every rank, as in ``DistributedSampler``), or ``0..N−1``
    without shuffling. It is padded by wrapping around to a multiple of ``world_size`` and
    rank r takes positions r, r + W, r + 2W, … — so the ranks' shards are disjoint, cover the
    split, and the b-th batches of all ranks together are the b-th batch of batch size
    ``W · batch_size`` on one process. ``set_epoch`` is called by Lightning's fit loop.
    """

    def __init__(
        self,
        num_examples: int,
        batch_size: PositiveInt,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        if num_examples < 1:
            raise ValueError(f"cannot draw batches from an empty split ({num_examples} examples)")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1} (world size)")
        self.num_examples = int(num_examples)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.device = torch.device(device)
        self.epoch = 0

    @property
    def shard_size(self) -> int:
        """Examples this rank sees per epoch (the padded split divided by the world size)."""
        return math.ceil(self.num_examples / self.world_size)

    def __len__(self) -> int:
        return math.ceil(self.shard_size / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def shard(self) -> Tensor:
        """This rank's indices for the current epoch, in visiting order, on the device."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_examples, generator=generator)
        else:
            order = torch.arange(self.num_examples)
        padding = self.shard_size * self.world_size - self.num_examples
        if padding:
            order = torch.cat([order, order[:padding]])
        return order[self.rank :: self.world_size].to(self.device)

    def __iter__(self) -> Iterator[Tensor]:
        return iter(self.shard().split(self.batch_size))


class DeviceDataLoader:
    """Yields ``[images[idx], labels[idx]]`` for each index batch of ``sampler``; both tensors
    stay on their device (uint8 images, as the DataLoader path delivers them)."""

    def __init__(self, images: Tensor, labels: Tensor, sampler: ShardedPermutation) -> None:
        if len(images) != len(labels) or len(images) != sampler.num_examples:
            raise ValueError(
                f"{len(images)} images, {len(labels)} labels and a sampler over "
                f"{sampler.num_examples} examples do not match"
            )
        self.images = images
        self.labels = labels
        self.sampler = sampler  # Lightning calls sampler.set_epoch(epoch) at each epoch start
        self.batch_sampler = None  # read by Lightning's DataLoader checks: batches come whole
        self.batch_size = sampler.batch_size

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[Tensor]]:
        # a DataLoader's iterator draws one int64 from the global CPU RNG (its workers' base
        # seed); drawing it here too keeps a seeded run's random stream (ε of the
        # reparameterisation, dynamic binarization) identical whichever path feeds it
        torch.empty((), dtype=torch.int64).random_()
        for index in self.sampler:
            # index_select, not images[index]: advanced indexing of uint8 is ~20x slower
            yield [self.images.index_select(0, index), self.labels.index_select(0, index)]
