"""vaelab.models.vqvae, the VQ-VAE (van den Oord et al. 2017), against hand-derived numbers: the
gated PixelCNN's causality, and the two stages through the model interface and the VQ objective
(the codebook and q(z|x) are tested in tests/test_posteriors_codebook.py); and, slow, the two
stages as vaelab-train runs them: a fast_dev_run on digits, then on real MNIST stage 1
(improving, and resumed 2 + 2 = 4 epochs exactly), stage 2 from its checkpoint (resumed 1 + 1 = 2
epochs exactly, its learned prior beating the uniform one) and vaelab-eval on the stage-2 run
(bits/dim with the learned prior, samples of the data's shape)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import InstantiationException
from torch.distributions import Categorical

from tests.conftest import FAST, compose_config
from vaelab.builders import build_module
from vaelab.errors import VaelabError
from vaelab.eval import evaluate
from vaelab.evaluation.checkpoint import load_run, locate_checkpoint
from vaelab.evaluation.metrics import evaluate_test_set, summarize
from vaelab.models.interface import MissingCapability
from vaelab.models.vae import VAE
from vaelab.models.vqvae import VQVAE
from vaelab.module import LatentVariableModule
from vaelab.nets.mlp import mlp
from vaelab.nets.pixelcnn import GatedPixelCNN
from vaelab.nets.residual_conv import residual_conv
from vaelab.objectives.vq import VectorQuantization
from vaelab.paths import CONFIG_DIR
from vaelab.schedules.constant import ConstantBeta
from vaelab.train import train

#: scikit-learn's digits: 8×8 images, a 2×2 code grid
SHAPE = (1, 8, 8)
TINY_NET = functools.partial(residual_conv, hidden=8, residual_blocks=1, residual_hidden=4)
TINY_PRIOR = functools.partial(GatedPixelCNN, channels=8, layers=2, kernel_size=3)


def tiny_vqvae(**options) -> VQVAE:
    settings = {"net": TINY_NET, "input_shape": SHAPE, "num_codes": 6, "embedding_dim": 3}
    return VQVAE(**{**settings, **options})


def images(num: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.rand(num, *SHAPE, generator=torch.Generator().manual_seed(seed)).round()


# -- the PixelCNN ---------------------------------------------------------------------------
def test_pixelcnn_outputs_depend_only_on_earlier_positions_and_on_all_of_them():
    """∂ logits(i, j) / ∂ input(i', j') is zero for (i', j') at or after (i, j) in raster order,
    and (no blind spot: four layers of 3×3 reach a 4×4 grid) non-zero for every earlier one."""
    torch.manual_seed(0)
    net = GatedPixelCNN(num_codes=5, channels=6, layers=4, kernel_size=3)
    rows, cols = 4, 4
    features = torch.randn(1, 6, rows, cols, requires_grad=True)
    logits = net.logits_of_features(features)
    # the blind-spot check looks before the head, whose ReLUs may zero a gradient by chance
    context = net.context(features)
    for row in range(rows):
        for col in range(cols):
            position = row * cols + col
            (grad,) = torch.autograd.grad(logits[0, :, row, col].sum(), features, retain_graph=True)
            assert (grad[0].abs().sum(0).flatten()[position:] == 0).all(), (row, col)
            (grad,) = torch.autograd.grad(
                context[0, :, row, col].sum(), features, retain_graph=True
            )
            reach = grad[0].abs().sum(0).flatten()
            assert (reach[position:] == 0).all(), (row, col)
            assert (reach[:position] > 0).all(), (row, col)


def test_pixelcnn_log_prob_is_the_sum_of_its_conditionals_and_samples_are_codes():
    torch.manual_seed(0)
    net = GatedPixelCNN(num_codes=4, channels=6, layers=2, kernel_size=3)
    symbols = torch.randint(4, (3, 2, 3))
    conditionals = Categorical(logits=net(symbols).permute(0, 2, 3, 1))
    torch.testing.assert_close(net.log_prob(symbols), conditionals.log_prob(symbols).sum((1, 2)))
    drawn = net.sample(7, (2, 3), torch.Generator().manual_seed(1))
    assert drawn.shape == (7, 2, 3)
    assert drawn.min() >= 0
    assert drawn.max() < 4


# -- the model and its objective ------------------------------------------------------------
def test_stage1_bound_is_recon_plus_the_uniform_prior_and_eval_agrees():
    torch.manual_seed(0)
    model = tiny_vqvae().eval()
    x = images()
    objective = VectorQuantization().eval()
    out = objective(model, x, None, ConstantBeta(1.0), 0)
    grid_positions = 4  # (8/4) × (8/4)
    torch.testing.assert_close(out.terms["kl"], torch.full((5,), grid_positions * math.log(6)))
    torch.testing.assert_close(out.bound, -(out.terms["recon"] + out.terms["kl"]))
    torch.testing.assert_close(out.loss, out.terms["recon"] + 0.25 * out.terms["commitment"])
    assert model.latent_dim == 3 * grid_positions
    log_w = model.log_weights(x, num_samples=3)
    torch.testing.assert_close(log_w, out.bound.expand(3, -1))
    # vaelab-eval's ELBO (Monte-Carlo KL against the model's prior) and IW-NLL see the same
    summary = summarize(
        evaluate_test_set(model, [(x, torch.zeros(5))], num_samples=4, chunk_size=2, elbo_samples=2)
    )
    assert summary["elbo"] == pytest.approx(out.bound.mean().item(), rel=1e-5)
    assert summary["iw_nll"] == pytest.approx(-out.bound.mean().item(), rel=1e-5)
    assert summary["latent_dim"] == model.latent_dim
    with pytest.raises(MissingCapability, match="train the PixelCNN prior"):
        model.sample(2)


def test_codebook_moves_in_training_steps_only():
    torch.manual_seed(0)
    model = tiny_vqvae()
    objective = VectorQuantization()
    before = model.quantizer.vectors.clone()
    objective.eval()(model, images(), None, ConstantBeta(1.0), 0)
    assert torch.equal(model.quantizer.vectors, before)
    objective.train()(model, images(), None, ConstantBeta(1.0), 0)
    assert not torch.equal(model.quantizer.vectors, before)
    assert {name for name, _ in model.named_buffers()} >= {
        "quantizer.vectors",
        "quantizer.ema_count",
        "quantizer.ema_sum",
    }


def _stage1_checkpoint(tmp_path, model: VQVAE):
    path = tmp_path / "stage1.ckpt"
    module = LatentVariableModule(model, optimizer=torch.optim.Adam)
    torch.save({"state_dict": module.state_dict()}, path)
    return path


def test_stage2_loads_and_freezes_stage1_and_trains_only_the_prior(tmp_path):
    torch.manual_seed(0)
    stage1 = tiny_vqvae()
    path = _stage1_checkpoint(tmp_path, stage1)
    torch.manual_seed(1)  # other random weights, overwritten by the checkpoint's
    stage2 = tiny_vqvae(prior_net=TINY_PRIOR, stage1_checkpoint=str(path))
    for name, tensor in stage1.state_dict().items():
        if not name.startswith("prior."):
            torch.testing.assert_close(stage2.state_dict()[name], tensor, msg=name)
    module = LatentVariableModule(
        stage2, objective=VectorQuantization(), optimizer=torch.optim.Adam
    )
    trained = {
        id(p) for group in module.configure_optimizers().param_groups for p in group["params"]
    }
    assert trained == {id(p) for p in stage2.prior.parameters()}
    x = images()
    out = module(x)
    torch.testing.assert_close(out.loss, -out.bound)  # stage 2 minimises −ELBO
    kl_by_hand = -stage2.prior.net.log_prob(stage2.encode(x).indices)
    torch.testing.assert_close(out.terms["kl"], kl_by_hand)
    codebook_before = stage2.quantizer.vectors.clone()
    module.train()
    module(x)
    assert torch.equal(stage2.quantizer.vectors, codebook_before)  # frozen: no EMA step
    samples = stage2.sample(3, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (3, *SHAPE)
    assert ((samples >= 0) & (samples <= 1)).all()


def test_bad_vqvae_settings_are_refused_with_the_fix(tmp_path):
    with pytest.raises(VaelabError, match=r"model\.stage1_checkpoint"):
        tiny_vqvae(prior_net=TINY_PRIOR)
    with pytest.raises(VaelabError, match="multiples of 4"):
        tiny_vqvae(input_shape=(1, 10, 8))
    path = _stage1_checkpoint(tmp_path, tiny_vqvae(num_codes=7))
    with pytest.raises(VaelabError, match="is not a checkpoint of this VQ-VAE"):
        tiny_vqvae(prior_net=TINY_PRIOR, stage1_checkpoint=str(path))
    vae = VAE(net=functools.partial(mlp, hidden_dims=[4]), latent_dim=2, input_shape=SHAPE)
    refusal = r"objective=vq .* VAE's q\(z\|x\) is Independent, not a QuantizedPosterior"
    with pytest.raises(MissingCapability, match=refusal):
        VectorQuantization().setup(vae, ConstantBeta(1.0), {})


# -- the configs: the objective comes with the model, the stage-1 checkpoint with stage 2 ----
VQ_OBJECTIVE = "vaelab.objectives.vq.VectorQuantization"


@pytest.mark.parametrize("chosen", ["model=vqvae", "experiment=vqvae_mnist"])
def test_model_vqvae_chooses_the_vq_objective_through_its_config(make_config, chosen):
    cfg = make_config(chosen)
    assert cfg.objective._target_ == VQ_OBJECTIVE
    module = build_module(cfg, SHAPE)
    assert type(module.objective) is VectorQuantization


@pytest.mark.parametrize(
    ("chosen", "other"),
    [("model=vqvae", "objective=elbo"), ("experiment=vqvae_mnist", "objective=iwae")],
)
def test_another_objective_for_the_vqvae_is_refused_in_one_line(make_config, chosen, other):
    cfg = make_config(chosen, other)
    assert cfg.objective._target_ != VQ_OBJECTIVE
    with pytest.raises(VaelabError) as refused:
        build_module(cfg, SHAPE)
    assert str(refused.value) == f"model=vqvae trains with objective=vq only: remove {other}"


def test_the_stage1_checkpoint_is_a_setting_of_the_stage2_model(make_config, tmp_path):
    cfg = make_config("experiment=vqvae_prior_mnist")
    assert "stage1_ckpt" not in cfg
    assert cfg.model.stage1_checkpoint is None
    with pytest.raises(InstantiationException) as refused:  # the entry points print the cause
        build_module(cfg, SHAPE)
    assert isinstance(refused.value.__cause__, VaelabError)
    assert "set both model.prior_net and model.stage1_checkpoint" in str(refused.value.__cause__)
    stage1 = build_module(make_config("experiment=vqvae_mnist", "model.net.hidden=8"), SHAPE)
    path = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": stage1.state_dict()}, path)
    cfg = make_config(
        "experiment=vqvae_prior_mnist", "model.net.hidden=8", f"model.stage1_checkpoint={path}"
    )
    stage2 = build_module(cfg, SHAPE).model
    assert stage2.learns_prior
    assert torch.equal(stage2.quantizer.vectors, stage1.model.quantizer.vectors)


# -- the two stages as vaelab-train runs them (slow) -------------------------------------------
#: K and the 7×7 grid of MNIST in experiment=vqvae_mnist
NUM_CODES, GRID_POSITIONS = 64, 49
SMALL = [
    *FAST,
    "trainer.deterministic=true",
    "data.batch_size=32",
    "data.eval_batch_size=200",
    "trainer.limit_train_batches=8",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "callbacks.encoding_snapshot=null",
    "callbacks.image_logger.num_samples=4",
    "model.net.hidden=16",
    "model.net.residual_hidden=8",
    "optimizer.lr=2e-3",
]
STAGE2 = [
    "model.prior_net.channels=16",
    "model.prior_net.layers=3",
    "model.prior_net.kernel_size=3",
]


def _run(run_dir: Path, *overrides: str) -> dict[str, float]:
    return train(compose_config([*SMALL, *overrides], run_dir))


def _last(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_stage1_fast_dev_run_on_digits(tmp_path):
    metrics = train(
        compose_config(
            [*FAST, "data=digits", "model=vqvae", "trainer.fast_dev_run=true"], tmp_path / "run"
        )
    )
    assert all(math.isfinite(v) for v in metrics.values())
    # the uniform prior over 64 codes on a 2×2 grid: KL = 4 log 64 exactly
    assert metrics["test/kl"] == pytest.approx(4 * math.log(64), rel=1e-6)
    assert metrics["test/elbo"] == pytest.approx(-(metrics["test/recon"] + metrics["test/kl"]))
    assert 1.0 <= metrics["test/perplexity"] <= 64


def _eval_config(ckpt_path: Path, data_dir: Path):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(
            "eval",
            overrides=[
                f"ckpt_path={ckpt_path}",
                f"data_dir={data_dir}",
                "eval.num_samples=4",
                "eval.chunk_size=4",
                "eval.elbo_samples=2",
                "eval.batch_size=100",
                "eval.limit_batches=2",
                "eval.tensorboard=false",
                "eval.pictures.num_prior_samples=4",
                "eval.pictures.scatter_points=200",
                "print_summary=false",
            ],
        )


@pytest.mark.slow
def test_two_stages_on_mnist_improve_resume_exactly_and_sample(mnist_data_dir, tmp_path):
    data = f"paths.data_dir={mnist_data_dir}"
    stage1 = ["experiment=vqvae_mnist", data]
    two = _run(tmp_path / "s1_first", *stage1, "trainer.max_epochs=2")
    four = _run(tmp_path / "s1_straight", *stage1, "trainer.max_epochs=4")
    resumed = _run(
        tmp_path / "s1_resumed",
        *stage1,
        "trainer.max_epochs=4",
        "resume=force",
        f"ckpt_path={_last(tmp_path / 's1_first')}",
    )
    assert all(math.isfinite(v) for v in four.values())
    assert four["val/elbo"] > two["val/elbo"]  # training improves the bound
    assert four["val/recon"] < two["val/recon"]
    assert resumed["val/elbo"] == pytest.approx(four["val/elbo"], abs=1e-6, rel=0)
    straight_book = torch.load(_last(tmp_path / "s1_straight"), weights_only=True)["state_dict"]
    resumed_book = torch.load(_last(tmp_path / "s1_first"), weights_only=True)["state_dict"]
    for name in ("vectors", "ema_count", "ema_sum"):
        key = f"model.quantizer.{name}"
        assert torch.equal(resumed_book[key], straight_book[key]), key
    assert four["val/kl"] == pytest.approx(GRID_POSITIONS * math.log(NUM_CODES), rel=1e-6)

    stage2 = [
        "experiment=vqvae_prior_mnist",
        data,
        f"model.stage1_checkpoint={_last(tmp_path / 's1_straight')}",
        *STAGE2,
    ]
    prior_one = _run(tmp_path / "s2_first", *stage2, "trainer.max_epochs=1")
    prior_two = _run(tmp_path / "s2_straight", *stage2, "trainer.max_epochs=2")
    prior_resumed = _run(
        tmp_path / "s2_resumed",
        *stage2,
        "trainer.max_epochs=2",
        "resume=force",
        f"ckpt_path={_last(tmp_path / 's2_first')}",
    )
    assert prior_resumed["val/elbo"] == pytest.approx(prior_two["val/elbo"], abs=1e-6, rel=0)
    assert prior_two["val/kl"] < prior_one["val/kl"]
    # the learned prior's code length is shorter than the uniform prior's 49 log 64 nats
    assert prior_two["test/kl"] < four["test/kl"]
    assert prior_two["test/elbo"] > four["test/elbo"]

    run_dir = tmp_path / "s2_straight"
    metrics = evaluate(_eval_config(run_dir, mnist_data_dir))
    assert math.isfinite(metrics["bits_per_dim"])
    # a one-hot q: the IW estimate is the ELBO, −log p(x|z_q) − log p(k)
    assert metrics["iw_nll"] == pytest.approx(metrics["neg_elbo"], rel=1e-6)
    assert metrics["bits_per_dim"] == pytest.approx(metrics["iw_nll"] / (784 * math.log(2)))
    assert "prior_samples" in metrics["figures"]
    run = load_run(locate_checkpoint(run_dir), torch.device("cpu"))
    samples = run.module.model.sample(3)
    assert samples.shape == (3, *run.datamodule.dims)
    assert ((samples >= 0) & (samples <= 1)).all()
