"""dSprites (Matthey et al. 2017) and Locatello et al.'s (2019, §5.1) procedural variants, as
factor data sets: batches are (x, factors) and the modules implement
:class:`~vaelab.data.ground_truth.GroundTruthData` for the disentanglement metrics.

``source=generated`` holds no images: the splits are seeded permutations of the 737,280
grid positions, a batch of positions becomes factor indices by index arithmetic, and the
images are drawn after the batch reached the training device
(:func:`~vaelab.data.sprites.render_sprites`). These pictures are dSprites-*like* (the grid,
its order and the factor values are the original's; outlines and sizes are not pixel-identical).
``source=original`` reads DeepMind's ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` from
the data dir, streamed into bit-packed rows (368 MiB, not 2.9 GB); ``auto`` takes the original
when the file is there.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from typing_extensions import override

from vaelab.data.device_loader import ShardedPermutation
from vaelab.data.pairs import ChangedFactors, check_changed_factors, sample_pairs
from vaelab.data.sprites import (
    DSPRITES_FACTOR_NAMES,
    DSPRITES_FACTOR_SIZES,
    DSPRITES_SHAPES,
    DSPRITES_SIDE,
    ravel,
    render_sprites,
    sprite_parameters,
    unravel,
)
from vaelab.data.tensor_batches import keep_batch
from vaelab.errors import VaelabError
from vaelab.schema import NonNegativeInt, PositiveInt, Seed, SplitSize, checked_arguments

Source = Literal["auto", "generated", "original"]

ORIGINAL_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
ORIGINAL_URL = "https://github.com/deepmind/dsprites-dataset"
#: the original's latents_classes columns: colour (one value), then the five factors
ORIGINAL_CLASS_COLUMNS = 6
#: rows of the original's image array decompressed at a time while packing it to bits
READ_CHUNK_ROWS = 16_384
BITS_PER_BYTE = 8
#: offset added to ``split_seed`` for the test permutation (as in PooledDataModule)
SPLIT_SEED_OFFSET = 7919
#: Locatello et al.'s colour-dSprites: each channel of the sprite's colour ~ U(0.5, 1)
COLOUR_RANGE = (0.5, 1.0)
RGB = 3
#: NumPy's public readers of an .npy header, by format version
NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def unpack_rows(packed: Tensor, width: int) -> Tensor:
    """Bit-packed rows [B, H, ⌈W/8⌉] (NumPy's big-endian ``packbits``) → float 0/1 [B, 1, H, W]."""
    shifts = torch.arange(BITS_PER_BYTE - 1, -1, -1, device=packed.device, dtype=torch.uint8)
    bits = (packed.unsqueeze(-1) >> shifts) & 1
    return bits.flatten(-2)[..., :width].unsqueeze(1).to(torch.float32)


class GridBatches(Dataset):
    """Batches of grid positions as ``[source, factors]``: ``source`` is the bit-packed
    images of those positions when the data set holds images, else the factors again (the
    images are then drawn from them after the transfer)."""

    def __init__(self, positions: Tensor, factor_sizes: Sequence[int], packed: Tensor | None):
        self.positions = positions
        self.factor_sizes = tuple(factor_sizes)
        self.packed = packed

    def __len__(self) -> int:
        return len(self.positions)

    def __getitems__(self, indices: list[int] | Tensor) -> list[Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long, device=self.positions.device)
        positions = self.positions.index_select(0, index)
        factors = unravel(positions, self.factor_sizes)
        source = factors if self.packed is None else self.packed.index_select(0, positions)
        return [source, factors]


class DeviceGridLoader:
    """``data.on_device=true``: positions (and packed images) live on the training device and
    each index batch of ``sampler`` is gathered there (as :class:`DeviceDataLoader`)."""

    def __init__(self, batches: GridBatches, sampler: ShardedPermutation) -> None:
        self.batches = batches
        self.sampler = sampler
        self.batch_sampler = None
        self.batch_size = sampler.batch_size

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[Tensor]]:
        torch.empty((), dtype=torch.int64).random_()  # as a DataLoader draws its base seed
        for index in self.sampler:
            yield self.batches.__getitems__(index)


