"""``vaelab.train`` and ``vaelab.load``: a trained run as a Python object (:class:`Run`) — its
config, metrics and model, its data, and what ``vaelab-eval`` computes of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import torch
from omegaconf import DictConfig
from torch import Tensor
from torch.distributions import Distribution

from vaelab.api.compose import compose, hydra_config, override, refuse_flags
from vaelab.cli import run_reporting_errors
from vaelab.errors import VaelabError
from vaelab.eval import choose_device, data_overrides, evaluate
from vaelab.evaluation.checkpoint import LoadedRun, load_run, locate_checkpoint
from vaelab.evaluation.encodings import SPLITS, Encodings, encode_split, prepare_batch, split_loader
from vaelab.models.interface import LatentVariableModel
from vaelab.run_files import CHECKPOINT_DIR, METRICS_FILE
from vaelab.train import train_in_process

#: vaelab-eval's keys that are not under ``eval.``; the others of :meth:`Run.evaluate` are
EVAL_TOP_LEVEL = ("data_dir", "output_dir", "print_summary")
#: where the image logger writes its PNGs, inside the run dir
IMAGES_DIR = "images"
TENSORBOARD_EVENTS = "events.out.tfevents.*"


class Batch(NamedTuple):
    """A batch as the model sees it: images ``x`` [B, C, H, W] (scaled, binarized as in
    training) and labels ``y`` [B] (−1 where the data have none)."""

    x: Tensor
    y: Tensor


class Run:
    """A trained run loaded from its folder: what ``vaelab-train`` wrote, the model rebuilt from
    ``config.yaml`` with the checkpoint's weights (eval mode), and its data set, read lazily
    where ``vaelab-eval`` reads it.

    >>> run = vaelab.load("logs/train/runs/2026-12-07_20-00-00")
    >>> x, y = run.batch("test", 16)
    >>> z = run.encode(x).mean                  # E_q[z|x], [16, latent_dim]
    >>> pictures = run.decode(z).mean           # E[x|z], [16, C, H, W]
    >>> run.evaluate(num_samples=100)["iw_nll"]
    """

    def __init__(self, loaded: LoadedRun, device: torch.device) -> None:
        self._loaded = loaded
        self.device = device
        self._data_ready = False

    # -- what the run wrote ----------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The run directory."""
        return self._loaded.location.run_dir

    @property
    def checkpoint(self) -> Path:
        """The checkpoint the model was loaded from (a run dir gives its best)."""
        return self._loaded.location.checkpoint

    @property
    def checkpoints(self) -> list[Path]:
        """Every checkpoint of the run (the best ones and ``last.ckpt``)."""
        return sorted((self.path / CHECKPOINT_DIR).glob("*.ckpt"))

    @property
    def images(self) -> list[Path]:
        """The PNG grids the image logger wrote during training."""
        return sorted((self.path / IMAGES_DIR).glob("*.png"))

    @property
    def events(self) -> list[Path]:
        """The run's TensorBoard event files (training's and vaelab-eval's)."""
        return sorted(self.path.rglob(TENSORBOARD_EVENTS))

    @property
    def config(self) -> DictConfig:
        """The run's resolved config (its ``config.yaml``)."""
        return self._loaded.config

    @property
    def metrics(self) -> dict[str, float]:
        """The final metrics in ``metrics.json`` ({} while the run has not finished)."""
        path = self.path / METRICS_FILE
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise VaelabError(
                f"{path} is unreadable ({err}); train the run again (resume=auto writes it "
                "again from the last checkpoint)"
            ) from err

    @property
    def epoch(self) -> int:
        return self._loaded.epoch

    @property
    def global_step(self) -> int:
        return self._loaded.global_step

    # -- the model -------------------------------------------------------------------------
    @property
    def model(self) -> LatentVariableModel:
        """The trained model (eval mode) on :attr:`device`; see ``models/interface.py``."""
        return self._loaded.module.model

    @property
    def datamodule(self) -> Any:
        """The run's datamodule, set up on first use (data read where vaelab-eval reads
        them: ``$VAELAB_DATA_DIR`` if set, else where training found them)."""
        if not self._data_ready:
            run_reporting_errors(lambda: self._loaded.datamodule.setup("test"), raise_errors=True)
            self._data_ready = True
        return self._loaded.datamodule

    @torch.no_grad()
    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """q(z | x, y) with batch shape [B]."""
        return self.model.encode(x.to(self.device), _on(y, self.device))

    @torch.no_grad()
    def decode(self, z: Tensor, y: Tensor | None = None) -> Distribution:
        """p(x | z, y) over whole images; its ``mean`` is the picture."""
        return self.model.decode(z.to(self.device), _on(y, self.device))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """E[x | z = E_q z] for each image of ``x``."""
        return self.model.reconstruct(x.to(self.device), _on(y, self.device))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` pictures E[x|z], z ~ p(z) (a class-conditional model draws its labels
        uniformly); a ``generator`` draws without touching the global RNG."""
        labels = self.model.labels_for_samples(n, generator)
        return self.model.sample(n, _on(labels, self.device), generator)

    def batch(self, split: str = "test", size: int | None = None) -> Batch:
        """The first ``size`` images of ``split`` (train, val or test; None: one loader
        batch) in loader order (the training split's is shuffled), as the model sees them."""
        _check_split(split)
        images, labels = [], []
        for batch in split_loader(self.datamodule, split):
            x, y = prepare_batch(self.datamodule, batch, self.device)
            images.append(x)
            labels.append(y)
            if size is None or sum(map(len, images)) >= size:
                break
        return Batch(torch.cat(images)[:size], torch.cat(labels)[:size])

    def latent_codes(self, split: str = "test", limit: int | None = None) -> Encodings:
        """Mean and marginal σ of q(z|x) and the labels of the first ``limit`` examples of
        ``split`` (all when None) in loader order (the training split's is shuffled), as the
        latent plots read them."""
        _check_split(split)
        num = limit if limit is not None else _split_size(self.datamodule, split)
        return run_reporting_errors(
            lambda: encode_split(self.model, self.datamodule, split, num, self.device),
            raise_errors=True,
        )

    def evaluate(self, **eval_overrides: Any) -> dict[str, Any]:
        """What ``vaelab-eval ckpt_path=<this checkpoint>`` computes, returned (and written to
        ``<run>/eval/``, as the command line does): keywords are its options, under ``eval.``
        (``num_samples=1000``, ``limit_batches=2``, ``figures=False``,
        ``disentanglement={"enabled": False}``) or top-level (``data_dir``, ``output_dir``,
        ``print_summary``); the device defaults to this run's."""
        if "ckpt_path" in eval_overrides:
            raise VaelabError(
                "Run.evaluate evaluates its own checkpoint; vaelab.load(<other>) for another"
            )
        eval_overrides.setdefault("device", str(self.device))
        overrides = [f"ckpt_path={_quoted(self.checkpoint)}"]
        for key, value in eval_overrides.items():
            overrides += override(key if key in EVAL_TOP_LEVEL else f"eval.{key}", value)
        cfg = compose(*overrides, config="eval")
        with hydra_config(None):
            return run_reporting_errors(lambda: evaluate(cfg), raise_errors=True)

    def __repr__(self) -> str:
        model = type(self.model).__name__
        return f"Run({str(self.path)!r}, model={model}, epoch={self.epoch}, device={self.device})"


def load(path: str | Path, device: str | torch.device = "cpu") -> Run:
    """The run at ``path`` (its folder, its ``checkpoints/`` folder or one ``.ckpt`` file; a
    folder gives its best checkpoint, else ``last.ckpt``) with its model on ``device``.

    >>> run = vaelab.load("logs/train/runs/2026-12-07_20-00-00")
    >>> run.metrics["test/elbo"]

    What ``vaelab-eval`` refuses (no run there, a damaged checkpoint, a checkpoint of another
    config) raises :class:`VaelabError` with its one-line message.
    """
    cfg = compose(f"ckpt_path={_quoted(path)}", config="eval")

    def loaded() -> Run:
        where = choose_device(str(device))
        location = locate_checkpoint(path)
        return Run(load_run(location, where, data_overrides(cfg), setup_data=False), where)

    with hydra_config(None):
        return run_reporting_errors(loaded, raise_errors=True)


def train(*overrides: str, output_dir: str | Path | None = None) -> Run:
    """Train as ``vaelab-train <overrides>`` does (same config, run dir layout, metrics.json
    and checkpoints; a finished run dir is skipped, an interrupted one resumed), then load the
    finished run on the CPU.

    >>> run = vaelab.train("data=digits", "trainer.max_epochs=5", output_dir="runs/a")

    ``output_dir`` is the run dir (``hydra.run.dir``; default ``logs/train/runs/<time>``). A
    sweep from Python is a loop over ``train`` with one ``output_dir`` per job inside one
    folder, which :func:`vaelab.load_sweep` reads like a ``vaelab-train -m`` sweep:

    >>> for i, beta in enumerate([0.5, 1, 4]):
    ...     vaelab.train("data=digits", f"beta.value={beta}", output_dir=f"sweep/{i}")
    >>> vaelab.load_sweep("sweep").table()
    """
    refuse_flags(overrides)
    run_dir = [f"hydra.run.dir={_quoted(Path(output_dir).resolve())}"] if output_dir else []
    finished = train_in_process([*overrides, *run_dir])
    return load(finished.output_dir)


def _quoted(path: str | Path) -> str:
    """A path as one override value, whatever characters it holds."""
    return override("", path)[0][1:]


def _on(labels: Tensor | None, device: torch.device) -> Tensor | None:
    return None if labels is None else labels.to(device)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise VaelabError(f"split={split!r} is not a split; use one of {', '.join(SPLITS)}")


def _split_size(datamodule: Any, split: str) -> int:
    splits = getattr(datamodule, "splits", None)
    if isinstance(splits, dict) and split in splits:
        return len(splits[split])
    return len(split_loader(datamodule, split).dataset)
