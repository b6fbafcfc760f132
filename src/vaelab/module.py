"""The LightningModule: a VAE trained on −ELBO = −E_q[log p(x|z)] + β·KL(q(z|x) || p(z))."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.distributions import Distribution
from torchmetrics import MeanMetric

from vaelab.errors import VaelabError
from vaelab.likelihoods.base import Likelihood
from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.nets.networks import EncoderDecoder
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.objectives.elbo import ELBO
from vaelab.optim.configure import optimizer_config
from vaelab.posteriors.base import Posterior
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior
from vaelab.schedules.base import KLWeighting
from vaelab.schedules.constant import ConstantBeta
from vaelab.vae import VAE

EPOCH_METRICS = ("loss", "recon", "kl", "elbo")
EVAL_STAGES = ("val", "test")


@contextmanager
def unvalidated_distributions() -> Iterator[None]:
    """torch.distributions without argument checks inside a training/evaluation step: each
    check is an extra kernel and, on a GPU, a host sync (3 % of a CPU step of the MLP VAE).
    Non-finite losses are caught by ``check_finite`` instead."""
    previous = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(previous)


class NonFiniteLossError(VaelabError):
    """The training loss became NaN or Inf; training stops at that step."""


class VAEModule(L.LightningModule):
    """Trains a :class:`~vaelab.vae.VAE`; every logged quantity is in nats per data point.

    Logged: ``<stage>/loss`` (the minimised objective, β-weighted), ``<stage>/recon``
    (−E_q log p(x|z)), ``<stage>/kl`` (KL(q||p)), ``<stage>/elbo`` (the β = 1 bound, higher is
    better) for stage ∈ {train, val, test}, and ``beta``.
    """

    def __init__(
        self,
        net: Callable[..., EncoderDecoder],
        latent_dim: int,
        input_shape: Sequence[int],
        optimizer: Callable[..., torch.optim.Optimizer],
        likelihood: Likelihood | None = None,
        posterior: Posterior | None = None,
        objective: Objective | None = None,
        beta: KLWeighting | None = None,
        lr_scheduler: Callable[..., Any] | None = None,
        check_finite: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if int(latent_dim) < 1:
            raise ValueError(f"model.latent_dim must be >= 1, got {latent_dim}")
        input_shape = tuple(int(s) for s in input_shape)
        latent_dim = int(latent_dim)
        # plain types only: checkpoints are loaded with torch.load(weights_only=True)
        self.save_hyperparameters({"latent_dim": latent_dim, "input_shape": list(input_shape)})
        likelihood = likelihood if likelihood is not None else BernoulliLikelihood()
        posterior = posterior if posterior is not None else DiagonalGaussianPosterior()
        likelihood.setup(input_shape)  # per-pixel likelihood parameters need (C, H, W)
        channels = input_shape[0]
        nets = net(
            input_shape=input_shape,
            latent_dim=latent_dim,
            encoder_out_features=posterior.num_params(latent_dim),
            decoder_out_channels=likelihood.params_per_channel * channels,
        )
        self.vae = VAE(nets.encoder, nets.decoder, posterior, likelihood, latent_dim, input_shape)
        self.vae.check_shapes()
        # stop at the exact step a loss goes NaN/Inf (on GPUs: the next logging step)
        self.check_finite = bool(check_finite)
        self.compile_networks = bool(compile)
        self.objective = objective if objective is not None else ELBO()
        self.kl_weighting = beta if beta is not None else ConstantBeta(1.0)
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        # nan_strategy="disable": no per-batch NaN scan (a host sync on GPUs), and a NaN bound
        # shows up as a NaN mean instead of being silently dropped from it
        self.epoch_means = nn.ModuleDict(
            {
                f"{stage}_{name}": MeanMetric(nan_strategy="disable")
                for stage in EVAL_STAGES
                for name in EPOCH_METRICS
            }
        )

    def logged_metric_names(self) -> set[str]:
        """Every name this module logs (what ModelCheckpoint/EarlyStopping may monitor)."""
        stages = ("train", *EVAL_STAGES)
        return {f"{stage}/{name}" for stage in stages for name in EPOCH_METRICS} | {"beta"}

    def configure_model(self) -> None:
        """``+model.compile=true``: torch.compile the encoder and decoder in place (fused
        kernels, fewer launches; the first steps pay the compilation). In place, so parameter
        names and checkpoints are the same as without compilation."""
        if self.compile_networks and not getattr(self, "_networks_compiled", False):
            self.vae.encoder.compile()
            self.vae.decoder.compile()
            self._networks_compiled = True

    def forward(self, x: Tensor) -> ObjectiveOutput:
        return self.objective(self.vae, x)

    def _loss(self, out: ObjectiveOutput) -> Tensor:
        return self.objective.loss(out, self.kl_weighting, self.global_step)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        with unvalidated_distributions():
            out = self(batch[0])
        loss = self._loss(out).mean()
        logging_step = self._is_logging_step(batch_idx)
        # on a GPU the check is a host sync that stalls the queue: there it runs on logging
        # steps only (and on each epoch's last batch, before any checkpoint is written)
        check_now = loss.device.type == "cpu" or logging_step
        if self.check_finite and check_now and not torch.isfinite(loss):
            raise self._non_finite_loss_error(out, loss)
        if logging_step:
            # per-step curves under the stable names train/loss, train/recon, ...; only on the
            # steps that reach the loggers (every trainer.log_every_n_steps): logging every
            # step costs ~20% of a small model's step time, and sync_dist all-reduces here
            values = {
                "loss": loss,
                "recon": out.recon.mean(),
                "kl": out.kl.mean(),
                "elbo": out.bound.mean(),
            }
            self.log_dict(
                {f"train/{k}": v.detach() for k, v in values.items()},
                on_step=True,
                on_epoch=False,
                prog_bar=False,
                sync_dist=True,
            )
            self.log(
                "beta",
                float(self.kl_weighting.beta(self.global_step)),
                on_step=True,
                on_epoch=False,
            )
        return loss

    def _non_finite_loss_error(self, out: ObjectiveOutput, loss: Tensor) -> NonFiniteLossError:
        terms = [
            name
            for name, value in (("recon", out.recon), ("kl", out.kl))
            if not torch.isfinite(value).all()
        ] or ["loss (β-weighted penalty)"]
        checkpoint = self.trainer.checkpoint_callback if self._trainer is not None else None
        last_good = (checkpoint.last_model_path or checkpoint.best_model_path) if checkpoint else ""
        return NonFiniteLossError(
            f"the training loss became {loss.item()} at step {self.global_step} (epoch "
            f"{self.current_epoch}); non-finite term: {', '.join(terms)}. Last good checkpoint: "
            f"{last_good or 'none saved yet'}. Try a lower optimizer.lr, "
            "trainer.gradient_clip_val=1.0 or a σ floor on the likelihood; "
            "trainer.detect_anomaly=true finds the operation that produced it"
        )

    def _is_logging_step(self, batch_idx: int) -> bool:
        """True on the steps whose values Lightning sends to the loggers (its logger
        connector's rule: every ``log_every_n_steps`` optimizer steps, every step of a
        fast_dev_run), on the last step and on an epoch's last batch (so the callback metrics,
        hence metrics.json, always hold train/*). The same on every rank: sync_dist is safe."""
        trainer = self._trainer
        if trainer is None:
            return False
        if trainer.fast_dev_run:
            return True
        step = self.global_step + 1
        every = trainer.log_every_n_steps
        last_step = 0 < trainer.max_steps <= step
        last_batch = batch_idx + 1 == trainer.num_training_batches
        return (bool(every) and step % every == 0) or last_step or last_batch

    def _evaluation_step(self, stage: str, batch: tuple[Tensor, Tensor]) -> None:
        with unvalidated_distributions():
            out = self(batch[0])
        values = {"loss": self._loss(out), "recon": out.recon, "kl": out.kl, "elbo": out.bound}
        for name, per_point in values.items():
            metric = self.epoch_means[f"{stage}_{name}"]
            metric.update(per_point.detach())
            self.log(
                f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=(name == "elbo")
            )

    def _float32_epoch_means(self) -> None:
        """trainer.precision=bf16-true casts the whole module, the metrics' running sums
        included; a sum of thousands of ≈ −100-nat bounds in bfloat16 is off by whole nats.
        Keep the accumulators in float32."""
        for metric in self.epoch_means.values():
            metric.set_dtype(torch.float32)

    def on_validation_start(self) -> None:
        self._float32_epoch_means()

    def on_test_start(self) -> None:
        self._float32_epoch_means()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluation_step("val", batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluation_step("test", batch)

    def configure_optimizers(self) -> Any:
        return optimizer_config(
            self.parameters(), self.optimizer_factory, self.lr_scheduler_factory
        )
