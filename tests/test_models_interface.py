"""vaelab.models.interface, the model interface: a second model family, written only against
:class:`~vaelab.models.interface.LatentVariableModel`, trains with the generic module, gets an
IW-NLL from ``vaelab-eval``'s estimator and its pictures; an objective with an adversary trains
with two optimisers, clipping and exact resume; unusable groups are refused by name."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch import Tensor, nn
from typing_extensions import override

from tests.conftest import FAST, compose_config
from tests.linear_factor_model import (
    PIXELS,
    SHAPE,
    LinearFactorModel,
    binary_patterns,
    loader,
    quiet_trainer,
)
from vaelab.builders import build_module, chosen_groups
from vaelab.callbacks.rng_state import RNGStateCheckpoint
from vaelab.errors import VaelabError
from vaelab.evaluation.metrics import evaluate_test_set, summarize
from vaelab.models.interface import LatentVariableModel, MissingCapability
from vaelab.module import LatentVariableModule
from vaelab.objectives import ELBO, IWAE, AdversaryStep, Objective, ObjectiveOutput
from vaelab.plots.grids import latent_manifold_grid, prior_sample_grid, reconstruction_grid
from vaelab.schedules.base import Weighting
from vaelab.schedules.constant import ConstantBeta


def mean_negative_elbo(module: LatentVariableModule, x: Tensor) -> float:
    torch.manual_seed(0)
    with torch.no_grad():
        return float(module(x).bound.mean().neg())


def test_a_new_family_trains_evaluates_and_draws_through_the_interface(tmp_path):
    torch.manual_seed(0)
    x = binary_patterns()
    module = LatentVariableModule(
        LinearFactorModel(), objective=IWAE(num_samples=4), optimizer=torch.optim.Adam
    )
    before = mean_negative_elbo(module, x)
    quiet_trainer(tmp_path, max_epochs=15, enable_checkpointing=False).fit(
        module, loader(x, shuffle=True)
    )
    after = mean_negative_elbo(module, x)
    assert after < before - 1.0, (before, after)
    model = module.model.eval()
    torch.manual_seed(1)
    summary = summarize(evaluate_test_set(model, loader(x), num_samples=64, chunk_size=16))
    assert summary["iw_nll"] <= summary["neg_elbo"] + 1e-6
    assert 0 < summary["iw_nll"] < PIXELS * math.log(2)  # better than coin flips
    assert reconstruction_grid(model, x[:4]).shape[0] == 3  # RGB grid from make_grid
    assert prior_sample_grid(model, 9).shape[0] == 3
    manifold = latent_manifold_grid(model, points_per_axis=5)
    assert manifold.shape[-1] % (5 * SHAPE[-1]) == 0  # 5 images per row, upscaled


def test_missing_parts_are_named():
    class NoPrior(LinearFactorModel):
        @property
        def prior(self):
            return LatentVariableModel.prior.fget(self)

        def __init__(self) -> None:
            LatentVariableModel.__init__(self)
            self.latent_dim, self.input_shape = 2, SHAPE
            self.encoder = nn.Linear(PIXELS, 4)
            self.decoder = nn.Linear(2, PIXELS)

    with pytest.raises(MissingCapability, match="NoPrior has no prior"):
        NoPrior().log_weights(binary_patterns(3), num_samples=2)


class LatentDiscriminatorObjective(Objective):
    """An adversarial auto-encoding objective (Makhzani et al. 2016, §2): the ELBO's
    reconstruction term plus a discriminator telling q(z|x) samples from prior samples; only
    here to exercise the module's two-optimiser path."""

    bound_name = None
    term_names = ("recon", "fooling")

    def __init__(self) -> None:
        super().__init__()
        self.discriminator = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        self.adversary_optimizer = lambda params: torch.optim.SGD(params, lr=0.05)

    @override
    def forward(
        self, model, x, y, weighting: Weighting, step: int, split: str = "train"
    ) -> ObjectiveOutput:
        z = model.encode(x, y).rsample()
        recon = -model.decode(z, y).log_prob(x)
        logits = self.discriminator(z).squeeze(-1)
        fooling = nn.functional.binary_cross_entropy_with_logits(
            logits, torch.ones_like(logits), reduction="none"
        )
        return ObjectiveOutput(
            loss=recon + fooling, bound=None, terms={"recon": recon, "fooling": fooling}
        )

    def adversary_parameters(self):
        return self.discriminator.parameters()

    @override
    def adversary_step(self, model, x, y, output) -> AdversaryStep:
        with torch.no_grad():
            fake = model.encode(x, y).sample()
            real = model.prior.sample(len(x))
        logits = self.discriminator(torch.cat([real, fake])).squeeze(-1)
        targets = torch.cat([torch.ones(len(x)), torch.zeros(len(x))])
        loss = nn.functional.binary_cross_entropy_with_logits(logits, targets)
        accuracy = ((logits > 0).float() == targets).float().mean()
        return AdversaryStep(loss=loss, terms={"discriminator_accuracy": accuracy})


