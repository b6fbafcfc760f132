"""vaelab.data.device_loader (``data.on_device=true``): index batches drawn on the device give
the DataLoader path's data."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.plugins.precision import Precision

from vaelab.data.device_loader import DeviceDataLoader, ShardedPermutation
from vaelab.data.image_datamodule import PIXEL_MAX
from vaelab.data.mnist import MNISTDataModule

BATCH = 64


def _visits(sampler: ShardedPermutation) -> torch.Tensor:
    """How often each example index was drawn in one epoch of ``sampler``."""
    counts = torch.zeros(sampler.num_examples, dtype=torch.long)
    for index in sampler:
        counts += torch.bincount(index, minlength=sampler.num_examples)
    return counts


@pytest.mark.parametrize("num_examples", [1000, 1003])
def test_one_process_visits_every_example_once_per_epoch(num_examples):
    sampler = ShardedPermutation(num_examples, BATCH, shuffle=True, seed=7)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        assert torch.equal(_visits(sampler), torch.ones(num_examples, dtype=torch.long))
        assert sum(1 for _ in sampler) == len(sampler) == -(-num_examples // BATCH)


def test_each_rank_visits_its_shard_once_and_the_shards_partition_the_split():
    num_examples, world = 1000, 2
    for epoch in range(2):
        shards = []
        for rank in range(world):
            sampler = ShardedPermutation(
                num_examples, BATCH, shuffle=True, seed=3, rank=rank, world_size=world
            )
            sampler.set_epoch(epoch)
            visits = _visits(sampler)
            assert visits.max() == 1  # nothing twice on one rank
            shards.append(visits.nonzero().flatten())
            assert len(shards[-1]) == num_examples // world
        assert not set(shards[0].tolist()) & set(shards[1].tolist())
        assert len(set(shards[0].tolist()) | set(shards[1].tolist())) == num_examples


def test_ranks_have_equal_batch_counts_when_the_split_does_not_divide():
    """DistributedSampler's rule: pad by wrapping around, so no rank waits for another."""
    num_examples, world = 1001, 2
    samplers = [ShardedPermutation(num_examples, BATCH, True, 0, r, world) for r in range(world)]
    lengths = {len(list(iter(s))) for s in samplers}
    assert lengths == {len(samplers[0])}
    total = sum(_visits(s) for s in samplers)
    assert total.min() == 1
    assert total.sum() == samplers[0].shard_size * world


def test_ranks_together_draw_the_one_process_global_batch():
    """Rank r's b-th batch ∪ over r = the b-th batch of one process with W × the batch size."""
    num_examples, world = 1000, 2
    single = list(ShardedPermutation(num_examples, world * BATCH, True, 5))
    per_rank = [
        list(ShardedPermutation(num_examples, BATCH, True, 5, r, world)) for r in range(world)
    ]
    for b, global_batch in enumerate(single):
        together = torch.cat([per_rank[r][b] for r in range(world)])
        assert torch.equal(together.sort().values, global_batch.sort().values)


def test_reshuffles_per_epoch_reproducibly():
    sampler = ShardedPermutation(500, BATCH, shuffle=True, seed=11)
    first = sampler.shard()
    sampler.set_epoch(1)
    second = sampler.shard()
    assert not torch.equal(first, second)
    again = ShardedPermutation(500, BATCH, shuffle=True, seed=11)
    again.set_epoch(1)
    assert torch.equal(again.shard(), second)
    assert torch.equal(ShardedPermutation(500, BATCH, shuffle=False).shard(), torch.arange(500))


@pytest.fixture(scope="module")
def mnist_splits(mnist_data_dir) -> dict:
    """MNIST's train/val/test splits, read from disk once for this module."""
    datamodule = MNISTDataModule(str(mnist_data_dir), val_size=1000, download=False)
    datamodule.setup()
    return datamodule.splits


def _datamodule(
    splits: dict, on_device: bool, binarize: str = "none", rank: int = 0, world_size: int = 1
) -> MNISTDataModule:
    """A datamodule over ``splits`` as rank ``rank`` of ``world_size`` on the CPU device."""
    datamodule = MNISTDataModule(
        "unused",
        batch_size=BATCH,
        val_size=1000,
        binarize=binarize,
        download=False,
        on_device=on_device,
        shuffle=False,
    )
    datamodule.splits = dict(splits)
    datamodule.trainer = SimpleNamespace(
        strategy=SimpleNamespace(root_device=torch.device("cpu")),
        global_rank=rank,
        world_size=world_size,
        precision_plugin=Precision(),
    )
    return datamodule


