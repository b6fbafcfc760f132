"""XYObject: a square of one of several sizes and colours at each position of a grid, generated
in torch from its factors — the synthetic factor data set of disent's ``XYObjectData`` family
(this module's own choices of sizes, grid and palettes).

Factors, in order (the last fastest): colour (6 values), size (4: sides of 4, 6, 8, 10 px),
x and y (28 positions each: the square's top-left pixel at 2·index, so that the largest square
still fits in the 64×64 image): 6 · 4 · 28 · 28 = 18,816 images. Variants, as parameters:
``palette=rainbow`` (red, yellow, green, cyan, blue, magenta at full saturation; 3 channels)
or ``greys`` (intensities 1/6 … 6/6; 1 channel), and ``background=black`` or ``noise`` (the
square opaque on uniform noise U(0, 1) per pixel and channel, drawn per image: the observations
are then random, as noisy-dSprites'). Batches are (x, factor indices [B, 4]) and the module
implements :class:`~vaelab.data.ground_truth.GroundTruthData`; splits, loaders, pairs
(``changed_factors``) and ``on_device`` are those of :class:`~vaelab.data.dsprites.
DSpritesDataModule`, whose grid machinery it reuses.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from typing_extensions import override

from vaelab.data.dsprites import DSpritesDataModule
from vaelab.data.pairs import ChangedFactors
from vaelab.schema import NonNegativeInt, PositiveInt, Seed, SplitSize, checked_arguments

XY_SIDE = 64
#: the squares' sides in pixels, by size index
SQUARE_SIDES = (4, 6, 8, 10)
#: pixels between neighbouring positions of the grid
GRID_SPACING = 2
#: positions per axis: top-left corners 0, 2, …, 54 keep the 10-px square inside 64 px
NUM_POSITIONS = (XY_SIDE - max(SQUARE_SIDES)) // GRID_SPACING + 1
XY_FACTOR_NAMES = ("colour", "size", "x", "y")
#: the palettes' colours, one RGB (or grey) row per colour index
PALETTES = {
    "rainbow": (
        (1.0, 0.0, 0.0),
        (1.0, 1.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 1.0, 1.0),
        (0.0, 0.0, 1.0),
        (1.0, 0.0, 1.0),
    ),
    "greys": tuple((level / 6,) for level in range(1, 7)),
}
COLOUR_NAMES = {
    "rainbow": ("red", "yellow", "green", "cyan", "blue", "magenta"),
    "greys": tuple(f"grey {level}/6" for level in range(1, 7)),
}
Palette = Literal["rainbow", "greys"]
Background = Literal["black", "noise"]


def square_masks(factors: Tensor, side: int = XY_SIDE) -> Tensor:
    """[B, 1, side, side] float 0/1: the square of each factor vector (colour, size, x, y),
    pixels [2x, 2x + s) × [2y, 2y + s) with s its side; on the factors' device."""
    sides = torch.tensor(SQUARE_SIDES, device=factors.device)[factors[:, 1]]
    left = GRID_SPACING * factors[:, 2]
    top = GRID_SPACING * factors[:, 3]
    pixels = torch.arange(side, device=factors.device)
    columns = (pixels >= left[:, None]) & (pixels < (left + sides)[:, None])  # [B, W]
    rows = (pixels >= top[:, None]) & (pixels < (top + sides)[:, None])  # [B, H]
    return (rows[:, :, None] & columns[:, None, :]).unsqueeze(1).to(torch.float32)


@checked_arguments("data")
class XYObjectDataModule(DSpritesDataModule):
    """XYObject (module doc): 18,816 squares, factors colour × size × x × y; ``palette`` and
    ``background`` choose the variant. ``num_classes`` is None (the factors are not class
    labels); latent plots colour the codes by the first factor, the colour."""

    factor_sizes: tuple[int, ...] = (6, len(SQUARE_SIDES), NUM_POSITIONS, NUM_POSITIONS)
    factor_names: tuple[str, ...] = XY_FACTOR_NAMES
    side: int = XY_SIDE

    def __init__(
        self,
        data_dir: str,
        batch_size: PositiveInt = 64,
        eval_batch_size: PositiveInt | None = None,
        val_size: SplitSize = 1000,
        test_size: SplitSize = 1000,
        split_seed: Seed = 0,
        palette: Palette = "rainbow",
        background: Background = "black",
        num_workers: NonNegativeInt = 0,
        pin_memory: bool = False,
        on_device: bool = False,
        shuffle: bool = True,
        download: bool = False,
        changed_factors: ChangedFactors | None = None,
    ) -> None:
        super().__init__(
            data_dir,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            val_size=val_size,
            test_size=test_size,
            split_seed=split_seed,
            source="generated",
            num_workers=num_workers,
            pin_memory=pin_memory,
            on_device=on_device,
            shuffle=shuffle,
            download=download,
            changed_factors=changed_factors,
        )
        self.palette = palette
        self.background = background
        self.colours = torch.tensor(PALETTES[palette], dtype=torch.float32)  # [6, C]
        self.channels = self.colours.shape[1]
        self.class_names = COLOUR_NAMES[palette]
        #: one image per factor vector unless a noise background is drawn per image
        self.deterministic_observations = background == "black"

    @override
    def original_path(self) -> None:
        """XYObject is generated only: there is no file to read."""
        return None

    @override
    def draw(
        self, source: Tensor, factors: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """[B, C, 64, 64]: each square in its colour, on black or on uniform noise."""
        del source  # generated: the source is the factors
        masks = square_masks(factors, self.side)
        colours = self.colours.to(factors.device)[factors[:, 0]][:, :, None, None]
        if self.background == "black":
            return masks * colours
        shape = (len(factors), self.channels, self.side, self.side)
        if generator is None:
            noise = torch.rand(shape, device=factors.device)
        else:
            noise = torch.rand(shape, generator=generator, device=generator.device)
        return torch.where(masks.bool(), colours, noise.to(factors.device))