class GradientNormRecorder(L.Callback):
    def __init__(self) -> None:
        self.norms: list[float] = []

    @override
    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))


def adversarial_module(clip: float | None = None) -> LatentVariableModule:
    torch.manual_seed(0)
    return LatentVariableModule(
        LinearFactorModel(),
        objective=LatentDiscriminatorObjective(),
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-2),
        gradient_clip_val=clip,
    )


def test_an_adversary_trains_with_its_own_optimiser_and_clipped_gradients(tmp_path):
    module = adversarial_module(clip=0.05)
    assert not module.automatic_optimization
    discriminator = [p.detach().clone() for p in module.objective.discriminator.parameters()]
    encoder = module.model.encoder.weight.detach().clone()
    recorder = GradientNormRecorder()
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[recorder])
    trainer.fit(module, loader(binary_patterns(64), batch_size=16))
    assert trainer.global_step == 8  # 4 batches × 2 optimiser steps
    assert len(recorder.norms) == 8
    assert max(recorder.norms) <= 0.05 + 1e-6
    assert not torch.equal(module.model.encoder.weight, encoder)
    moved = list(module.objective.discriminator.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(moved, discriminator, strict=True))
    assert {"train/discriminator_accuracy", "train/fooling"} <= set(trainer.callback_metrics)


def test_an_adversarial_run_resumes_exactly(tmp_path):
    x = binary_patterns(64)
    straight = adversarial_module()
    quiet_trainer(tmp_path / "a", max_epochs=2, callbacks=[RNGStateCheckpoint()]).fit(
        straight, loader(x, 16)
    )
    first = adversarial_module()
    halfway = quiet_trainer(tmp_path / "b", max_epochs=1, callbacks=[RNGStateCheckpoint()])
    halfway.fit(first, loader(x, 16))
    checkpoint = tmp_path / "half.ckpt"
    halfway.save_checkpoint(checkpoint)
    resumed = adversarial_module()
    torch.manual_seed(123)  # a different stream: the checkpoint must restore the RNG
    quiet_trainer(tmp_path / "c", max_epochs=2, callbacks=[RNGStateCheckpoint()]).fit(
        resumed, loader(x, 16), ckpt_path=checkpoint, weights_only=True
    )
    for (name, p), q in zip(straight.named_parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=name)


def test_groups_named_on_the_command_line():
    named = chosen_groups(
        ["posterior=full_covariance", "model.likelihood.min_scale=0.1", "+beta.value=2", "seed=3"]
    )
    assert named == {
        "posterior": "posterior=full_covariance",
        "likelihood": "model.likelihood.min_scale=0.1",
        "beta": "+beta.value=2",
    }


def test_a_prior_the_elbo_cannot_integrate_switches_to_monte_carlo_and_says_so(tmp_path):
    for prior, estimator in (("standard_normal", "analytic"), ("vamp", "monte_carlo")):
        cfg = compose_config([*FAST, "data=digits", f"prior={prior}"], tmp_path / prior)
        module = build_module(cfg, instantiate(cfg.data).dims)
        assert module.hparams["kl_estimator"] == estimator
    cfg = compose_config(
        [*FAST, "data=digits", "prior=mixture", "objective.kl=analytic"], tmp_path / "refused"
    )
    with pytest.raises(VaelabError, match=r"objective\.kl=auto"):
        build_module(cfg, (1, 8, 8))


def test_the_module_logs_the_objectives_names():
    module = LatentVariableModule(
        LinearFactorModel(),
        objective=IWAE(3),
        weighting=ConstantBeta(1.0),
        optimizer=torch.optim.Adam,
    )
    names = module.logged_metric_names()
    assert {"val/iwae_bound", "val/elbo", "val/recon", "val/kl", "val/loss", "beta"} <= set(names)
    elbo_names = LatentVariableModule(
        LinearFactorModel(), objective=ELBO(), optimizer=torch.optim.Adam
    ).logged_metric_names()
    assert "val/iwae_bound" not in elbo_names
    assert "test/elbo" in elbo_names
    assert "beta" not in elbo_names  # β is logged for a module given a weighting (beta=)
