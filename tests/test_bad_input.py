"""Bad input gets one clear error that says what is wrong and how to fix it, no traceback
wall, and nothing the user had is lost (docs/reliability.md lists these cases)."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import FAST, compose_config
from vaelab.checkpoints import check_compatible, load_checkpoint
from vaelab.data.image_datamodule import ImageDataModule, ImageSplit
from vaelab.data.mnist import MNISTDataModule
from vaelab.errors import VaelabError
from vaelab.module import NonFiniteLossError
from vaelab.paths import PROJECT_ROOT
from vaelab.train import train

CLI_FAST = ["print_config=false", "callbacks.progress_bar=null", "data.download=false"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "vaelab.train", *CLI_FAST, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=300,
    )


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("vaelab: error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    return errors[0]


# 1. data dir missing or empty, downloading off -------------------------------------------
@pytest.mark.parametrize("make_empty", [False, True])
def test_missing_or_empty_data_dir(tmp_path, make_empty):
    data_dir = tmp_path / "data"
    if make_empty:
        (data_dir / "MNIST" / "raw").mkdir(parents=True)
    with pytest.raises(VaelabError) as err:
        MNISTDataModule(data_dir=str(data_dir), download=False).setup()
    message = str(err.value)
    assert "MNIST data not found" in message
    assert str(data_dir / "MNIST" / "raw") in message
    assert "t10k-images-idx3-ubyte" in message or "train-images-idx3-ubyte" in message
    assert "VAELAB_DATA_DIR" in message


# 2. truncated or corrupted files --------------------------------------------------------
@pytest.fixture
def mnist_copy(mnist_data_dir, tmp_path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(mnist_data_dir, root)
    return root


def test_truncated_gz_fails_the_md5_check(mnist_copy):
    path = mnist_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(VaelabError, match=r"t10k-labels-idx1-ubyte\.gz is corrupted.*md5"):
        MNISTDataModule(data_dir=str(mnist_copy), download=False).setup()


def test_truncated_extracted_idx_names_header_and_size(mnist_copy):
    raw = mnist_copy / "MNIST" / "raw"
    gz = raw / "t10k-images-idx3-ubyte.gz"
    content = gzip.decompress(gz.read_bytes())
    gz.unlink()
    (raw / "t10k-images-idx3-ubyte").write_bytes(content[: len(content) // 3])
    with pytest.raises(VaelabError) as err:
        MNISTDataModule(data_dir=str(mnist_copy), download=False).setup()
    assert "truncated or corrupted" in str(err.value)
    assert "[10000, 28, 28]" in str(err.value)
    assert "download it again" in str(err.value)


def test_not_an_idx_file(mnist_copy):
    raw = mnist_copy / "MNIST" / "raw"
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    (raw / "t10k-labels-idx1-ubyte").write_text("<html>404 not found</html>")
    with pytest.raises(VaelabError, match="not an IDX file"):
        MNISTDataModule(data_dir=str(mnist_copy), download=False).setup()


# 3. a model whose shapes do not fit the data ----------------------------------------------
@pytest.mark.slow
def test_model_input_shape_override_that_contradicts_the_data(mnist_data_dir, tmp_path):
    line = _one_error_line(
        _cli(
            f"paths.data_dir={mnist_data_dir}",
            f"hydra.run.dir={tmp_path}",
            "+model.input_shape=[1,32,32]",
        )
    )
    assert "model.input_shape=[1, 32, 32] does not match the data" in line
    assert "(1, 28, 28)" in line


def test_network_that_cannot_produce_the_data_shape_is_refused_at_build_time():
    from torch import nn

    from vaelab.models.vae import VAE
    from vaelab.nets.networks import EncoderDecoder

    def wrong_decoder(latent_dim, encoder_out_features, **_sizes):
        return EncoderDecoder(
            encoder=nn.Sequential(nn.Flatten(), nn.LazyLinear(encoder_out_features)),
            decoder=nn.Sequential(nn.Linear(latent_dim, 32 * 32), nn.Unflatten(1, (1, 32, 32))),
        )

    with pytest.raises(VaelabError, match=r"decoder outputs \(1, 32, 32\).*\(1, 28, 20\)"):
        VAE(net=wrong_decoder, latent_dim=2, input_shape=(1, 28, 20))


# 4. invalid values, caught before any data is loaded -------------------------------------
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.latent_dim=0", "model.latent_dim=0 must be an integer >= 1"),
        ("beta.value=-0.5", "beta.value=-0.5 must be a number >= 0"),
        ("optimizer.lr=0", "optimizer.lr=0 must be a number > 0"),
        ("objective.num_samples=0", "objective.num_samples=0 must be an integer >= 1"),
        ("data.val_size=1.5", "data.val_size=1.5 must be an integer >= 1 or a number in (0, 1)"),
        ("data.batch_size=0", "data.batch_size=0 must be an integer >= 1"),
    ],
)
def test_invalid_values_are_named_before_data_is_loaded(override, expected, tmp_path):
    # the data dir does not exist: the config error must come first
    cfg = compose_config(
        [*FAST, f"paths.data_dir={tmp_path / 'absent'}", override], tmp_path / "run"
    )
    with pytest.raises(VaelabError) as err:
        train(cfg)
    assert expected in str(err.value)
    assert str(err.value).startswith("invalid config:")


def test_batch_size_larger_than_the_dataset(mnist_data_dir, tmp_path):
    cfg = compose_config(
        [*FAST, f"paths.data_dir={mnist_data_dir}", "data.batch_size=60000"], tmp_path / "run"
    )
    with pytest.raises(VaelabError, match=r"data\.batch_size=60000 is larger than the training"):
        train(cfg)


@pytest.mark.slow
def test_invalid_value_on_the_command_line_is_one_line(tmp_path):
    line = _one_error_line(
        _cli(
            f"paths.data_dir={tmp_path}",
            f"hydra.run.dir={tmp_path / 'r'}",
            "model.latent_dim=-3",
            "optimizer.lr=-1",
        )
    )
    assert "model.latent_dim=-3" in line
    assert "optimizer.lr=-1" in line


# 5. unknown group option ----------------------------------------------------------------
@pytest.mark.slow
def test_unknown_group_option_lists_the_valid_ones(tmp_path):
    line = _one_error_line(_cli(f"hydra.run.dir={tmp_path}", "likelihood=bernouli"))
    assert "Could not find 'likelihood/bernouli'" in line
    assert "Available options in 'likelihood': bernoulli, continuous_bernoulli," in line


# 6. NaN / Inf in the loss ----------------------------------------------------------------
def test_nan_loss_stops_at_that_step_naming_term_and_last_checkpoint(
    mnist_data_dir, tmp_path, monkeypatch
):
    from vaelab.likelihoods.bernoulli import BernoulliLikelihood

    calls = {"train": 0}
    real = BernoulliLikelihood.log_prob

    def poisoned(self, decoder_output, x):
        value = real(self, decoder_output, x)
        if torch.is_grad_enabled():
            calls["train"] += 1
            if calls["train"] == 13:  # the 13th training step: step index 12, epoch 1
                return value * float("nan")
        return value

    monkeypatch.setattr(BernoulliLikelihood, "log_prob", poisoned)
    cfg = compose_config(
        [
            *FAST,
            f"paths.data_dir={mnist_data_dir}",
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=10",
            "trainer.limit_val_batches=2",
        ],
        tmp_path / "run",
    )
    with pytest.raises(NonFiniteLossError) as err:
        train(cfg)
    message = str(err.value)
    assert "became nan at step 12 (epoch 1)" in message
    assert "non-finite term: recon" in message
    last_good = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert f"Last good checkpoint: {last_good}" in message
    assert "trainer.detect_anomaly=true" in message
    assert torch.load(last_good, weights_only=True)["global_step"] == 10  # intact


# 7. NaN in the input data ----------------------------------------------------------------
class _FloatImages(ImageDataModule):
    image_shape = (1, 4, 4)

    def load_train(self) -> ImageSplit:
        images = torch.rand(50, 1, 4, 4)
        images[7, 0, 1, 2] = float("nan")
        return ImageSplit(images, torch.zeros(50, dtype=torch.long))

    def load_test(self) -> None:
        return None


def test_nan_in_input_data_is_refused():
    with pytest.raises(VaelabError, match="train images contain NaN or Inf"):
        _FloatImages(data_dir="unused", val_size=10, batch_size=5).setup()


# 8. a checkpoint of another model --------------------------------------------------------
@pytest.mark.slow
def test_checkpoint_of_another_model_is_refused(mnist_data_dir, tmp_path):
    cfg = compose_config(
        [
            *FAST,
            f"paths.data_dir={mnist_data_dir}",
            "trainer.max_steps=2",
            "trainer.limit_val_batches=1",
            "test=false",
        ],
        tmp_path / "first",
    )
    train(cfg)
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    line = _one_error_line(
        _cli(
            f"paths.data_dir={mnist_data_dir}",
            f"hydra.run.dir={tmp_path / 'second'}",
            f"ckpt_path={ckpt}",
            "model.latent_dim=5",
            "resume=force",  # past the run dir's own refusal (tests/test_run_config.py)
        )
    )
    assert "was written by a different model or config" in line
    assert "model.decoder.net.0.weight has shape [200, 2] there but [200, 5] here" in line
    assert str(tmp_path / "first" / "config.yaml") in line


# 9. not a checkpoint: random bytes, a pickle with a code payload ---------------------------
class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_random_bytes_are_refused(tmp_path):
    path = tmp_path / "random.ckpt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(VaelabError, match=r"refused to load .*random\.ckpt"):
        load_checkpoint(path)


@pytest.mark.slow
def test_pickle_with_code_payload_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "marker.txt"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, evil)
    with pytest.raises(VaelabError, match="nothing in it was executed"):
        load_checkpoint(evil)
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(pickle.dumps(_Payload(marker)))
    line = _one_error_line(
        _cli(
            f"hydra.run.dir={tmp_path / 'run'}", f"ckpt_path={plain}", f"paths.data_dir={tmp_path}"
        )
    )
    assert "refused to load" in line
    assert not marker.exists()


def test_compatible_checkpoint_passes_the_check():
    from torch import nn

    module = nn.Linear(3, 2)
    check_compatible({"state_dict": module.state_dict()}, module, "x.ckpt")  # no error


# 10. unwritable output dir ---------------------------------------------------------------
def test_unwritable_output_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cfg = compose_config([*FAST, f"paths.data_dir={tmp_path / 'absent'}"], tmp_path / "run")
    cfg.paths.output_dir = str(blocker / "run")
    with pytest.raises(VaelabError, match=r"cannot write to the run directory .*a_file/run"):
        train(cfg)
    assert blocker.read_text() == "not a folder"
