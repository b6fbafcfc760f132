"""``sampler=two_stage``: a second VAE trained on the codes (Dai & Wipf 2019, "Diagnosing and
Enhancing VAE Models", §4: the two-stage VAE). The first stage's aggregate posterior q(z) need
not be N(0, I); a second VAE with a latent u of the same size learns q(z), and its own
aggregate posterior of u is closer to N(0, I) (their Theorem 4). Samples: u ~ N(0, I),
z = E[z|u] from the second decoder, x from the first decoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Independent, Normal, kl_divergence

from vaelab.priors.base import drawing_with
from vaelab.samplers.base import FitSummary, Sampler, TrainingCodes, codes_in_batches
from vaelab.schema import PositiveFloat, PositiveInt, checked_arguments


def _mlp(inputs: int, hidden_dims: Sequence[int], outputs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden_dims:
        layers += [nn.Linear(inputs, width), nn.ReLU()]
        inputs = width
    layers.append(nn.Linear(inputs, outputs))
    return nn.Sequential(*layers)


@checked_arguments("sampler")
class TwoStageVAESampler(Sampler):
    """The second stage: an MLP encoder q(u|z) = N(μ(z), diag σ²(z)), an MLP decoder
    p(z|u) = N(g(u), γ I) with one learned γ (their §4: γ trained, shared by all dimensions),
    u ∈ R^D with D the code size, p(u) = N(0, I); trained on draws z ~ q(z|x) of the training
    images where the first encoder has a spread (their setting), else on the codes, all
    standardised per dimension, by the ELBO with Adam."""

    name = "two_stage"

    def __init__(
        self,
        hidden_dims: Sequence[PositiveInt] = (256, 256),
        epochs: PositiveInt = 30,
        batch_size: PositiveInt = 256,
        lr: PositiveFloat = 1e-3,
    ) -> None:
        super().__init__()
        self.hidden_dims = tuple(int(width) for width in hidden_dims)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)

    def settings(self) -> dict[str, Any]:
        return {
            "hidden_dims": list(self.hidden_dims),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
        }

    def build(self, latent_dim: int) -> None:
        super().build(latent_dim)
        d = self.latent_dim
        self.encoder = _mlp(d, self.hidden_dims, 2 * d)
        self.decoder = _mlp(d, self.hidden_dims, d)
        self.log_gamma = nn.Parameter(torch.zeros(()))
        self.register_buffer("code_mean", torch.zeros(d))
        self.register_buffer("code_scale", torch.ones(d))

    def second_posterior(self, z: Tensor) -> Independent:
        """q(u|z) for codes z [N, D] (in the codes' units)."""
        standard = (z - self.code_mean) / self.code_scale
        loc, raw_scale = self.encoder(standard).chunk(2, dim=-1)
        return Independent(Normal(loc, nn.functional.softplus(raw_scale) + 1e-4), 1)

    def negative_elbo(self, z: Tensor) -> Tensor:
        """−ELBO [N] of codes z (in standardised units: the objective trained)."""
        posterior = self.second_posterior(z)
        u = posterior.rsample()
        standard = (z - self.code_mean) / self.code_scale
        gamma = self.log_gamma.exp()
        recon = -Independent(Normal(self.decoder(u), gamma.sqrt()), 1).log_prob(standard)
        prior = Independent(Normal(torch.zeros_like(u), torch.ones_like(u)), 1)
        return recon + kl_divergence(posterior, prior)

    def fit(self, codes: TrainingCodes, generator: torch.Generator) -> FitSummary:
        with drawing_with(generator):
            self.build(codes.latent_dim)
        mean, scale = codes.standardisation()
        if codes.stddev is not None:  # the draws' spread: Var z = Var_x E[z|x] + E_x Var[z|x]
            scale = (scale**2 + codes.stddev.float().pow(2).mean(0)).sqrt()
        self.code_mean.copy_(mean)
        self.code_scale.copy_(scale)
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr)
        index = torch.arange(len(codes.mean))
        steps = 0
        for _ in range(self.epochs):
            for batch in codes_in_batches(index, self.batch_size, generator):
                z = codes.mean[batch].float()
                if codes.stddev is not None:
                    noise = torch.randn(z.shape, generator=generator)
                    z = z + codes.stddev[batch].float() * noise
                with drawing_with(generator):
                    loss = self.negative_elbo(z).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
        with torch.no_grad(), drawing_with(generator):
            bound = -torch.cat([self.negative_elbo(c.float()) for c in codes.mean.split(4096)])
        # the ELBO of the standardised codes, in the codes' units (change of variables)
        log_scale = float(self.code_scale.log().sum())
        return FitSummary(train_log_likelihood=float(bound.mean()) - log_scale, steps=steps)

    def log_prob(self, z: Tensor) -> Tensor:
        """A lower bound on log q_ex(z) (one-sample ELBO), in the codes' units."""
        return -self.negative_elbo(z.float()) - self.code_scale.log().sum()

    @torch.no_grad()
    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        with drawing_with(generator):
            u = torch.randn(int(num), self.latent_dim, device=self.code_mean.device)
        return self.decoder(u) * self.code_scale + self.code_mean

    @torch.no_grad()
    def second_stage_codes(self, z: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """u ~ q(u|z) [N, D]: draws of the second stage's codes of first-stage codes z (their
        aggregate is the second stage's aggregate posterior)."""
        with drawing_with(generator):
            return self.second_posterior(z.float()).sample()
