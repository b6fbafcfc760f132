"""``sampler=gmm``: a Gaussian mixture fitted to the training codes by EM (scikit-learn's
``GaussianMixture``), the ex-post density of Ghosh et al. 2020 ("From Variational to
Deterministic Autoencoders", §4: "GMM" with 10 components, Table 1's rows "GMM")."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from vaelab.priors.base import drawing_with
from vaelab.samplers.base import FitSummary, Sampler, TrainingCodes
from vaelab.schema import PositiveInt, checked_arguments


@checked_arguments("sampler")
class GaussianMixtureSampler(Sampler):
    """q_ex(z) = Σ_k π_k N(z; μ_k, Σ_k), K components fitted by EM on the training codes
    (k-means initialisation, ``covariance_type`` as scikit-learn names it; ``full`` as in the
    RAE paper). Stored as tensors; sampled and scored by torch.distributions."""

    name = "gmm"

    def __init__(
        self,
        num_components: PositiveInt = 10,
        covariance_type: Literal["full", "diag"] = "full",
        max_iter: PositiveInt = 200,
    ) -> None:
        super().__init__()
        self.num_components = int(num_components)
        self.covariance_type = covariance_type
        self.max_iter = int(max_iter)

    def settings(self) -> dict[str, Any]:
        return {
            "num_components": self.num_components,
            "covariance_type": self.covariance_type,
            "max_iter": self.max_iter,
        }

    def build(self, latent_dim: int) -> None:
        super().build(latent_dim)
        k, d = self.num_components, self.latent_dim
        self.register_buffer("weights", torch.full((k,), 1.0 / k, dtype=torch.float64))
        self.register_buffer("means", torch.zeros(k, d, dtype=torch.float64))
        self.register_buffer("covariances", torch.eye(d, dtype=torch.float64).repeat(k, 1, 1))

    def fit(self, codes: TrainingCodes, generator: torch.Generator) -> FitSummary:
        from sklearn.mixture import GaussianMixture

        self.build(codes.latent_dim)
        seed = int(torch.randint(2**31 - 1, (), generator=generator))
        mixture = GaussianMixture(
            self.num_components,
            covariance_type=self.covariance_type,
            max_iter=self.max_iter,
            random_state=seed,
        ).fit(codes.mean.double().cpu().numpy())
        covariances = torch.as_tensor(mixture.covariances_, dtype=torch.float64)
        if self.covariance_type == "diag":
            covariances = torch.diag_embed(covariances)
        self.weights = torch.as_tensor(mixture.weights_, dtype=torch.float64)
        self.means = torch.as_tensor(mixture.means_, dtype=torch.float64)
        self.covariances = covariances
        with torch.no_grad():
            mean_log_likelihood = float(self.log_prob(codes.mean).mean())
        return FitSummary(train_log_likelihood=mean_log_likelihood, steps=int(mixture.n_iter_))

    def distribution(self) -> MixtureSameFamily:
        return MixtureSameFamily(
            Categorical(probs=self.weights),
            MultivariateNormal(self.means, covariance_matrix=self.covariances),
        )

    def log_prob(self, z: Tensor) -> Tensor:
        return self.distribution().log_prob(z.double().to(self.means.device))

    def sample(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        with drawing_with(generator):
            return self.distribution().sample((int(num),)).float()
