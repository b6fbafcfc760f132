"""vaelab.data.tensor_batches: the DataLoader path's batched fetch gives exactly the batches of
per-example fetching."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from vaelab.data.tensor_batches import TensorBatchDataset, keep_batch


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (203, 1, 7, 5), dtype=torch.uint8, generator=generator)
    return images, torch.arange(203)


def _assert_same_batches(batched: DataLoader, classic: DataLoader) -> None:
    pairs = list(zip(batched, classic, strict=True))
    assert len(pairs) == len(classic)
    for (images, labels), (ref_images, ref_labels) in pairs:
        assert images.dtype == ref_images.dtype
        assert labels.dtype == ref_labels.dtype
        assert torch.equal(images, ref_images)
        assert torch.equal(labels, ref_labels)


def test_shuffled_batches_match_per_example_fetching():
    images, labels = _data()
    batched = DataLoader(
        TensorBatchDataset(images, labels),
        batch_size=32,
        shuffle=True,
        collate_fn=keep_batch,
        generator=torch.Generator().manual_seed(3),
    )
    classic = DataLoader(
        TensorDataset(images, labels),
        batch_size=32,
        shuffle=True,
        generator=torch.Generator().manual_seed(3),
    )
    _assert_same_batches(batched, classic)
    assert not torch.equal(next(iter(batched))[1], torch.arange(32))  # it did shuffle


def test_distributed_shards_match_per_example_fetching():
    images, labels = _data()
    for rank in range(2):
        batched = DataLoader(
            TensorBatchDataset(images, labels),
            batch_size=16,
            collate_fn=keep_batch,
            sampler=DistributedSampler(range(203), 2, rank, seed=5),
        )
        classic = DataLoader(
            TensorDataset(images, labels),
            batch_size=16,
            sampler=DistributedSampler(range(203), 2, rank, seed=5),
        )
        _assert_same_batches(batched, classic)


def test_batches_come_whole_through_worker_processes():
    images, labels = _data()
    batched = DataLoader(
        TensorBatchDataset(images, labels), batch_size=50, collate_fn=keep_batch, num_workers=1
    )
    sizes = [len(x) for x, _ in batched]
    assert sizes == [50, 50, 50, 50, 3]
    assert torch.equal(torch.cat([y for _, y in batched]), labels)
