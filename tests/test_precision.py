"""Mixed precision: reductions stay in float32, bf16 training tracks fp32, 16-mixed on CPU
warns once and runs as bf16-mixed."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.models.vae import VAE
from vaelab.module import LatentVariableModule
from vaelab.nets.mlp import mlp
from vaelab.objectives.elbo import ELBO
from vaelab.precision import precision_overrides
from vaelab.schedules.constant import ConstantBeta

SHAPE = (1, 28, 28)


def _module(seed: int = 0) -> LatentVariableModule:
    torch.manual_seed(seed)
    vae = VAE(net=lambda **kw: mlp(**kw, hidden_dims=[400]), latent_dim=20, input_shape=SHAPE)
    return LatentVariableModule(model=vae, optimizer=torch.optim.Adam)


def _elbo(vae: VAE, x: torch.Tensor):
    objective = ELBO()
    objective.setup(vae, ConstantBeta(1.0), {})
    return objective(vae, x, None, ConstantBeta(1.0), 0)


def _batch(seed: int = 1, size: int = 64) -> torch.Tensor:
    """Grey-level images with MNIST-like sparsity (most pixels 0)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(size, *SHAPE, generator=generator)
    return torch.where(x > 0.8, x, torch.zeros_like(x))


def test_reduced_terms_are_float32_under_bf16_autocast():
    vae = _module().model
    x = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert vae.decoder(torch.zeros(2, 20)).dtype == torch.bfloat16  # autocast is active
        out = _elbo(vae, x)
    for term in (*out.terms.values(), out.bound, out.loss, *out.per_dimension.values()):
        assert term.dtype == torch.float32


def test_bf16_mixed_loss_is_close_to_fp32_on_the_same_weights_and_noise():
    module = _module()
    x = _batch()
    torch.manual_seed(5)
    reference = _elbo(module.model, x)
    torch.manual_seed(5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = _elbo(module.model, x)
    # bf16 matmuls carry ~3 significant digits; the per-point bound must agree to < 1 %
    relative = ((mixed.bound - reference.bound).abs() / reference.bound.abs()).max()
    assert relative < 1e-2
    assert torch.isfinite(mixed.bound).all()


def test_pixel_sum_in_float32_keeps_the_digits_a_bf16_sum_loses():
    """The likelihood casts bf16 decoder outputs to float32 before summing 784 log-probs.
    Summed in bf16 instead, the total would be off by far more than float32 rounding."""
    x = _batch()
    logits = (torch.randn(len(x), *SHAPE, generator=torch.Generator().manual_seed(2)) * 3).to(
        torch.bfloat16
    )
    exact = -F.binary_cross_entropy_with_logits(logits.double(), x.double(), reduction="none").sum(
        (1, 2, 3)
    )
    ours = BernoulliLikelihood().log_prob(logits, x)
    assert ours.dtype == torch.float32
    bf16_sum = -F.binary_cross_entropy_with_logits(
        logits, x.to(torch.bfloat16), reduction="none"
    ).sum((1, 2, 3))
    our_error = (ours.double() - exact).abs().max().item()
    bf16_error = (bf16_sum.double() - exact).abs().max().item()
    assert our_error < 1e-3
    assert bf16_error > 100 * our_error


def test_fp16_mixed_on_cpu_becomes_bf16_with_one_warning_of_ours():
    with pytest.warns(UserWarning, match="vaelab: trainer.precision=16-mixed") as caught:
        overrides = precision_overrides({"precision": "16-mixed", "accelerator": "cpu"})
    assert overrides == {"precision": "bf16-mixed"}
    assert len([w for w in caught if "vaelab:" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision_overrides({"precision": "bf16-mixed", "accelerator": "cpu"}) == {}
        assert precision_overrides({"precision": "32-true", "accelerator": "cpu"}) == {}


@pytest.fixture(scope="module")
def short_runs(mnist_data_dir, tmp_path_factory):
    """The same 20 seeded steps (fixed batch order) at four precisions on real MNIST."""
    from tests.conftest import FAST, compose_config
    from vaelab.train import train

    runs = {}
    for precision in ("32-true", "bf16-mixed", "16-mixed", "bf16-true"):
        cfg = compose_config(
            [
                *(o for o in FAST if not o.startswith("callbacks.")),
                f"paths.data_dir={mnist_data_dir}",
                f"trainer.precision={precision}",
                "data.shuffle=false",
                "data.on_device=true",
                "model.latent_dim=20",
                "trainer.max_epochs=1",
                "trainer.limit_train_batches=20",
                "trainer.limit_val_batches=2",
                "trainer.log_every_n_steps=10",
                "test=false",
                "callbacks=none",
                "logger=csv",
            ],
            tmp_path_factory.mktemp(precision) / "run",
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            metrics = train(cfg)
        runs[precision] = (metrics, [str(w.message) for w in caught])
    return runs


def test_bf16_mixed_training_is_finite_and_close_to_fp32(short_runs):
    fp32, _ = short_runs["32-true"]
    bf16, _ = short_runs["bf16-mixed"]
    for name in ("val/elbo", "train/loss"):
        assert math.isfinite(bf16[name])
        assert bf16[name] == pytest.approx(fp32[name], rel=0.02), name
    assert bf16["val/elbo"] != fp32["val/elbo"]  # it really ran in bf16


def test_fp16_mixed_on_cpu_trains_exactly_as_bf16_mixed(short_runs):
    bf16, bf16_warnings = short_runs["bf16-mixed"]
    fp16, fp16_warnings = short_runs["16-mixed"]
    assert fp16["val/elbo"] == bf16["val/elbo"]
    ours = [m for m in fp16_warnings if m.startswith("vaelab: trainer.precision=16-mixed")]
    assert len(ours) == 1
    assert not any("AMP with fp16 is not supported" in m for m in fp16_warnings)  # no duplicate
    assert not any(m.startswith("vaelab: trainer.precision") for m in bf16_warnings)


def test_bf16_true_trains_with_finite_loss_near_fp32(short_runs):
    """Weights in bfloat16 too: coarser, but the bound is finite and within a few percent."""
    fp32, _ = short_runs["32-true"]
    bf16_true, _ = short_runs["bf16-true"]
    assert math.isfinite(bf16_true["val/elbo"])
    assert math.isfinite(bf16_true["train/loss"])
    assert bf16_true["val/elbo"] == pytest.approx(fp32["val/elbo"], rel=0.05)


def test_epoch_means_accumulate_in_float32_after_a_bf16_cast():
    """bf16-true casts the module, metric states included; they are put back to float32 at
    the start of each evaluation, so 5000 bounds of −300.123456 average to 4+ digits."""
    module = _module().to(torch.bfloat16)
    assert module.epoch_means["val_elbo"].mean_value.dtype == torch.bfloat16  # the cast
    module.on_validation_start()
    metric = module.epoch_means["val_elbo"]
    for _ in range(5):
        metric.update(torch.full((1000,), -300.123456))
    assert metric.mean_value.dtype == torch.float32
    assert metric.compute().item() == pytest.approx(-300.123456, abs=1e-3)
