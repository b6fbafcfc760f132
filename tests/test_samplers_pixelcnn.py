"""vaelab.samplers.pixelcnn: a PixelCNN fitted by vaelab-eval to a VQ-VAE's code grids (digits),
its codes exactly codebook grids, and the refusal of a model without a code grid."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import eval_config
from vaelab.errors import VaelabError
from vaelab.eval import evaluate
from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
from vaelab.evaluation.sampler_fit import fitted_sampler
from vaelab.samplers.pixelcnn import PixelCNNSampler
from vaelab.train import train


def test_a_model_without_a_code_grid_is_refused_in_one_line():
    class GaussianCode:
        prior = torch.nn.Identity()

    with pytest.raises(VaelabError, match=r"sampler=pixelcnn models a grid.*use sampler=gmm"):
        PixelCNNSampler().check_model(GaussianCode())


@pytest.mark.slow  # a VQ-VAE training run and vaelab-eval: 35 s on the shared 2-core CPU
def test_a_vqvae_stage_one_gets_a_fitted_code_grid_prior(make_config, tmp_path):
    cfg = make_config(
        "data=digits",
        "model=vqvae",
        "model.num_codes=8",
        "model.embedding_dim=4",
        "model.net.hidden=8",
        "model.net.residual_hidden=4",
        "model.net.residual_blocks=1",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
        "callbacks.image_logger=null",
        "callbacks.encoding_snapshot=null",
        "test=false",
    )
    train(cfg)
    run_dir = tmp_path / "run"
    options = ["sampler.epochs=1", "sampler.channels=8", "sampler.layers=2"]
    quick = ["eval.num_samples=2", "eval.elbo_samples=1", "eval.limit_batches=1"]
    quick += ["eval.figures=false", "eval.tensorboard=false"]
    metrics = evaluate(eval_config(run_dir, tmp_path, "sampler=pixelcnn", *options, *quick))
    assert metrics["sampler"]["fitted_now"]
    assert metrics["sampler"]["num_codes"] == 1437
    # log p(k) of a 2 × 2 grid of 8 codes: at most 0, at least the uniform −4 log 8 minus slack
    assert -4 * torch.log(torch.tensor(8.0)) - 1 < metrics["sampler"]["train_code_log_likelihood"]
    assert metrics["sampler"]["train_code_log_likelihood"] < 0
    run = load_run(locate_checkpoint(run_dir), torch.device("cpu"))
    model = run.module.model
    sampler = PixelCNNSampler(epochs=1, channels=8, layers=2)
    reused = fitted_sampler(
        sampler,
        model,
        run.datamodule,
        run.location.checkpoint,
        run.global_step,
        torch.device("cpu"),
    )
    assert not reused.fitted_now
    codes = sampler.sample(5, torch.Generator().manual_seed(0))
    indices = model.indices_of(codes)
    assert torch.equal(model.codes_of(indices), codes)  # every drawn code is a codebook grid
    assert sampler.pictures(model, 5).shape == (5, *model.input_shape)
