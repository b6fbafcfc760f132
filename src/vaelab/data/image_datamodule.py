"""Shared machinery of the image datamodules: in-memory uint8 tensors, splits, binarization."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from typing_extensions import override

from vaelab.data.device_loader import DeviceDataLoader, ShardedPermutation
from vaelab.data.tensor_batches import TensorBatchDataset, keep_batch
from vaelab.errors import VaelabError
from vaelab.schema import NonNegativeInt, PositiveInt, Seed, SplitSize, checked_arguments

Binarize = Literal["none", "dynamic", "static"]
PIXEL_MAX = 255
FLOAT32_BYTES = 4
#: ``data.on_device=true`` keeps a split as float32 in [0, 1] up to this size (MNIST's
#: training split is 172 MB), else as uint8 scaled batch by batch
ON_DEVICE_FLOAT_MAX_BYTES = 2**30


@dataclass
class ImageSplit:
    """Images as uint8 [N, C, H, W] in 0..255 and integer labels [N] (−1 if unlabelled)."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.images)


@checked_arguments("data")
class ImageDataModule(L.LightningDataModule):
    """Holds each split as one uint8 tensor in memory; batches are scaled to [0, 1] (and
    binarized) after they reach the device, in :meth:`on_after_batch_transfer`.

    ``binarize``: ``none`` keeps grey levels; ``dynamic`` draws x ~ Bernoulli(grey level)
    every time a batch is drawn; ``static`` draws one fixed, seeded sample per split
    (the two protocols of the literature, e.g. Burda et al. 2015 use dynamic).

    ``batch_size`` is per device: a DDP run's global batch is ``batch_size × devices ×
    num_nodes``. ``on_device`` keeps each split on the training device and draws index
    batches there (:mod:`vaelab.data.device_loader`); ``shuffle`` reorders the training
    split every epoch (false: fixed order, for exact comparisons).
    """

    #: (C, H, W) of the stored images; subclasses set it
    image_shape: tuple[int, int, int]
    num_classes: int | None = None

    def __init__(
        self,
        data_dir: str,
        batch_size: PositiveInt = 100,
        val_size: SplitSize = 5000,
        binarize: Binarize = "none",
        num_workers: NonNegativeInt = 0,
        pin_memory: bool = False,
        split_seed: Seed = 0,
        download: bool = True,
        eval_batch_size: PositiveInt | None = None,
        on_device: bool = False,
        shuffle: bool = True,
    ) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.val_size = val_size
        self.binarize = binarize
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.split_seed = int(split_seed)
        self.download = bool(download)
        self.on_device = bool(on_device)
        self.shuffle = bool(shuffle)
        self.splits: dict[str, ImageSplit] = {}
        self._device_splits: dict[str, ImageSplit] = {}

    # -- what a subclass provides -------------------------------------------------------
    def load_train(self) -> ImageSplit:
        """The pool that train and val are split from."""
        raise NotImplementedError

    def load_test(self) -> ImageSplit | None:
        """The official test split, or None to use the validation split as test."""
        raise NotImplementedError

    def transform_images(self, images: Tensor) -> Tensor:
        """A fixed uint8 → uint8 transform applied once at setup (e.g. padding)."""
        return images

    # -- shapes ---------------------------------------------------------------------------
    @property
    def dims(self) -> tuple[int, int, int]:
        """(C, H, W) of the batches the model sees."""
        probe = torch.zeros(1, *self.image_shape, dtype=torch.uint8)
        return tuple(self.transform_images(probe).shape[1:])

    def data_info(self) -> dict[str, Any]:
        """What models and objectives may need from the data, after :meth:`setup`: the input
        shape, the number of classes (None: unlabelled) and the split sizes (β-TCVAE's
        estimators need the training-set size)."""
        info: dict[str, Any] = {"input_shape": self.dims, "num_classes": self.num_classes}
        for name, split in self.splits.items():
            info[f"num_{name}"] = len(split)
        return info

    # -- setup ----------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Download (rank 0 only) by loading once; loading checks the files."""
        self.load_train()
        self.load_test()

    @override
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        pool = self._checked(self.load_train(), "train")
        num_val = self._num_val(len(pool))
        if num_val >= len(pool):
            raise VaelabError(
                f"data.val_size={self.val_size} leaves no training data "
                f"({len(pool)} examples); use a smaller data.val_size"
            )
        order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = order[:num_val], order[num_val:]
        self.splits["train"] = ImageSplit(pool.images[train_idx], pool.labels[train_idx])
        self.splits["val"] = ImageSplit(pool.images[val_idx], pool.labels[val_idx])
        test = self.load_test()
        self.splits["test"] = (
            self._checked(test, "test") if test is not None else self.splits["val"]
        )
        for name, split in self.splits.items():
            split.images = self.transform_images(split.images)
            if self.binarize == "static":
                split.images = self._static_binarization(split.images, name)
        if self.batch_size > len(self.splits["train"]):
            raise VaelabError(
                f"data.batch_size={self.batch_size} is larger than the training "
                f"split ({len(self.splits['train'])} examples); lower it"
            )

    def _num_val(self, pool_size: int) -> int:
        if isinstance(self.val_size, float):
            return max(1, round(self.val_size * pool_size))
        return int(self.val_size)

    @staticmethod
    def _checked(split: ImageSplit, name: str) -> ImageSplit:
        if split.images.dtype != torch.uint8:
            images = split.images.float()
            if not torch.isfinite(images).all():
                raise VaelabError(
                    f"the {name} images contain NaN or Inf values; clean the "
                    "data files (pixels must be finite grey levels)"
                )
        return split

    def _static_binarization(self, images: Tensor, split_name: str) -> Tensor:
        """One fixed Bernoulli sample per split, seeded so every run sees the same bits."""
        offset = {"train": 1, "val": 2, "test": 3}[split_name]
        generator = torch.Generator().manual_seed(self.split_seed * 1000 + offset)
        probs = images.float() / PIXEL_MAX
        return (torch.bernoulli(probs, generator=generator) * PIXEL_MAX).to(torch.uint8)

    # -- loaders ----------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool) -> DataLoader | DeviceDataLoader:
        data = self.splits[split]
        batch_size = self.batch_size if split == "train" else self.eval_batch_size
        if self.on_device:
            return self._device_loader(split, batch_size, shuffle)
        # one gather per batch instead of one index per example (same values, same order)
        return DataLoader(
            TensorBatchDataset(data.images, data.labels),
            batch_size=batch_size,
            shuffle=shuffle,
            collate_fn=keep_batch,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    @property
    def _device_splits_scaled(self) -> bool:
        """Whether ``data.on_device=true`` keeps the splits as float32 in [0, 1] (all of them
        or none: the batches of every split then skip the per-batch division)."""
        largest = max((split.images.numel() for split in self.splits.values()), default=0)
        return largest * FLOAT32_BYTES <= ON_DEVICE_FLOAT_MAX_BYTES

    def _device_loader(self, split: str, batch_size: int, shuffle: bool) -> DeviceDataLoader:
        """``data.on_device=true``: the split is copied to the training device once; each rank
        of a DDP run draws its own shard, reshuffled per epoch with seed ``PL_GLOBAL_SEED`` +
        epoch (set by the run's ``seed``), like Lightning's DistributedSampler."""
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        data = self._device_splits.get(split)
        if data is None or data.images.device != device:
            host = self.splits[split]
            # scaled to [0, 1] once here (the same division on_after_batch_transfer makes per
            # batch, so the same values) unless the float copy would be large
            images = host.images.to(device)
            if self._device_splits_scaled:
                images = torch.div(images, PIXEL_MAX)
            data = ImageSplit(images, host.labels.to(device))
            self._device_splits[split] = data
        sampler = ShardedPermutation(
            len(data),
            batch_size,
            shuffle,
            seed=int(os.environ.get("PL_GLOBAL_SEED", 0)),
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
            device=device,
        )
        return DeviceDataLoader(data.images, data.labels, sampler)

    def train_dataloader(self) -> DataLoader | DeviceDataLoader:
        return self._loader("train", shuffle=self.shuffle)

    def val_dataloader(self) -> DataLoader | DeviceDataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader | DeviceDataLoader:
        return self._loader("test", shuffle=False)

    @override
    def on_after_batch_transfer(self, batch: list[Tensor], dataloader_idx: int) -> list[Tensor]:
        """uint8 → float in [0, 1] on the device; dynamic binarization draws fresh bits.
        The precision plugin then casts it as Lightning casts float batches (bfloat16 under
        trainer.precision=bf16-true; unchanged otherwise): the uint8 batch passed its cast."""
        images, labels = batch
        # one pass: true division of uint8 gives float32; on-device splits come scaled
        scaled = self.on_device and self._device_splits_scaled
        x = images if scaled else torch.div(images, PIXEL_MAX)
        if self.binarize == "dynamic":
            x = torch.bernoulli(x)
        if self.trainer is not None:
            x = self.trainer.precision_plugin.convert_input(x)
        return [x, labels]
