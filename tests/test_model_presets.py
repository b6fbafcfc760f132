"""The model presets (conf/model/*.yaml), a cross-cutting suite: every preset trains one step on
a tiny real batch of its data shape; lvm_mlp clamps gradients like Pyro's ClippedAdam; 1-epoch
real MNIST runs with continuous Bernoulli and the per-pixel Gaussian stay finite and improve the
validation ELBO."""

from __future__ import annotations

import copy
import math

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch.utils.data import DataLoader, TensorDataset
from typing_extensions import override

from tests.conftest import FAST, compose_config
from vaelab.builders import build_module
from vaelab.data.idx_datamodule import read_images

TINY_BATCH = 32
PIXEL_MAX = 255.0


@pytest.fixture(scope="module")
def real_batches(mnist_data_dir, frey_data_dir) -> dict[str, torch.Tensor]:
    """Tiny real batches in [0, 1]: MNIST 28×28, MNIST padded to 32×32 (seed 000's padding),
    Frey faces 28×20, and a random colour 3×32×32 batch for the shape of CIFAR-like data."""
    digits = read_images(mnist_data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")
    mnist = digits[:TINY_BATCH].float().unsqueeze(1) / PIXEL_MAX
    faces = np.load(frey_data_dir / "frey" / "frey_faces.npy")[:TINY_BATCH]
    generator = torch.Generator().manual_seed(0)
    return {
        "mnist28": mnist,
        "mnist32": F.pad(mnist, (2, 2, 2, 2)),
        "frey": torch.from_numpy(faces).float().unsqueeze(1) / PIXEL_MAX,
        "rgb32": torch.rand(TINY_BATCH, 3, 32, 32, generator=generator),
    }


def quiet_trainer(cfg, **overrides) -> L.Trainer:
    """The configured trainer without loggers, checkpoints or progress output."""
    settings = {
        "logger": False,
        "callbacks": [],
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "accelerator": "cpu",
        **overrides,
    }
    return instantiate(cfg.trainer, **settings)


def batch_loss(module, x: torch.Tensor) -> float:
    """The training loss on ``x`` with fixed noise (train mode: BatchNorm uses batch stats)."""
    torch.manual_seed(123)
    module.train()
    with torch.no_grad():
        return module(x).loss.mean().item()


LVM_CLIP = 10.0
LVM_MLP_OVERRIDES = [
    "model.posterior.parameterization=log_scale",
    "objective.num_samples=5",
    "optimizer.lr=0.01",
    f"trainer.gradient_clip_val={LVM_CLIP}",
    "trainer.gradient_clip_algorithm=value",
]
PRESET_RUNS = [
    ("mlp", [], "mnist28"),
    ("lecture_mlp", [], "mnist28"),
    # seed 000's Pyro VAE: exp-scale encoder, Trace_ELBO (Monte-Carlo KL)
    (
        "pyro_mlp",
        ["model.posterior.parameterization=log_scale", "objective.kl=monte_carlo"],
        "mnist28",
    ),
    # seed 002: L = 5, lr 0.01
    ("kw_mlp", ["objective.num_samples=5", "optimizer.lr=0.01"], "mnist28"),
    # seed 003: Frey faces, sigmoid mean + learned log-std per pixel
    ("frey_mlp", ["likelihood=gaussian_learned_per_pixel"], "frey"),
    # seed 004: exp-scale encoder, 5 vectorised particles, ClippedAdam = Adam + clamping each
    # gradient element to [−10, 10] (as experiment=lvm_mnist)
    ("lvm_mlp", LVM_MLP_OVERRIDES, "mnist28"),
    ("burda_mlp", ["objective=iwae", "objective.num_samples=5"], "mnist28"),
    ("conv", [], "mnist28"),
    # latents on the sphere (vMF, uniform prior) and the Poincaré ball (wrapped normals)
    ("hyperspherical_mlp", [], "mnist28"),
    ("poincare_mlp", [], "mnist28"),
    ("conv", [], "mnist32"),
    ("conv", ["likelihood=gaussian_learned_per_pixel"], "rgb32"),
]


@pytest.mark.parametrize(
    ("preset", "overrides", "data"), PRESET_RUNS, ids=[f"{p}-{d}" for p, _, d in PRESET_RUNS]
)
def test_preset_trains_one_step_on_a_real_batch(tmp_path, real_batches, preset, overrides, data):
    x = real_batches[data]
    cfg = compose_config([*FAST, f"model={preset}", *overrides], tmp_path)
    L.seed_everything(0)
    module = build_module(cfg, x.shape[1:])
    before = batch_loss(module, x)
    labels = torch.zeros(len(x), dtype=torch.long)
    trainer = quiet_trainer(cfg, max_steps=1, limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(module, train_dataloaders=DataLoader(TensorDataset(x, labels), batch_size=len(x)))
    assert trainer.global_step == 1
    after = batch_loss(module, x)
    assert math.isfinite(before)
    assert math.isfinite(after)
    assert after < before, (before, after)
    module.eval()
    with torch.no_grad():
        assert module.model.reconstruct(x).shape == x.shape
        assert module.model.sample(4).shape == (4, *x.shape[1:])


class GradientProbe(L.Callback):
    """Test probe: the flattened gradients before the trainer clips them and after the step."""

    def __init__(self) -> None:
        self.raw: torch.Tensor | None = None
        self.clipped: torch.Tensor | None = None

    @staticmethod
    def _gradients(module) -> torch.Tensor:
        return torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])

    @override
    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.raw = self._gradients(pl_module).clone()  # Lightning clips after this hook

    @override
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.clipped = self._gradients(pl_module).clone()


