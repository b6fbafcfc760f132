"""The LightningModule: a VAE trained on −ELBO = −E_q[log p(x|z)] + β·KL(q(z|x) || p(z))."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from vaelab.likelihoods.base import Likelihood
from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.nets.networks import EncoderDecoder
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.objectives.elbo import ELBO
from vaelab.posteriors.base import Posterior
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior
from vaelab.schedules.base import KLWeighting
from vaelab.schedules.constant import ConstantBeta
from vaelab.vae import VAE

EPOCH_METRICS = ("loss", "recon", "kl", "elbo")
EVAL_STAGES = ("val", "test")


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
        channels = input_shape[0]
        nets = net(
            input_shape=input_shape,
            latent_dim=latent_dim,
            encoder_out_features=posterior.num_params(latent_dim),
            decoder_out_channels=likelihood.params_per_channel * channels,
        )
        self.vae = VAE(nets.encoder, nets.decoder, posterior, likelihood, latent_dim, input_shape)
        self.objective = objective if objective is not None else ELBO()
        self.kl_weighting = beta if beta is not None else ConstantBeta(1.0)
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.epoch_means = nn.ModuleDict(
            {f"{stage}_{name}": MeanMetric() for stage in EVAL_STAGES for name in EPOCH_METRICS}
        )

    def forward(self, x: Tensor) -> ObjectiveOutput:
        return self.objective(self.vae, x)

    def _loss(self, out: ObjectiveOutput) -> Tensor:
        return self.objective.loss(out, self.kl_weighting, self.global_step)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        out = self(batch[0])
        loss = self._loss(out).mean()
        values = {"loss": loss, "recon": out.recon.mean(), "kl": out.kl.mean(),
                  "elbo": out.bound.mean()}
        self.log_dict({f"train/{k}": v for k, v in values.items()}, on_step=True,
                      on_epoch=True, prog_bar=False)
        self.log("beta", self.kl_weighting.beta(self.global_step), on_step=True, on_epoch=False)
        return loss

    def _evaluation_step(self, stage: str, batch: tuple[Tensor, Tensor]) -> None:
        out = self(batch[0])
        values = {"loss": self._loss(out), "recon": out.recon, "kl": out.kl, "elbo": out.bound}
        for name, per_point in values.items():
            metric = self.epoch_means[f"{stage}_{name}"]
            metric.update(per_point.detach())
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True,
                     prog_bar=(name == "elbo"))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluation_step("val", batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluation_step("test", batch)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler,
                                                         "interval": "epoch"}}
