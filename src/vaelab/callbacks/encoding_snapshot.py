"""Stores the untrained encoder's q(z|x) of a fixed set of images (seed 003's "encodings of
example images before training"), so ``vaelab-eval`` can draw them next to the trained ones."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from vaelab.evaluation.encodings import encode_split
from vaelab.schema import PositiveInt, checked_arguments


@checked_arguments("callbacks.encoding_snapshot")
class EncodingSnapshot(L.Callback):
    """At the start of training (global step 0, rank 0) encode the first ``num_points`` images
    of ``split`` and save their posterior means, σ and labels to ``path`` (a torch file of
    tensors, readable with ``weights_only=True``). A resumed run keeps its original snapshot.
    If the datamodule cannot serve ``split`` during fit, the validation split is used.
    The random state is restored afterwards, so the snapshot does not change training.
    """

    def __init__(self, path: str, num_points: PositiveInt = 1000, split: str = "test") -> None:
        self.path = Path(path)
        self.num_points = int(num_points)
        self.split = split

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step > 0 or not trainer.is_global_zero or self.path.exists():
            return
        model = pl_module.model
        datamodule = trainer.datamodule
        if datamodule is None:
            return
        was_training = pl_module.training
        pl_module.eval()
        device = pl_module.device
        cuda = [device.index or 0] if device.type == "cuda" else []
        try:
            # fork the RNG: dynamic binarization draws bits, training must not see the draw
            with torch.no_grad(), torch.random.fork_rng(devices=cuda):
                try:
                    encodings = encode_split(
                        model, datamodule, self.split, self.num_points, pl_module.device
                    )
                except (KeyError, AttributeError, NotImplementedError):
                    encodings = encode_split(
                        model, datamodule, "val", self.num_points, pl_module.device
                    )
        finally:
            pl_module.train(was_training)
        encodings.epoch = trainer.current_epoch
        encodings.global_step = trainer.global_step
        encodings.save(self.path)

    def state_dict(self) -> dict:
        return {}
