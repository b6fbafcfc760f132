"""vaelab-eval's sampler stage: the codes of the training images, the ex-post sampler fitted
on them once (``sampler=``), saved beside the checkpoint and reused by the next evaluation.

The file ``<checkpoint stem>.sampler-<name>.pt`` holds tensors and plain values only (the
sampler's ``state_dict``, its settings, the code size and the checkpoint's step), so it loads
with ``torch.load(weights_only=True)``; one fitted with other settings or for another step of
the checkpoint is refitted and replaced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vaelab.atomic_io import atomic_write_bytes
from vaelab.errors import VaelabError
from vaelab.evaluation.encodings import marginal_stddev, prepare_batch
from vaelab.models.interface import LatentVariableModel, MissingCapability
from vaelab.samplers.base import Sampler, TrainingCodes
from vaelab.stage_progress import Mode, stage

#: the fitted sampler's file, next to the checkpoint it was fitted for
SAMPLER_FILE = "{stem}.sampler-{name}.pt"


@dataclass
class FittedSampler:
    """A sampler ready to draw, and where it came from."""

    sampler: Sampler
    path: Path | None = None
    #: True when this evaluation fitted it, False when it was read from ``path``
    fitted_now: bool = False
    fit_seconds: float = 0.0
    #: the sampler's mean log-density of the training codes (nats per code; two_stage: its ELBO)
    train_log_likelihood: float | None = None
    steps: int = 0
    num_codes: int = 0

    def summary(self) -> dict[str, Any]:
        """metrics.json's ``sampler`` entry."""
        return {
            "name": self.sampler.name,
            "file": str(self.path) if self.path else None,
            "fitted_now": self.fitted_now,
            "fit_seconds": self.fit_seconds,
            "train_code_log_likelihood": self.train_log_likelihood,
            "fit_steps": self.steps,
            "num_codes": self.num_codes,
            "settings": self.sampler.settings(),
        }


def sampler_file(checkpoint: Path, name: str) -> Path:
    return checkpoint.with_name(SAMPLER_FILE.format(stem=checkpoint.stem, name=name))


@torch.no_grad()
def training_codes(
    model: LatentVariableModel,
    datamodule,
    device: torch.device,
    max_codes: int | None = None,
    progress: Mode | None = None,
) -> TrainingCodes:
    """``latent_codes(x)``'s mean (and spread) of the training images, in loader order, at most
    ``max_codes`` of them; a :mod:`vaelab.stage_progress` stage over the images."""
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    total = len(loader.dataset) if max_codes is None else min(len(loader.dataset), max_codes)
    means, stddevs = [], []
    where = "this CPU" if device.type == "cpu" else str(device)
    with stage(
        "sampler: codes of the training images", total, "images", where=where, mode=progress
    ) as bar:
        collected = 0
        for batch in loader:
            if collected >= total:
                break
            x, y = prepare_batch(datamodule, batch, device)
            take = min(len(x), total - collected)
            try:
                codes = model.latent_codes(x[:take], y[:take])
            except MissingCapability as missing:
                raise VaelabError(
                    f"{missing}: an ex-post sampler fits a density to the model's latent codes; "
                    "use sampler=prior"
                ) from missing
            means.append(codes.mean.float().cpu())
            try:
                stddevs.append(marginal_stddev(codes).float().cpu())
            except NotImplementedError:  # a distribution without a variance: a point code
                stddevs = None
            collected += take
            bar.advance(take)
    mean = torch.cat(means).flatten(1)
    spread = torch.cat(stddevs).flatten(1) if stddevs else None
    if spread is not None and not bool((spread > 0).any()):
        spread = None  # a deterministic code (autoencoder, a point-mass posterior)
    return TrainingCodes(mean=mean, stddev=spread)


def _read(path: Path, sampler: Sampler, step: int) -> FittedSampler | None:
    """The sampler saved at ``path`` if it was fitted with these settings at this step."""
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as err:
        print(f"vaelab-eval: refitting sampler={sampler.name}: cannot read {path} ({err})")
        return None
    if stored.get("settings") != sampler.settings() or stored.get("global_step") != step:
        print(
            f"vaelab-eval: refitting sampler={sampler.name}: {path.name} was fitted with other "
            "settings or another checkpoint step"
        )
        return None
    sampler.restore(int(stored["latent_dim"]), stored["state"])
    return FittedSampler(
        sampler,
        path,
        fitted_now=False,
        fit_seconds=float(stored["fit_seconds"]),
        train_log_likelihood=stored["train_log_likelihood"],
        steps=int(stored["steps"]),
        num_codes=int(stored["num_codes"]),
    )


def _write(path: Path, fitted: FittedSampler, step: int) -> None:
    import io

    buffer = io.BytesIO()
    torch.save(
        {
            "sampler": fitted.sampler.name,
            "settings": fitted.sampler.settings(),
            "latent_dim": int(fitted.sampler.latent_dim),
            "global_step": int(step),
            "state": {name: value.cpu() for name, value in fitted.sampler.state_dict().items()},
            "fit_seconds": fitted.fit_seconds,
            "train_log_likelihood": fitted.train_log_likelihood,
            "steps": fitted.steps,
            "num_codes": fitted.num_codes,
        },
        buffer,
    )
    atomic_write_bytes(path, buffer.getbuffer())


def fitted_sampler(
    sampler: Sampler,
    model: LatentVariableModel,
    datamodule,
    checkpoint: Path,
    global_step: int,
    device: torch.device,
    seed: int = 0,
    max_codes: int | None = None,
    refit: bool = False,
    progress: Mode | None = None,
) -> FittedSampler:
    """``sampler`` ready to draw for the model of ``checkpoint``: read from its file beside the
    checkpoint when that was fitted with the same settings, else fitted on the training codes
    (a stage) and saved there. The prior sampler has nothing to fit."""
    sampler.check_model(model)
    if not sampler.needs_fit:
        return FittedSampler(sampler)
    path = sampler_file(checkpoint, sampler.name)
    if not refit:
        saved = _read(path, sampler, global_step)
        if saved is not None:
            print(f"vaelab-eval: sampler={sampler.name} reused from {path}")
            return saved
    codes = training_codes(model, datamodule, device, max_codes, progress)
    generator = torch.Generator().manual_seed(int(seed))
    started = time.perf_counter()
    with (
        stage(f"sampler: fitting {sampler.name} on the codes", 1, "fit", mode=progress) as bar,
        torch.enable_grad(),
    ):
        summary = sampler.fit(codes, generator)
        bar.advance()
    sampler.eval()
    fitted = FittedSampler(
        sampler,
        path,
        fitted_now=True,
        fit_seconds=time.perf_counter() - started,
        train_log_likelihood=summary.train_log_likelihood,
        steps=summary.steps,
        num_codes=len(codes.mean),
    )
    _write(path, fitted, global_step)
    return fitted
