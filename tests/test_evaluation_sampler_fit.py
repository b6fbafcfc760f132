"""vaelab.evaluation.sampler_fit and vaelab-eval's sampler= : every option through vaelab-eval on
a short digits run, the fit saved beside the checkpoint and reused (fits counted), the one
hook (``Sampler.pictures``) behind the sample grid and FID, the refusals, and a slow MNIST
check that FID with sampler=gmm is computed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.conftest import FAST, compose_config, eval_config
from vaelab.errors import VaelabError
from vaelab.eval import evaluate
from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
from vaelab.evaluation.conditional import SampleQualityMetric
from vaelab.evaluation.encodings import prepare_batch
from vaelab.evaluation.feature_extractors import CLASSIFIER_DIR
from vaelab.evaluation.sample_quality import model_samples
from vaelab.evaluation.sampler_fit import sampler_file
from vaelab.models.interface import LatentStructure
from vaelab.samplers.gmm import GaussianMixtureSampler
from vaelab.train import train

#: each option, with settings that fit in a fraction of a second on digits' 1437 codes
#: (sampler=pixelcnn needs a code grid: tests/test_samplers_pixelcnn.py evaluates a VQ-VAE)
OPTIONS = {
    "prior": [],
    "gmm": ["sampler.num_components=3"],
    "maf": ["sampler.epochs=1", "sampler.num_flows=2", "sampler.hidden_dims=[16]"],
    "iaf": ["sampler.epochs=1", "sampler.num_flows=2", "sampler.hidden_dims=[16]"],
    "two_stage": ["sampler.epochs=1", "sampler.hidden_dims=[16]"],
    "vamp": ["sampler.num_components=20"],
}
QUICK = [
    "eval.num_samples=2",
    "eval.elbo_samples=1",
    "eval.limit_batches=1",
    "eval.figures=false",
    "eval.tensorboard=false",
]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared CPU two threads of small matrix products thrash."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def run_copy(digits_run, tmp_path) -> Path:
    """A copy of the short digits run, so that its sampler files stay in this test."""
    return shutil.copytree(
        digits_run[0], tmp_path / "run", ignore=shutil.ignore_patterns("events.out.*", "images")
    )


def _tiny_feature_space(monkeypatch) -> None:
    """A fixed random linear feature map of digits' 8×8 images, as the FID's feature space."""
    torch.manual_seed(0)
    extractor = nn.Sequential(nn.Flatten(), nn.Linear(64, 6))
    monkeypatch.setattr(SampleQualityMetric, "_extractor", lambda *_: extractor)


@pytest.mark.parametrize("option", list(OPTIONS))
def test_each_sampler_option_through_vaelab_eval(option, run_copy, tmp_path):
    overrides = [f"sampler={option}", *OPTIONS[option], *QUICK]
    metrics = evaluate(eval_config(run_copy, tmp_path, *overrides))
    assert metrics["sampler"]["name"] == option
    saved = sampler_file(Path(metrics["checkpoint"]), option)
    if option == "prior":
        assert not metrics["sampler"]["fitted_now"]
        assert not saved.exists()
        return
    assert metrics["sampler"]["fitted_now"]
    assert metrics["sampler"]["num_codes"] == 1437  # digits' training split
    assert saved.is_file()
    stored = torch.load(saved, weights_only=True)  # tensors and plain values only
    assert stored["sampler"] == option


def test_the_second_evaluation_reuses_the_saved_fit(run_copy, tmp_path, monkeypatch, capsys):
    fits = []
    original = GaussianMixtureSampler.fit
    monkeypatch.setattr(
        GaussianMixtureSampler,
        "fit",
        lambda self, codes, generator: (
            fits.append(len(codes.mean)) or original(self, codes, generator)
        ),
    )
    _tiny_feature_space(monkeypatch)
    overrides = [*QUICK, "eval.sample_quality.num_samples=200"]
    first = evaluate(eval_config(run_copy, tmp_path, "sampler=gmm", *overrides))
    second = evaluate(
        eval_config(run_copy, tmp_path, "sampler=gmm", *overrides, "eval.figures=true")
    )
    assert fits == [1437]
    assert first["sampler"]["fitted_now"]
    assert not second["sampler"]["fitted_now"]
    assert "reused from" in capsys.readouterr().out
    # the reused sampler draws exactly what the fitted one drew
    assert second["fid"] == first["fid"]
    assert Path(second["figures"]["samples_gmm"]).is_file()
    # other settings: fitted again
    third = evaluate(
        eval_config(run_copy, tmp_path, "sampler=gmm", "sampler.num_components=2", *overrides)
    )
    assert fits == [1437, 1437]
    assert third["sampler"]["fitted_now"]
    # each sampler's scores are kept beside the others' for vaelab-report
    prior = evaluate(eval_config(run_copy, tmp_path, "sampler=prior", *overrides))
    assert set(prior["samplers"]) == {"gmm", "prior"}
    assert prior["samplers"]["gmm"]["fid"] == third["fid"]
    assert prior["samplers"]["prior"]["fid"] == prior["fid"] != third["fid"]


def test_fid_and_the_sample_grid_draw_their_codes_from_the_sampler(run_copy):
    run = load_run(locate_checkpoint(run_copy), torch.device("cpu"))
    model = run.module.model
    sampler = GaussianMixtureSampler(num_components=2)
    codes = torch.randn(300, 2) * torch.tensor([3.0, 0.1]) + 5.0
    from vaelab.samplers.base import TrainingCodes

    sampler.fit(TrainingCodes(mean=codes), torch.Generator().manual_seed(0))
    drawn = model_samples(model, 7, seed=3, sampler=sampler)[0]
    torch.manual_seed(3)
    expected = model.decode(sampler.sample(7)).mean
    assert torch.equal(drawn, expected)
    assert not torch.equal(drawn, model_samples(model, 7, seed=3)[0])


def test_a_latent_with_layers_is_refused_in_one_line():
    class Layered:
        latent_structure = LatentStructure(layers=(4, 2), code_dim=4)

    with pytest.raises(VaelabError, match=r"sampler=gmm draws one flat code.*use sampler=prior"):
        GaussianMixtureSampler().check_model(Layered())


@pytest.mark.slow
def test_fid_with_gmm_is_computed_on_mnist(mnist_data_dir, tmp_path):
    common = [*FAST, f"paths.data_dir={mnist_data_dir}", f"paths.log_dir={tmp_path}"]
    short = ["trainer.max_epochs=1", "trainer.limit_val_batches=2", "trainer.limit_test_batches=1"]
    train(
        compose_config(
            [
                *common,
                "experiment=feature_classifier_mnist",
                "trainer.limit_train_batches=200",
                *short,
            ],
            tmp_path / CLASSIFIER_DIR / "mnist",
        )
    )
    train(
        compose_config(
            [
                *common,
                "model.latent_dim=10",
                "trainer.limit_train_batches=100",
                "callbacks.image_logger=null",
                "callbacks.encoding_snapshot=null",
                *short,
            ],
            tmp_path / "vae",
        )
    )
    overrides = [
        "eval.num_samples=1",
        "eval.elbo_samples=1",
        "eval.limit_batches=10",
        "eval.figures=false",
        "eval.tensorboard=false",
        "eval.sample_quality.num_samples=1000",
        "eval.sample_quality.enabled=true",
        "eval.sampler_fit.max_codes=5000",
    ]
    metrics = evaluate(eval_config(tmp_path / "vae", mnist_data_dir, "sampler=gmm", *overrides))
    assert metrics["sampler"]["num_codes"] == 5000
    assert 0 < metrics["fid"] < 1000
    assert 0 <= metrics["precision"] <= 1
    assert 0 <= metrics["recall"] <= 1
    assert metrics["samplers"]["gmm"]["fid"] == metrics["fid"]


def test_a_model_without_a_prior_is_evaluated_and_sampled_through_its_fitted_sampler(tmp_path):
    """An RAE (no p(z)): vaelab-eval reports its reconstruction −log p(x|z = code), says why
    there is no IW-NLL, ELBO or KL, and draws its samples from the sampler fitted to its codes
    (Ghosh et al.'s ex-post density estimation), the fit stored beside the checkpoint."""
    run_dir = tmp_path / "rae"
    train(
        compose_config(
            [*FAST, "data=digits", "model=rae_l2", "trainer.max_epochs=1", "test=false"], run_dir
        )
    )
    overrides = ["sampler=gmm", *OPTIONS["gmm"], *QUICK]
    metrics = evaluate(eval_config(run_dir, tmp_path, *overrides))
    assert metrics["has_prior"] is False
    assert metrics["iw_nll"] is None
    assert metrics["elbo"] is None
    assert metrics["kl"] is None
    assert "no prior p(z)" in metrics["notes"]["iw_nll"]
    run = load_run(locate_checkpoint(run_dir), torch.device("cpu"))
    model = run.module.model
    batch = next(iter(run.datamodule.test_dataloader()))
    x = prepare_batch(run.datamodule, batch, torch.device("cpu"))[0][: metrics["num_points"]]
    by_hand = -model.decode(model.encode(x).mean).log_prob(x)
    assert metrics["recon"] == pytest.approx(float(by_hand.mean()), rel=1e-4)
    assert metrics["loss"] == metrics["recon"]
    assert metrics["sampler"]["fitted_now"]
    assert metrics["sampler"]["num_codes"] == 1437
    assert sampler_file(Path(metrics["checkpoint"]), "gmm").is_file()
