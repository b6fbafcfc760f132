"""Training throughput of one VAE on MNIST, six ways, as a Markdown table (docs/benchmarks.md).

The model everywhere: the 784-400-20 MLP VAE (leaky ReLU 0.2), Bernoulli likelihood with
logits, diagonal Gaussian posterior, analytic KL, Adam lr 1e-3, one process.

  (a) plain   a hand-written PyTorch loop over float tensors already on the device: the limit
  (b) seeds   the seeds' style: torchvision MNIST + ToTensor + DataLoader, ``loss.item()`` per step
  (c) vaelab  ``vaelab-train`` with its default (DataLoader) data path
  (d) device  ``vaelab-train data.on_device=true``
  (e) bf16    (d) with ``trainer.precision=bf16-mixed``
  (f) pythae  pythae's ``TrainingPipeline`` on the same networks (skipped if not importable; it
              is not a project dependency: ``pip install --no-deps --target DIR pythae imageio``
              and pass ``--pythae-path DIR``)
  (g) compile (d) with ``module.compile=true`` (only with ``--variants … g``)
  (l) floor   Lightning's own cost: a LightningModule whose training_step is (a)'s loss, fed
              (a)'s float batches, no callbacks but the throughput monitor: what any
              Lightning-based framework pays per step before doing anything of its own

Each variant trains ``--warmup-steps`` untimed steps, then ``--timed-images`` images timed
((a), (b), (f): device synchronised at both ends; (c)–(e), (g), (l): Lightning's
ThroughputMonitor over the timed batches, which synchronises CUDA after every batch, logged
once at the last step to TensorBoard); variants run interleaved ``--repeats`` times and the
table shows the median images/s and the median over repeats of its ratio to (a) in the same
repeat (so a load change between repeats cancels out). ``--iw-nll`` adds the throughput of
the importance-weighted NLL evaluation (if ``vaelab.evaluation.iw_nll`` exists).
``--profile c`` prints where one run of a variant spends its time (cProfile).
``--paired-compile ROUNDS`` measures (g)/(d) step by step in one process, rounds of
``--pair-steps`` steps of each, interleaved (robust on a loaded machine; see
:func:`paired_compile`). ``--threads-effect`` measures (a) under torch's default threads
(every core of the machine), 1 thread and ``threads=auto`` (:mod:`vaelab.threads`), on the
machine as it is and with ``--busy`` busy-looping processes added (a machine shared with
other jobs); ``--threads`` takes ``auto`` too.

Usage: ``.venv/bin/python scripts/benchmark.py --data-dir /tmp/vaedata``
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gzip
import importlib.util
import io
import json
import math
import os
import platform
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from typing_extensions import override

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = 400
LATENT = 20
SLOPE = 0.2
LR = 1e-3
VARIANTS = {
    "a": "plain PyTorch loop, data on the device",
    "b": "seeds' style: torchvision + ToTensor + DataLoader",
    "c": "vaelab-train (DataLoader path)",
    "d": "vaelab-train data.on_device=true",
    "e": "(d) + trainer.precision=bf16-mixed",
    "f": "pythae TrainingPipeline",
    "g": "(d) + module.compile=true",
    "l": "Lightning floor: (a)'s loss in a bare LightningModule",
}
#: run unless --variants says otherwise (g compiles for minutes on a CPU)
DEFAULT_VARIANTS = ["a", "b", "c", "d", "e", "f", "l"]


@dataclass
class Measurement:
    variant: str
    batch_size: int
    images_per_s: float | None
    note: str = ""


class PlainVAE(nn.Module):
    """The benchmark's networks written out by hand (same shapes and init as vaelab's mlp)."""

    def __init__(self, pixels: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Flatten(),
            nn.Linear(pixels, HIDDEN),
            nn.LeakyReLU(SLOPE),
            nn.Linear(HIDDEN, 2 * LATENT),
        )
        self.decoder = nn.Sequential(
            nn.Linear(LATENT, HIDDEN), nn.LeakyReLU(SLOPE), nn.Linear(HIDDEN, pixels)
        )

    def loss(self, x: Tensor) -> Tensor:
        """−ELBO per data point: BCE-with-logits summed over pixels + closed-form KL."""
        mu, log_var = self.encoder(x).chunk(2, dim=-1)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        logits = self.decoder(z)
        batch = x.shape[0]
        recon = F.binary_cross_entropy_with_logits(logits, x.reshape(batch, -1), reduction="sum")
        kl = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
        return (recon + kl) / batch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_loop(
    batches: Callable[[], object],
    step: Callable[[Tensor], None],
    device: torch.device,
    warmup_steps: int,
    timed_images: int,
) -> float:
    """Run ``step`` on batches (re-iterating ``batches()`` per epoch); images/s after warm-up."""
    seen_steps, images, start = 0, 0, None
    while True:
        for x in batches():
            if seen_steps == warmup_steps:
                synchronize(device)
                start = time.perf_counter()
            step(x)
            seen_steps += 1
            if start is not None:
                images += x.shape[0]
                if images >= timed_images:
                    synchronize(device)
                    return images / (time.perf_counter() - start)


def mnist_train_images(data_dir: Path) -> Tensor:
    """The uint8 training split [N, 1, 28, 28] exactly as vaelab's MNIST datamodule holds it."""
    from vaelab.data.mnist import MNISTDataModule

    datamodule = MNISTDataModule(str(data_dir), download=False)
    datamodule.setup()
    return datamodule.splits["train"].images


