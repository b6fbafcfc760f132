"""Your own images: a folder of image files read once into a uint8 tensor (``data=image_folder``).

Two layouts: class subfolders (``root/<class>/<image>``, torchvision's ``ImageFolder``; the
labels are the classes in sorted order) or a flat folder of images (no labels). Every image
is converted to grey (``channels=1``, PIL's "L") or RGB (``channels=3``) and brought to
``image_size``: ``resize=crop`` scales it to cover the size and centre-crops it (no
distortion), ``resize=stretch`` scales it to the size exactly; ``image_size=null`` keeps the
files' own size (they must then all have the same). Splits are seeded, as for the built-in
pools: ``test_size`` is held out first, then ``val_size``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension
from torchvision.transforms.v2 import functional as F

from vaelab.data.image_datamodule import ImageSplit
from vaelab.data.pooled_datamodule import PooledDataModule
from vaelab.errors import VaelabError, first_line
from vaelab.schema import Range, checked_arguments

Side = Annotated[int, Range(ge=1)]
UNLABELLED = -1
PIL_MODES = {1: "L", 3: "RGB"}


def is_image_file(path: Path) -> bool:
    """A file with one of torchvision's image extensions (.png, .jpg, …)."""
    return path.is_file() and has_file_allowed_extension(path.name, IMG_EXTENSIONS)


@checked_arguments("data")
class ImageFolderDataModule(PooledDataModule):
    """A folder of images (``path``) as a data set; see the module docstring for the options.
    ``data_dir`` and ``download`` are accepted like every datamodule's but unused."""

    def __init__(
        self,
        *args,
        path: str,
        image_size: Side | tuple[Side, Side] | None = 64,
        resize: Literal["crop", "stretch"] = "crop",
        channels: Literal[1, 3] = 1,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.path = Path(path)
        self.size = self._size(image_size)
        self.resize = resize
        self.channels = int(channels)
        self.num_classes: int | None = None
        self.class_names: list[str] | None = None
        #: (H, W) of the files before resizing (read with the pool)
        self._native_sizes: set[tuple[int, int]] = set()

    @staticmethod
    def _size(image_size: int | Sequence[int] | None) -> tuple[int, int] | None:
        if image_size is None:
            return None
        sides = [image_size] * 2 if isinstance(image_size, int) else list(image_size)
        return int(sides[0]), int(sides[1])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W): from the options, or from the files when ``image_size`` is null."""
        if self.size is not None:
            return (self.channels, *self.size)
        return tuple(self._cached_pool().images.shape[1:])

    # -- reading --------------------------------------------------------------------------------
    def _listing(self) -> tuple[list[Path], list[int]]:
        """(files, labels): class subfolders through torchvision's ImageFolder, else the flat
        folder's image files in sorted order, unlabelled."""
        root = self.path
        if not root.is_dir():
            raise VaelabError(
                f"data.path={root} is not a folder; point data.path at a folder of images "
                "(flat, or one subfolder per class)"
            )
        subfolders = [
            d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")
        ]
        flat = [f for f in sorted(root.iterdir()) if is_image_file(f)]
        if subfolders and flat:
            raise VaelabError(
                f"{root} holds both image files ({flat[0].name}, …) and subfolders "
                f"({subfolders[0].name}, …); use one layout: all images in class subfolders, "
                "or all directly in the folder"
            )
        if subfolders:
            try:
                dataset = ImageFolder(str(root))
            except FileNotFoundError as err:  # a class folder without images
                raise VaelabError(
                    f"{root}: {first_line(err)}; every class subfolder must hold images "
                    f"({', '.join(IMG_EXTENSIONS)})"
                ) from err
            self.class_names = list(dataset.classes)
            self.num_classes = len(dataset.classes)
            return [Path(p) for p, _ in dataset.samples], [int(c) for _, c in dataset.samples]
        if not flat:
            raise VaelabError(
                f"{root} holds no image files ({', '.join(IMG_EXTENSIONS)}); put images in it "
                "or in one subfolder per class"
            )
        return flat, [UNLABELLED] * len(flat)

    def _read(self, path: Path) -> Tensor:
        """One image as uint8 [C, H, W], converted and resized."""
        try:
            with Image.open(path) as opened:
                image = opened.convert(PIL_MODES[self.channels])
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise VaelabError(
                f"{path} is not a readable image ({first_line(err)}); remove or replace it"
            ) from err
        if self.size is not None:
            self._native_sizes.add((image.height, image.width))
            image = self._resized(image)
        return F.pil_to_tensor(image)

    def _resized(self, image: Image.Image) -> Image.Image:
        height, width = self.size
        if self.resize == "stretch":
            return F.resize(image, [height, width], antialias=True)
        cover = max(height / image.height, width / image.width)
        scaled = [
            max(height, math.ceil(image.height * cover - 1e-6)),
            max(width, math.ceil(image.width * cover - 1e-6)),
        ]
        return F.center_crop(F.resize(image, scaled, antialias=True), [height, width])

    def _say_resize(self) -> None:
        """Say once, when the pool is read, that the images were resized and from what: a
        larger size changes the model's size and the loss in nats per image."""
        changed = sorted(size for size in self._native_sizes if size != self.size)
        if not changed or self.size is None:
            return
        shown = ", ".join(f"{h}×{w}" for h, w in changed[:3]) + (", …" if len(changed) > 3 else "")
        print(
            f"vaelab: note: data=image_folder resized the images of {self.path} from {shown} to "
            f"{self.size[0]}×{self.size[1]} (data.image_size={self.size[0]}, resize="
            f"{self.resize}); data.image_size=null keeps their native size",
            file=sys.stderr,
            flush=True,
        )

    def load_pool(self) -> ImageSplit:
        files, labels = self._listing()
        self._native_sizes.clear()
        images = [self._read(path) for path in files]
        self._say_resize()
        shapes = {tuple(image.shape) for image in images}
        if len(shapes) > 1:
            examples = ", ".join(map(str, sorted(shapes)[:3]))
            raise VaelabError(
                f"the images in {self.path} differ in size ({examples}, …) and "
                "data.image_size=null keeps them as they are; set data.image_size "
                "(e.g. 64) to resize them all"
            )
        return ImageSplit(torch.stack(images), torch.tensor(labels, dtype=torch.int64))