def test_lvm_mlp_preset_clamps_each_gradient_element_like_pyros_clipped_adam(
    tmp_path, real_batches
):
    """ClippedAdam's clip_norm clamps elements; it never rescales the gradient's norm."""
    x = real_batches["mnist28"]
    cfg = compose_config([*FAST, "model=lvm_mlp", *LVM_MLP_OVERRIDES], tmp_path)
    assert cfg.trainer.gradient_clip_algorithm == "value"
    L.seed_everything(0)
    probe = GradientProbe()
    trainer = quiet_trainer(
        cfg, max_steps=1, limit_val_batches=0, num_sanity_val_steps=0, callbacks=[probe]
    )
    labels = torch.zeros(len(x), dtype=torch.long)
    module = build_module(cfg, x.shape[1:])
    trainer.fit(module, train_dataloaders=DataLoader(TensorDataset(x, labels), batch_size=len(x)))
    torch.testing.assert_close(probe.clipped, probe.raw.clamp(-LVM_CLIP, LVM_CLIP))
    # the first step's gradient norm is far above 10: norm clipping would have rescaled it
    assert probe.raw.norm() > 2 * LVM_CLIP
    assert probe.clipped.norm() > 2 * LVM_CLIP


@pytest.fixture(scope="module")
def mnist_datamodule(mnist_data_dir, tmp_path_factory):
    """The configured MNIST datamodule (55k/5k split), set up once for the real runs."""
    cfg = compose_config(
        [*FAST, f"paths.data_dir={mnist_data_dir}"], tmp_path_factory.mktemp("mnist_dm")
    )
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    return datamodule


@pytest.mark.parametrize("likelihood", ["continuous_bernoulli", "gaussian_learned_per_pixel"])
def test_one_epoch_real_run_is_finite_and_improves_val_elbo(tmp_path, mnist_datamodule, likelihood):
    """One epoch limited to 60 steps of the default lecture VAE on real MNIST grey levels."""
    cfg = compose_config(
        [
            *FAST,
            f"likelihood={likelihood}",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=60",
            "trainer.limit_val_batches=1",
            "trainer.num_sanity_val_steps=0",
        ],
        tmp_path,
    )
    L.seed_everything(cfg.seed)
    module = build_module(cfg, mnist_datamodule.dims)
    # the untrained copy is scored by its own trainer (a module validated in inference mode
    # cannot update its metric states in a later fit)
    initial = copy.deepcopy(module)
    before = quiet_trainer(cfg).validate(initial, datamodule=mnist_datamodule, verbose=False)[0]
    trainer = quiet_trainer(cfg)
    trainer.fit(module, datamodule=mnist_datamodule)
    after = {name: float(value) for name, value in trainer.callback_metrics.items()}
    assert trainer.global_step == 60
    assert all(math.isfinite(v) for v in [*before.values(), *after.values()]), after
    assert after["val/elbo"] > before["val/elbo"] + 50.0, (before, after)
    assert after["val/kl"] > 0
    assert after["val/elbo"] == pytest.approx(-(after["val/recon"] + after["val/kl"]), abs=1e-2)