def _device_batches(datamodule, loader, limit: int) -> list[list[torch.Tensor]]:
    out = []
    for i, batch in enumerate(loader):
        if i == limit:
            break
        out.append(datamodule.on_after_batch_transfer(batch, 0))
    return out


def test_without_shuffling_the_batches_equal_the_dataloader_path(mnist_splits):
    device_dm = _datamodule(mnist_splits, on_device=True)
    loader_dm = _datamodule(mnist_splits, on_device=False)
    device_loader = device_dm.train_dataloader()
    assert isinstance(device_loader, DeviceDataLoader)
    assert len(device_loader) == len(loader_dm.train_dataloader())
    for (x_dev, y_dev), (x_ref, y_ref) in zip(
        _device_batches(device_dm, device_loader, 20),
        _device_batches(loader_dm, loader_dm.train_dataloader(), 20),
        strict=True,
    ):
        assert x_dev.dtype == torch.float32
        assert x_dev.max() <= 1.0
        assert torch.equal(x_dev, x_ref)
        assert torch.equal(y_dev, y_ref)
    # what the model sees is the same (the device split is stored scaled to [0, 1])
    assert torch.equal(
        _device_batches(device_dm, device_dm.val_dataloader(), 1)[0][0],
        _device_batches(loader_dm, loader_dm.val_dataloader(), 1)[0][0],
    )


def test_each_rank_of_the_datamodule_sees_its_shard_once(mnist_splits):
    seen = []
    for rank in range(2):
        datamodule = _datamodule(mnist_splits, on_device=True, rank=rank, world_size=2)
        labels_index = torch.cat(list(datamodule.train_dataloader().sampler))
        assert len(labels_index) == len(set(labels_index.tolist()))
        seen.append(set(labels_index.tolist()))
    assert not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == len(datamodule.splits["train"])


def test_dynamic_binarization_pixel_means_match_the_grey_levels(mnist_splits):
    """E[Bernoulli(p)] = p: the binarized batch mean matches the grey-level mean of the same
    images within 5 standard errors, on both paths; the bits differ between draws."""
    for on_device in (True, False):
        datamodule = _datamodule(mnist_splits, on_device=on_device, binarize="dynamic")
        loader = datamodule.train_dataloader()
        grey = datamodule.splits["train"].images[: 10 * BATCH].float() / PIXEL_MAX
        batches = _device_batches(datamodule, loader, 10)
        bits = torch.cat([x for x, _ in batches])
        assert set(bits.unique().tolist()) == {0.0, 1.0}
        standard_error = torch.sqrt((grey * (1 - grey)).sum()) / grey.numel()
        assert abs(bits.mean() - grey.mean()) < 5 * standard_error
        again = torch.cat([x for x, _ in _device_batches(datamodule, loader, 10)])
        assert not torch.equal(again, bits)


def test_training_without_shuffling_gives_the_dataloader_paths_elbo(make_config, mnist_data_dir):
    """Same seed, same batches, same random stream: N steps on either path give the same
    validation ELBO."""
    from vaelab.train import train

    results = {}
    for on_device in (False, True):
        cfg = make_config(
            f"data.on_device={str(on_device).lower()}",
            "data.shuffle=false",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=15",
            "trainer.limit_val_batches=2",
            "test=false",
            "callbacks=none",
            "logger=csv",
            "data.val_size=2000",
            data_dir=mnist_data_dir,
            name=f"on_device_{on_device}",
        )
        results[on_device] = train(cfg)
    assert results[True]["val/elbo"] == pytest.approx(results[False]["val/elbo"], abs=1e-4)
    assert results[True]["train/loss"] == pytest.approx(results[False]["train/loss"], abs=1e-4)


@pytest.mark.slow
def test_compiled_networks_train_like_eager_ones(make_config, mnist_data_dir):
    """``module.compile=true`` (the training loss compiled whole): the same ELBO up to fusion
    rounding, and the same checkpoint keys as an eager run. Slow: compiling takes minutes."""
    from vaelab.train import train

    results, keys = {}, {}
    for compiled in (False, True):
        cfg = make_config(
            f"module.compile={str(compiled).lower()}",
            "data.on_device=true",
            "data.shuffle=false",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=5",
            "trainer.limit_val_batches=1",
            "test=false",
            "logger=csv",
            "callbacks.image_logger=null",
            data_dir=mnist_data_dir,
            name=f"compiled_{compiled}",
        )
        results[compiled] = train(cfg)
        checkpoint = torch.load(
            next((Path(cfg.paths.output_dir) / "checkpoints").glob("last.ckpt")), weights_only=True
        )
        keys[compiled] = sorted(checkpoint["state_dict"])
    assert results[True]["val/elbo"] == pytest.approx(results[False]["val/elbo"], abs=1e-2)
    assert keys[True] == keys[False]
