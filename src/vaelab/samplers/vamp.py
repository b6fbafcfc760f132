"""``sampler=vamp``: the VampPrior's mixture of posteriors (Tomczak & Welling 2018, eq. 9,
p(z) = (1/K) Σ_k q(z | u_k)), fitted ex post with the K pseudo-inputs u_k set to K training
images (their eq. 8: the aggregate posterior, approximated by K of its N components)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from vaelab.errors import VaelabError
from vaelab.priors.base import drawing_with
from vaelab.samplers.base import FitSummary, Sampler, TrainingCodes
from vaelab.schema import PositiveInt, checked_arguments


@checked_arguments("sampler")
class VampSampler(Sampler):
    """q_ex(z) = (1/K) Σ_k N(z; μ(x_k), diag σ²(x_k)) over K training images x_k drawn at
    random (all of them when there are fewer): the model's own posteriors, so nothing is
    trained. Needs an encoder with a spread (a deterministic code has none: use sampler=gmm)."""

    name = "vamp"

    def __init__(self, num_components: PositiveInt = 500) -> None:
        super().__init__()
        self.num_components = int(num_components)

    def settings(self) -> dict[str, Any]:
        return {"num_components": self.num_components}

    def restore(self, latent_dim: int, state: dict[str, Tensor]) -> None:
        super().build(latent_dim)
        self.register_buffer("means", state["means"])
        self.register_buffer("stddevs", state["stddevs"])

    def fit(self, codes: TrainingCodes, generator: torch.Generator) -> FitSummary:
        if codes.stddev is None or not bool((codes.stddev > 0).all()):
            raise VaelabError(
                "sampler=vamp mixes the posteriors q(z|x) of training images, but this model's "
                "codes have no spread (a deterministic encoder); use sampler=gmm"
            )
        super().build(codes.latent_dim)
        chosen = torch.randperm(len(codes.mean), generator=generator)[: self.num_components]
        self.register_buffer("means", codes.mean[chosen].float().clone())
        self.register_buffer("stddevs", codes.stddev[chosen].float().clone())
        with torch.no_grad():
            mean_log_likelihood = float(
                torch.cat([self.log_prob(chunk) for chunk in codes.mean.split(4096)]).mean()
            )
        return FitSummary(train_log_likelihood=mean_log_likelihood, steps=0)

    def distribution(self) -> MixtureSameFamily:
        return MixtureSameFamily(
            Categorical(logits=torch.zeros(len(self.means), device=self.means.device)),
            Independent(Normal(self.means, self.stddevs), 1),
        )

    def log_prob(self, z: Tensor) -> Tensor:
        return self.distribution().log_prob(z.float().to(self.means.device))

    @torch.no_grad()
    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        with drawing_with(generator):
            return self.distribution().sample((int(num),))
