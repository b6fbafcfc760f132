"""Shared fixtures: real data copied to temp dirs, and configs composed from the real conf/.

Tests never download: data fixtures copy the read-only reference files from
``$VAELAB_DATA_DIR`` (the variable vaelab itself reads; default ``../shared/data`` beside the
checkout) and every datamodule gets ``download=false``.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from vaelab.paths import CONFIG_DIR, PROJECT_ROOT, export_project_root
from vaelab.train import train

export_project_root()

#: the variable that names the reference data, for vaelab and its tests alike
DATA_DIR_VARIABLE = "VAELAB_DATA_DIR"


def reference_data_dir() -> Path:
    """Where the read-only reference data sets are: ``$VAELAB_DATA_DIR``, else
    ``../shared/data`` beside the checkout."""
    configured = os.environ.get(DATA_DIR_VARIABLE)
    return Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "data"


SHARED_DATA = reference_data_dir()

#: overrides that make any training config small and quiet enough for a test
FAST = [
    "print_config=false",
    "callbacks.progress_bar=null",
    "data.download=false",
    "data.num_workers=0",
    "trainer.accelerator=cpu",
    "trainer.enable_model_summary=false",
]


def _copy_tree(src: Path, dst: Path) -> Path:
    if not src.exists():
        pytest.skip(
            f"reference data {src} is not on this machine; set {DATA_DIR_VARIABLE} to the "
            "folder that holds it"
        )
    shutil.copytree(src, dst, dirs_exist_ok=True)
    for path in dst.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dst


@pytest.fixture(scope="session")
def mnist_data_dir(tmp_path_factory) -> Path:
    """A data dir holding ``MNIST/raw/*.gz`` (a private copy of the real files)."""
    root = tmp_path_factory.mktemp("mnist_data")
    _copy_tree(SHARED_DATA / "MNIST" / "raw", root / "MNIST" / "raw")
    return root


@pytest.fixture(scope="session")
def frey_data_dir(tmp_path_factory) -> Path:
    """A data dir holding ``frey/frey_rawface.mat`` and ``frey/frey_faces.npy``."""
    root = tmp_path_factory.mktemp("frey_data")
    _copy_tree(SHARED_DATA / "frey", root / "frey")
    return root


def compose_config(
    overrides: Sequence[str], output_dir: Path, config_name: str = "train"
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` as the CLI would, with the run dir at ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir.parent)
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):  # the task function of a real run sees no `hydra` key either
        del cfg["hydra"]
    return cfg


@pytest.fixture
def make_config(tmp_path) -> Callable[..., DictConfig]:
    """``make_config(*overrides, data_dir=None)``: a composed training config in a tmp run dir
    with :data:`FAST` applied."""

    def _make(*overrides: str, data_dir: Path | None = None, name: str = "run") -> DictConfig:
        extra = [f"paths.data_dir={data_dir}"] if data_dir is not None else []
        fast = FAST
        if any(o.startswith("callbacks=") for o in overrides):  # another callbacks set
            fast = [o for o in FAST if not o.startswith("callbacks.")]
        return compose_config([*fast, *extra, *overrides], tmp_path / name)

    return _make


#: a short run whose every step is reproducible (MNIST, dynamic binarization, a β warm-up)
DETERMINISTIC = [
    *FAST,
    "trainer.deterministic=true",
    "trainer.limit_train_batches=15",
    "trainer.limit_val_batches=3",
    "trainer.log_every_n_steps=5",
    "test=false",
    "beta=linear_warmup",
    "beta.warmup_steps=40",
    "data.binarize=dynamic",
]


def eval_config(ckpt_path: Path, data_dir: Path, *overrides: str):
    """A small vaelab-eval config for the run whose checkpoint is ``ckpt_path``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(
            "eval",
            overrides=[
                f"ckpt_path={ckpt_path}",
                f"data_dir={data_dir}",
                "eval.num_samples=64",
                "eval.chunk_size=32",
                "eval.batch_size=250",
                "eval.limit_batches=2",
                "print_summary=false",
                *overrides,
            ],
        )


#: the short digits run of :func:`digits_run`: its epochs, and its training batches per epoch
SHORT_RUN_EPOCHS = 2
SHORT_RUN_TRAIN_BATCHES = 15  # 1437 training images, batch 100


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A 2-epoch digits run with images due every 10 epochs and line progress every 5 steps:
    ``(run_dir, metrics, stdout)``, read by the tests of the callbacks that wrote them."""

    run_dir = tmp_path_factory.mktemp("short_output") / "run"
    overrides = [o for o in FAST if not o.startswith("callbacks.progress_bar")]
    cfg = compose_config(
        [
            *overrides,
            "data=digits",
            f"trainer.max_epochs={SHORT_RUN_EPOCHS}",
            "trainer.log_every_n_steps=50",
            "callbacks.image_logger.every_n_epochs=10",
            "callbacks.progress_bar.force=lines",
            "callbacks.progress_bar.every_n_steps=5",
            "test=false",
        ],
        run_dir,
    )
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        metrics = train(cfg)
    return run_dir, metrics, output.getvalue()


def random_images(count: int, *shape: int, seed: int = 0) -> np.ndarray:
    """``count`` seeded random uint8 images of ``shape`` (for data files written by tests)."""
    return np.random.default_rng(seed).integers(0, 256, (count, *shape), dtype=np.uint8)


# -- full disks and torn checkpoints ---------------------------------------------------------
class _FileThatFails:
    """A file object whose write writes the first ``limit`` bytes, then raises ``error``."""

    def __init__(self, handle, limit: int, error: BaseException) -> None:
        self.handle, self.limit, self.error = handle, limit, error

    def write(self, data) -> int:
        self.handle.write(bytes(data)[: self.limit])
        raise self.error

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


def failing_writes(monkeypatch, limit: int, error: BaseException) -> None:
    """Make the next ``os.fdopen`` files (atomic_io's temp files) fail mid-write."""
    real_fdopen = os.fdopen
    monkeypatch.setattr(
        os, "fdopen", lambda fd, *a, **k: _FileThatFails(real_fdopen(fd, *a, **k), limit, error)
    )


#: options that train one model only, composed with it (objective=vq: a quantised q(z|x))
MODEL_OF_OPTION = {
    ("objective", "vq"): "model=vqvae",
    # categorical codes: the Gumbel-softmax VAE and JointVAE (a code with discrete blocks)
    ("posterior", "categorical"): "model=gumbel_vae",
    ("posterior", "joint"): "model=joint_vae",
    ("prior", "categorical"): "model=gumbel_vae",
    ("objective", "joint_capacity"): "model=joint_vae",
    # a latent on a sphere or a ball: the model that pairs the posterior with its prior
    ("posterior", "von_mises_fisher"): "model=hyperspherical_mlp",
    ("prior", "spherical_uniform"): "model=hyperspherical_mlp",
    ("posterior", "wrapped_normal"): "model=poincare_mlp",
    ("prior", "wrapped_normal"): "model=poincare_mlp",
    # weak supervision trains on pairs of observations: a factor data set that gives them
    ("objective", "ada_gvae"): "data=xy_object data.changed_factors=random",
    ("objective", "ada_ml_vae"): "data=xy_object data.changed_factors=random",
}