def run_plain(args, batch_size: int) -> Measurement:
    device = torch.device(args.device)
    x_all = (mnist_train_images(args.data_dir).float() / 255).to(device)
    model = PlainVAE(x_all[0].numel()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    num_batches = len(x_all) // batch_size

    def batches():
        order = torch.randperm(len(x_all), device=device)
        return (
            x_all.index_select(0, order[i * batch_size : (i + 1) * batch_size])
            for i in range(num_batches)
        )

    def step(x: Tensor) -> None:
        loss = model.loss(x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    rate = timed_loop(batches, step, device, args.warmup_steps, args.timed_images)
    return Measurement("a", batch_size, rate)


def run_lightning_floor(args, batch_size: int) -> Measurement:
    import lightning as L
    from lightning.pytorch.loggers import TensorBoardLogger

    from vaelab.callbacks.throughput import TrainThroughput, logged_rate

    device = torch.device(args.device)
    x_all = (mnist_train_images(args.data_dir).float() / 255).to(device)
    steps = args.warmup_steps + -(-args.timed_images // batch_size)
    order = torch.randperm(len(x_all), device=device)
    batches = [
        [x_all.index_select(0, order[(i * batch_size) % (len(x_all) - batch_size) :][:batch_size])]
        for i in range(steps)
    ]

    class PlainModule(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.vae = PlainVAE(x_all[0].numel())

        @override
        def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
            return self.vae.loss(batch[0])

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=LR)

    class Batches:  # a sized iterable, as Lightning wants a train loader to be
        def __iter__(self):
            return iter(batches)

        def __len__(self) -> int:
            return len(batches)

    with (
        tempfile.TemporaryDirectory(dir=args.scratch) as run_dir,
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        trainer = L.Trainer(
            accelerator=args.device,
            devices=1,
            max_epochs=1,
            # the monitor's rate reaches only a logger: it writes once, at the last step
            logger=TensorBoardLogger(run_dir, name="", version=""),
            log_every_n_steps=steps,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[TrainThroughput(window_size=timed_window(args, steps))],
        )
        trainer.fit(PlainModule(), train_dataloaders=Batches())
        rate = logged_rate(Path(run_dir))
    return Measurement("l", batch_size, rate)


def timed_window(args, steps: int) -> int:
    """ThroughputMonitor's window at the last step: the timed batches and the one before."""
    return steps - args.warmup_steps + 1


def torchvision_root(data_dir: Path, scratch: Path) -> Path:
    """torchvision's MNIST reads uncompressed IDX files: decompress the .gz copies once."""
    raw = scratch / "MNIST" / "raw"
    if not raw.is_dir():
        raw.mkdir(parents=True)
        for gz in (data_dir / "MNIST" / "raw").glob("*.gz"):
            (raw / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    return scratch


def run_seeds(args, batch_size: int) -> Measurement:
    from torch.utils.data import DataLoader
    from torchvision import transforms
    from torchvision.datasets import MNIST

    device = torch.device(args.device)
    dataset = MNIST(
        str(torchvision_root(args.data_dir, args.scratch)),
        train=True,
        transform=transforms.ToTensor(),
        download=False,
    )
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    model = PlainVAE(dataset[0][0].numel()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    overall_loss = 0.0

    def batches():
        return (images.to(device) for images, _ in loader)

    def step(x: Tensor) -> None:
        nonlocal overall_loss
        loss = model.loss(x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        overall_loss += loss.item()  # as the seeds do: a host sync every step

    rate = timed_loop(batches, step, device, args.warmup_steps, args.timed_images)
    return Measurement("b", batch_size, rate)


def compose(overrides: list[str], output_dir: Path):
    """The training config exactly as ``vaelab-train <overrides>`` composes it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from vaelab.paths import CONFIG_DIR, export_project_root

    export_project_root()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):  # the task function of a real run sees no `hydra` key
        del cfg["hydra"]
    return cfg


def vaelab_overrides(args, batch_size: int, extra: list[str]) -> list[str]:
    steps = args.warmup_steps + -(-args.timed_images // batch_size)
    return [
        "print_config=false",
        "test=false",
        "seed=0",
        f"paths.data_dir={args.data_dir}",
        "data.download=false",
        f"data.batch_size={batch_size}",
        f"model.latent_dim={LATENT}",
        f"model.net.hidden_dims=[{HIDDEN}]",
        f"model.net.negative_slope={SLOPE}",
        f"optimizer.lr={LR}",
        f"trainer.accelerator={args.device}",
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={steps}",
        "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_model_summary=false",
        # a progress bar redraw per step is a terminal cost, not the framework's (without the
        # callback entry Lightning would add its default bar: switch it off too)
        "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false",
        "callbacks.image_logger=null",
        "+callbacks.throughput._target_=vaelab.callbacks.throughput.TrainThroughput",
        f"+callbacks.throughput.window_size={timed_window(args, steps)}",
        # the monitor logs its rate at the last step (and vaelab its step metrics) only
        f"trainer.log_every_n_steps={steps}",
        # --threads holds for vaelab's variants too (vaelab-train sets its own: threads=auto)
        *([f"threads={args.threads}"] if args.threads else []),
        *extra,
    ]


def run_vaelab(args, batch_size: int, variant: str) -> Measurement:
    from vaelab.callbacks.throughput import logged_rate
    from vaelab.train import train

    extra = {
        "c": [],
        "d": ["data.on_device=true"],
        "e": ["data.on_device=true", "trainer.precision=bf16-mixed"],
        "g": ["data.on_device=true", "module.compile=true"],
    }[variant]
    with (
        tempfile.TemporaryDirectory(dir=args.scratch) as run_dir,
        contextlib.redirect_stdout(io.StringIO()),
    ):
        cfg = compose(vaelab_overrides(args, batch_size, extra), Path(run_dir))
        train(cfg)
        rate = logged_rate(Path(run_dir))
    return Measurement(variant, batch_size, rate)


def run_pythae(args, batch_size: int) -> Measurement:
    if args.pythae_path:
        sys.path.insert(0, str(args.pythae_path))
    if importlib.util.find_spec("pythae") is None:
        return Measurement("f", batch_size, None, "pythae not importable: skipped")
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines.training import TrainingPipeline
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    class Encoder(BaseEncoder):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Tensor) -> ModelOutput:
            mu, log_var = self.net(x).chunk(2, dim=-1)
            return ModelOutput(embedding=mu, log_covariance=log_var)

    images = mnist_train_images(args.data_dir)
    image_shape = tuple(images.shape[1:])

    class Decoder(BaseDecoder):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, z: Tensor) -> ModelOutput:
            # pythae's "bce" takes probabilities: the same Bernoulli, through a sigmoid
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).reshape(-1, *image_shape))

    steps = args.warmup_steps + -(-args.timed_images // batch_size)
    data = (images[: steps * batch_size].float() / 255).numpy()
    nets = PlainVAE(images[0].numel())
    model = VAE(
        VAEConfig(input_dim=image_shape, latent_dim=LATENT, reconstruction_loss="bce"),
        encoder=Encoder(nets.encoder),
        decoder=Decoder(nets.decoder),
    )
    timings: list[float] = []
    original_step = BaseTrainer.train_step

    def timed_train_step(self, epoch: int):
        synchronize(torch.device(args.device))
        start = time.perf_counter()
        loss = original_step(self, epoch)
        synchronize(torch.device(args.device))
        timings.append(time.perf_counter() - start)
        return loss

    config = BaseTrainerConfig(
        output_dir=str(args.scratch / "pythae"),
        per_device_train_batch_size=batch_size,
        num_epochs=2,
        learning_rate=LR,
        optimizer_cls="Adam",
        no_cuda=args.device == "cpu",
        steps_saving=None,
        steps_predict=None,
    )
    BaseTrainer.train_step = timed_train_step
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            TrainingPipeline(training_config=config, model=model)(train_data=data)
    finally:
        BaseTrainer.train_step = original_step
    # epoch 1 is the warm-up; epoch 2 is timed (its images: the whole subset)
    return Measurement("f", batch_size, len(data) / timings[-1], "epoch 2 of 2 timed")


def run_iw_nll(args, batch_size: int) -> Measurement:
    """Importance samples per second of vaelab's IW-NLL (k = 5000 in chunks) on an untrained
    model: samples counted as data points × k."""
    if importlib.util.find_spec("vaelab.evaluation.iw_nll") is None:
        return Measurement("iw", batch_size, None, "vaelab.evaluation.iw_nll absent: skipped")
    from vaelab.evaluation.iw_nll import importance_weighted_log_likelihood

    device = torch.device(args.device)
    cfg = compose(vaelab_overrides(args, batch_size, []), args.scratch / "iw")
    from vaelab.builders import build_module

    images = mnist_train_images(args.data_dir)[:batch_size]
    vae = build_module(cfg, tuple(images.shape[1:])).model.to(device).eval()
    x = (images.float() / 255).to(device)
    num_samples, chunk = 500, 100
    importance_weighted_log_likelihood(vae, x, 10, 10)
    synchronize(device)
    start = time.perf_counter()
    importance_weighted_log_likelihood(vae, x, num_samples, chunk)
    synchronize(device)
    rate = len(x) * num_samples / (time.perf_counter() - start)
    return Measurement("iw", batch_size, rate, f"k={num_samples}, chunk={chunk}")


def paired_compile(args, batch_size: int) -> str:
    """(g)/(d) measured step by step in one process: the (d) run's module built twice by
    vaelab's builders from the same config and seed, once with ``module.compile=true``'s
    compiled loss, trained on the same on-device MNIST batches (loss, backward, Adam step;
    Lightning's loop around them is the same for both and left out). ``--paired-compile``
    rounds each run ``--pair-steps`` steps of one, then of the other (which goes first
    alternates), so a change of the machine's load hits both alike; per round, the ratio of
    their times (wall, and CPU time of all the process's threads). Returns Markdown lines."""
    from vaelab.builders import build_module

    device = torch.device(args.device)
    images = (mnist_train_images(args.data_dir).float() / 255).to(device)
    steps_needed = args.warmup_steps + args.paired_compile * args.pair_steps
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    batches = [
        images.index_select(0, order[start : start + batch_size].to(device))
        for start in ((i * batch_size) % (len(images) - batch_size) for i in range(steps_needed))
    ]
    runs = {}
    for variant, compiled in (("d", "false"), ("g", "true")):
        overrides = ["data.on_device=true", f"module.compile={compiled}"]
        cfg = compose(vaelab_overrides(args, batch_size, overrides), args.scratch / variant)
        torch.manual_seed(0)
        module = build_module(cfg, tuple(images.shape[1:]), {"num_train": len(images)})
        module.to(device).train()
        module.configure_model()  # the compiled loss, as Lightning's fit would make it
        optimizer = torch.optim.Adam(module.model.parameters(), lr=LR)
        runs[variant] = (module, optimizer)

    def train_steps(variant: str, window: list[Tensor]) -> tuple[float, float]:
        module, optimizer = runs[variant]
        synchronize(device)
        wall, cpu = time.perf_counter(), time.process_time()
        for x in window:
            loss = module(x, None, split="train").loss.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        synchronize(device)
        return time.perf_counter() - wall, time.process_time() - cpu

    warmup, rest = batches[: args.warmup_steps], batches[args.warmup_steps :]
    for variant in runs:  # the compiled run compiles here
        train_steps(variant, warmup)
    load_start = os.getloadavg()[0]
    ratios: dict[str, list[float]] = {"wall": [], "cpu": []}
    for round_index in range(args.paired_compile):
        window = rest[round_index * args.pair_steps : (round_index + 1) * args.pair_steps]
        first, second = ("d", "g") if round_index % 2 == 0 else ("g", "d")
        times = {first: train_steps(first, window), second: train_steps(second, window)}
        ratios["wall"].append(times["d"][0] / times["g"][0])
        ratios["cpu"].append(times["d"][1] / times["g"][1])
        print(
            f"[round {round_index + 1}/{args.paired_compile}] batch {batch_size}: (g)/(d) "
            f"wall {ratios['wall'][-1]:.2f}, CPU {ratios['cpu'][-1]:.2f}",
            file=sys.stderr,
            flush=True,
        )
    lines = [
        f"(g)/(d) step by step, batch {batch_size}, {args.paired_compile} rounds of "
        f"{args.pair_steps} steps each, {torch.get_num_threads()} threads, 1-min load "
        f"{load_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end:"
    ]
    for kind, values in ratios.items():
        quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
        lines.append(
            f"  {kind}: median {statistics.median(values):.2f}, quartiles "
            f"{quartiles[0]:.2f}–{quartiles[2]:.2f}, range {min(values):.2f}–{max(values):.2f}"
        )
    return "\n".join(lines)


RUNNERS = {
    "a": run_plain,
    "b": run_seeds,
    "f": run_pythae,
    "c": lambda a, b: run_vaelab(a, b, "c"),
    "d": lambda a, b: run_vaelab(a, b, "d"),
    "e": lambda a, b: run_vaelab(a, b, "e"),
    "g": lambda a, b: run_vaelab(a, b, "g"),
    "l": run_lightning_floor,
}


def _busy_loop() -> None:
    while True:
        pass


def _rate_at(threads: int, args, batch_size: int) -> float:
    torch.set_num_threads(threads)
    return run_plain(args, batch_size).images_per_s or math.nan


def threads_effect(args) -> str:
    """Markdown table: (a)'s images/s per thread setting, without and with added load."""
    import multiprocessing

    from vaelab.threads import plan_threads

    environ = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    settings = {
        f"torch default ({os.cpu_count()})": os.cpu_count() or 1,
        "1": 1,
        "threads=auto": plan_threads("auto", environ=environ).threads,
    }
    batch_size = args.batch_sizes[0]
    lines = [
        f"| machine | load avg (1 min) | torch threads | images/s (median of {args.repeats})"
        " | vs torch default |",
        "|---|---|---|---|---|",
    ]
    for busy in (0, args.busy):
        context = multiprocessing.get_context("spawn")
        hogs = [context.Process(target=_busy_loop, daemon=True) for _ in range(busy)]
        for hog in hogs:
            hog.start()
        try:
            rates = {name: [] for name in settings}
            for _ in range(args.repeats):  # interleaved, so a load change hits every setting
                for name, threads in settings.items():
                    rates[name].append(_rate_at(threads, args, batch_size))
                    print(
                        f"busy {busy}, {name}: {rates[name][-1]:,.0f} images/s",
                        file=sys.stderr,
                        flush=True,
                    )
            load = os.getloadavg()[0]
        finally:
            for hog in hogs:
                hog.terminate()
                hog.join()
        default = statistics.median(next(iter(rates.values())))
        label = f"+{busy} busy processes" if busy else "as found"
        for name, runs in rates.items():
            rate = statistics.median(runs)
            lines.append(f"| {label} | {load:.1f} | {name} | {rate:,.0f} | {rate / default:.2f}× |")
    return "\n".join(lines)


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    return platform.processor() or "unknown CPU"


def paired_ratio(runs: list[Measurement], reference: list[Measurement]) -> float | None:
    """Median over repeats of (variant / (a)) within the same repeat: robust to load drift."""
    ratios = [
        m.images_per_s / r.images_per_s
        for m, r in zip(runs, reference, strict=False)
        if m.images_per_s and r.images_per_s
    ]
    return statistics.median(ratios) if ratios else None


def table(results: dict[tuple[str, int], list[Measurement]], batch_sizes: list[int]) -> str:
    rows = [
        "| variant | batch | images/s (median) | range | ratio to (a) |",
        "|---|---:|---:|---:|---:|",
    ]
    for batch_size in batch_sizes:
        reference = results.get(("a", batch_size), [])
        for variant, label in VARIANTS.items():
            runs = results.get((variant, batch_size))
            if not runs:
                continue
            median = _median(runs)
            if median is None:
                rows.append(f"| ({variant}) {label} | {batch_size} | – | – | {runs[0].note} |")
                continue
            rates = [m.images_per_s for m in runs if m.images_per_s is not None]
            paired = paired_ratio(runs, reference)
            ratio = f"{paired:.2f}" if paired is not None else "–"
            rows.append(
                f"| ({variant}) {label} | {batch_size} | {median:,.0f} | "
                f"{min(rates):,.0f}–{max(rates):,.0f} | {ratio} |"
            )
    return "\n".join(rows)


#: paired ratios printed under the table when both variants ran: vaelab's own cost per step
#: beside Lightning's, and what module.compile=true gains over the same run eager
PAIRED_RATIOS = (("d", "l"), ("g", "d"))


def framework_cost(
    results: dict[tuple[str, int], list[Measurement]], batch_sizes: list[int]
) -> str:
    """(d)/(l) and (g)/(d) per repeat and their medians (each repeat's variants ran one after
    the other, so a load change between repeats cancels out)."""
    lines = []
    for numerator, denominator in PAIRED_RATIOS:
        for batch_size in batch_sizes:
            runs = results.get((numerator, batch_size))
            reference = results.get((denominator, batch_size))
            if not runs or not reference:
                continue
            paired = [
                m.images_per_s / r.images_per_s
                for m, r in zip(runs, reference, strict=False)
                if m.images_per_s and r.images_per_s
            ]
            if paired:
                each = ", ".join(f"{ratio:.2f}" for ratio in paired)
                lines.append(
                    f"({numerator})/({denominator}) at batch {batch_size}: median "
                    f"{statistics.median(paired):.2f} (repeats: {each})"
                )
    return "\n".join(lines)


def _median(runs: list[Measurement]) -> float | None:
    rates = [m.images_per_s for m in runs if m.images_per_s is not None]
    return statistics.median(rates) if rates else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("VAELAB_DATA_DIR", ROOT / "data"))
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--timed-images", type=int, default=40_960)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default=None, help="torch.set_num_threads: N or auto")
    parser.add_argument("--threads-effect", action="store_true")
    parser.add_argument(
        "--busy", type=int, default=os.cpu_count() or 1, help="busy processes for --threads-effect"
    )
    parser.add_argument("--pythae-path", type=Path, default=None)
    parser.add_argument("--iw-nll", action="store_true")
    parser.add_argument("--profile", choices=list(VARIANTS), default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    parser.add_argument(
        "--paired-compile",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="(g)/(d) step by step in one process, interleaved in ROUNDS rounds",
    )
    parser.add_argument("--pair-steps", type=int, default=5, help="steps per round")
    args = parser.parse_args()
    if args.warmup_steps < 1:  # ThroughputMonitor's window starts at the end of a batch
        parser.error("--warmup-steps must be at least 1")
    if args.threads_effect:
        print(
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
            f"torch {torch.__version__}; batch {args.batch_sizes[0]}, variant (a)"
        )
        print(threads_effect(args))
        return
    if args.threads == "auto":
        from vaelab.threads import configure_threads

        configure_threads("auto")
    elif args.threads:
        torch.set_num_threads(int(args.threads))
    args.scratch = Path(tempfile.mkdtemp(prefix="vaelab_bench_"))
    try:
        if args.paired_compile:
            print(
                f"device: {device_name(args.device)}; torch {torch.__version__}; "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
            )
            for batch_size in args.batch_sizes:
                print(paired_compile(args, batch_size))
            return
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(RUNNERS[args.profile], args, args.batch_sizes[0])
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            return
        results: dict[tuple[str, int], list[Measurement]] = {}
        for repeat in range(args.repeats):
            for batch_size in args.batch_sizes:
                for variant in args.variants:
                    if (
                        variant == "f"
                        and repeat
                        and not _median(results.get(("f", batch_size), []))
                    ):
                        continue
                    m = RUNNERS[variant](args, batch_size)
                    results.setdefault((variant, batch_size), []).append(m)
                    print(
                        f"[{repeat + 1}/{args.repeats}] ({variant}) batch {batch_size}: "
                        f"{m.images_per_s or float('nan'):,.0f} images/s {m.note}",
                        file=sys.stderr,
                        flush=True,
                    )
        print(
            f"device: {device_name(args.device)}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads; 1-min load average at the end: "
            f"{os.getloadavg()[0]:.2f}"
        )
        print(table(results, args.batch_sizes))
        print(framework_cost(results, args.batch_sizes))
        if args.iw_nll:
            for batch_size in args.batch_sizes:
                m = run_iw_nll(args, batch_size)
                rate = f"{m.images_per_s:,.0f}" if m.images_per_s else "–"
                print(f"\nIW-NLL evaluation, batch {batch_size}: {rate} samples/s ({m.note})")
        if args.json:
            args.json.write_text(
                json.dumps(
                    {f"{v}@{b}": [asdict(m) for m in runs] for (v, b), runs in results.items()},
                    indent=2,
                )
            )
    finally:
        shutil.rmtree(args.scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