@checked_arguments("data")
class DSpritesDataModule(L.LightningDataModule):
    """dSprites: 737,280 binary 64×64 sprites, factors shape × scale × orientation × x × y.

    Splits: a seeded permutation of the grid holds out ``test_size`` then ``val_size``
    positions (counts or fractions); training takes the rest. ``num_classes`` is None: the
    factors are not class labels (the metrics read them through :class:`GroundTruthData`).
    ``data_dir`` is searched for the original file (``<data_dir>/<file>`` or
    ``<data_dir>/dsprites/<file>``); ``download`` is accepted like every datamodule's but
    nothing is downloaded (fetch the file from the dSprites repository yourself).
    """

    factor_sizes: tuple[int, ...] = DSPRITES_FACTOR_SIZES
    factor_names: tuple[str, ...] = DSPRITES_FACTOR_NAMES
    side: int = DSPRITES_SIDE
    channels: int = 1
    num_classes: int | None = None
    #: names of the first factor's values: latent plots colour factor data by it
    class_names: tuple[str, ...] = DSPRITES_SHAPES
    #: one image per factor vector (the colour and noisy variants draw per image)
    deterministic_observations: bool = True

    def __init__(
        self,
        data_dir: str,
        batch_size: PositiveInt = 64,
        eval_batch_size: PositiveInt | None = None,
        val_size: SplitSize = 5000,
        test_size: SplitSize = 5000,
        split_seed: Seed = 0,
        source: Source = "auto",
        num_workers: NonNegativeInt = 0,
        pin_memory: bool = False,
        on_device: bool = False,
        shuffle: bool = True,
        download: bool = False,
        changed_factors: ChangedFactors | None = None,
    ) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.val_size = val_size
        self.test_size = test_size
        self.split_seed = int(split_seed)
        self.source = source
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.on_device = bool(on_device)
        self.shuffle = bool(shuffle)
        self.download = bool(download)
        if changed_factors is not None:
            check_changed_factors(changed_factors, self.factor_sizes)
        #: batches of pairs sharing all but this many factors (data/pairs.py); None: single views
        self.pairs = changed_factors
        self.splits: dict[str, Tensor] = {}
        self.packed: Tensor | None = None
        self._device_batches: dict[str, GridBatches] = {}

    # -- sizes ------------------------------------------------------------------------------
    @property
    def num_examples(self) -> int:
        return int(np.prod(self.factor_sizes))

    @property
    def dims(self) -> tuple[int, int, int]:
        return (self.channels, self.side, self.side)

    def data_info(self) -> dict[str, Any]:
        """Input shape, ``num_classes`` (None), split sizes, and the factor grid."""
        info: dict[str, Any] = {"input_shape": self.dims, "num_classes": self.num_classes}
        for name, positions in self.splits.items():
            info[f"num_{name}"] = len(positions)
        info["factor_sizes"] = list(self.factor_sizes)
        info["factor_names"] = list(self.factor_names)
        info["source"] = "generated" if self.packed is None else "original"
        info["pairs"] = self.pairs
        return info

    # -- the original file ------------------------------------------------------------------
    def original_path(self) -> Path | None:
        """The original release's file in the data dir, or None."""
        for folder in (Path(self.data_dir), Path(self.data_dir) / "dsprites"):
            if (folder / ORIGINAL_FILE).is_file():
                return folder / ORIGINAL_FILE
        return None

    def _read_original(self, path: Path) -> Tensor:
        """The file's images as bit-packed rows [N, side, side / 8], after checking that its
        ``latents_classes`` enumerate the grid in order."""

        def bad(problem: str) -> VaelabError:
            return VaelabError(
                f"{path} is not the dSprites release ({problem}); replace it with "
                f"{ORIGINAL_FILE} from {ORIGINAL_URL}, or ignore it with data.source=generated"
            )

        try:
            archive = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as err:
            raise bad(f"cannot be opened as an .npz archive: {err}") from err
        with archive:
            members = set(archive.namelist())
            if not {"imgs.npy", "latents_classes.npy"} <= members:
                raise bad(f"it holds {sorted(members)}, not imgs and latents_classes")
            try:
                with archive.open("latents_classes.npy") as stream:
                    classes = np.lib.format.read_array(stream, allow_pickle=False)
                with archive.open("imgs.npy") as stream:
                    return self._packed_images(stream, classes, bad)
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
                raise bad(f"unreadable: {err}") from err

    def _packed_images(self, stream, classes: np.ndarray, bad) -> Tensor:
        grid = (self.num_examples, ORIGINAL_CLASS_COLUMNS)
        if classes.shape != grid:
            raise bad(f"latents_classes has shape {classes.shape}, expected {grid}")
        order = ravel(torch.from_numpy(classes[:, 1:].astype(np.int64)), self.factor_sizes)
        if not torch.equal(order, torch.arange(self.num_examples)):
            raise bad("its latents_classes are not the grid in order, y fastest")
        version = np.lib.format.read_magic(stream)
        if version not in NPY_HEADER_READERS:
            raise bad(f"imgs is in .npy format version {version}, not 1.0 or 2.0")
        shape, fortran_order, dtype = NPY_HEADER_READERS[version](stream)
        expected = (self.num_examples, self.side, self.side)
        if shape != expected or dtype != np.uint8 or fortran_order:
            raise bad(f"imgs is {dtype} {shape}, expected uint8 {expected} in C order")
        row_bytes = self.side * self.side
        chunks = []
        for start in range(0, self.num_examples, READ_CHUNK_ROWS):
            rows = min(READ_CHUNK_ROWS, self.num_examples - start)
            raw = stream.read(rows * row_bytes)
            if len(raw) != rows * row_bytes:
                raise bad("imgs is truncated")
            images = np.frombuffer(raw, dtype=np.uint8).reshape(rows, self.side, self.side)
            if images.max() > 1:
                raise bad("imgs holds values other than 0 and 1")
            chunks.append(np.packbits(images, axis=-1))
        return torch.from_numpy(np.concatenate(chunks))

    # -- setup ------------------------------------------------------------------------------
    def _count(self, size: int | float) -> int:
        """A split's size in images (a fraction: of the whole grid, at least one)."""
        return max(1, round(size * self.num_examples)) if isinstance(size, float) else int(size)

    @override
    def prepare_data(self) -> None:
        """Nothing to fetch: the generated set needs no file, the original is read in setup."""

    @override
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        path = self.original_path()
        if self.source == "original" and path is None:
            raise VaelabError(
                f"data.source=original but {ORIGINAL_FILE} is not in {self.data_dir} (nor in "
                f"its dsprites/ folder); download it from {ORIGINAL_URL}, or use "
                "data.source=generated (dSprites-like pictures drawn from the factors)"
            )
        if self.source != "generated" and path is not None:
            self.packed = self._read_original(path)
        num_test, num_val = (
            self._count(self.test_size),
            self._count(self.val_size),
        )
        if num_test + num_val >= self.num_examples:
            raise VaelabError(
                f"data.val_size={self.val_size} and data.test_size={self.test_size} leave no "
                f"training data ({self.num_examples} images); make them smaller"
            )
        generator = torch.Generator().manual_seed(self.split_seed + SPLIT_SEED_OFFSET)
        order = torch.randperm(self.num_examples, generator=generator)
        self.splits = {
            "train": order[num_test + num_val :],
            "val": order[num_test : num_test + num_val],
            "test": order[:num_test],
        }
        if self.batch_size > len(self.splits["train"]):
            raise VaelabError(
                f"data.batch_size={self.batch_size} is larger than the training split "
                f"({len(self.splits['train'])} images); lower it"
            )

    # -- loaders ----------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool) -> DataLoader | DeviceGridLoader:
        batch_size = self.batch_size if split == "train" else self.eval_batch_size
        if self.on_device:
            return self._device_loader(split, batch_size, shuffle)
        return DataLoader(
            GridBatches(self.splits[split], self.factor_sizes, self.packed),
            batch_size=batch_size,
            shuffle=shuffle,
            collate_fn=keep_batch,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def _device_loader(self, split: str, batch_size: int, shuffle: bool) -> DeviceGridLoader:
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        batches = self._device_batches.get(split)
        if batches is None or batches.positions.device != device:
            packed = self.packed.to(device) if self.packed is not None else None
            if packed is not None:  # one device copy of the packed images for all splits
                for other in self._device_batches.values():
                    if other.packed is not None and other.packed.device == device:
                        packed = other.packed
            batches = GridBatches(self.splits[split].to(device), self.factor_sizes, packed)
            self._device_batches[split] = batches
        sampler = ShardedPermutation(
            len(batches),
            batch_size,
            shuffle,
            seed=int(os.environ.get("PL_GLOBAL_SEED", 0)),
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
            device=device,
        )
        return DeviceGridLoader(batches, sampler)

    def train_dataloader(self) -> DataLoader | DeviceGridLoader:
        return self._loader("train", shuffle=self.shuffle)

    def val_dataloader(self) -> DataLoader | DeviceGridLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader | DeviceGridLoader:
        return self._loader("test", shuffle=False)

    # -- images -----------------------------------------------------------------------------
    def binary_images(self, source: Tensor, factors: Tensor) -> Tensor:
        """The 0/1 sprites [B, 1, side, side] of a batch: unpacked from the original's
        bits when ``source`` holds them (uint8), else drawn from ``factors``."""
        if source.dtype == torch.uint8:
            return unpack_rows(source, self.side)
        return render_sprites(sprite_parameters(factors, self.factor_sizes), self.side)

    def paint(self, sprites: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The observation of 0/1 sprites; plain dSprites shows them as they are."""
        del generator  # no randomness in plain dSprites
        return sprites

    def draw(
        self, source: Tensor, factors: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """The observations [B, C, side, side] of a batch's source and factors (a data set
        drawn otherwise, data/xy_object.py, overrides this)."""
        return self.paint(self.binary_images(source, factors), generator)

    @override
    def on_after_batch_transfer(self, batch: list[Tensor], dataloader_idx: int) -> list[Tensor]:
        """[source, factors] → [images in [0, 1], factors], drawn on the device."""
        source, factors = batch
        x = self.draw(source, factors)
        if self.pairs is not None:  # each first view's partner, after the first views
            partners = sample_pairs(self.factor_sizes, factors, self.pairs).second
            x = torch.cat([x, self.observations_from_factors(partners)])
            factors = torch.cat([factors, partners])
        if self.trainer is not None:
            x = self.trainer.precision_plugin.convert_input(x)
        return [x, factors]

    # -- GroundTruthData --------------------------------------------------------------------
    def sample_factors(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """``num`` factor vectors [num, 5] drawn uniformly from the grid (int64, CPU)."""
        columns = [torch.randint(int(s), (num,), generator=generator) for s in self.factor_sizes]
        return torch.stack(columns, 1)

    def observations_from_factors(
        self, factors: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """The images [num, C, 64, 64] of factor vectors [num, 5], on the factors' device."""
        sizes = torch.tensor(self.factor_sizes, device=factors.device)
        if factors.ndim != 2 or factors.shape[1] != len(sizes):
            raise ValueError(f"factors must be [num, {len(sizes)}], got {tuple(factors.shape)}")
        if (factors < 0).any() or (factors >= sizes).any():
            raise ValueError(f"factor indices outside the grid {tuple(self.factor_sizes)}")
        if self.packed is None:
            return self.draw(factors, factors, generator)
        rows = self.packed.index_select(0, ravel(factors, self.factor_sizes).cpu())
        return self.paint(unpack_rows(rows.to(factors.device), self.side), generator)


def _uniform(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """U(0, 1) of ``shape`` on ``like``'s device; a generator draws on its own device (so a
    CPU generator gives the same numbers whatever device the images are on)."""
    if generator is None:
        return torch.rand(shape, device=like.device)
    return torch.rand(shape, generator=generator, device=generator.device).to(like.device)


class ColorDSpritesDataModule(DSpritesDataModule):
    """Colour-dSprites (Locatello et al. 2019, §5.1): each sprite is drawn in one random colour,
    every RGB channel ~ U(0.5, 1) per image, on black. The colour is noise, not a factor."""

    channels = RGB
    deterministic_observations = False

    @override
    def paint(self, sprites: Tensor, generator: torch.Generator | None = None) -> Tensor:
        low, high = COLOUR_RANGE
        colour = low + (high - low) * _uniform((len(sprites), RGB, 1, 1), sprites, generator)
        return sprites * colour


class NoisyDSpritesDataModule(DSpritesDataModule):
    """Noisy-dSprites (Locatello et al. 2019, §5.1): a white sprite (1 in every channel) on a
    background of uniform noise, U(0, 1) per pixel and channel: x = min(sprite + noise, 1)."""

    channels = RGB
    deterministic_observations = False

    @override
    def paint(self, sprites: Tensor, generator: torch.Generator | None = None) -> Tensor:
        noise = _uniform((len(sprites), RGB, *sprites.shape[-2:]), sprites, generator)
        return torch.clamp(sprites + noise, max=1.0)
