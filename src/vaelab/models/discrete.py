"""VAEs with categorical latents: the Gumbel-softmax VAE (Jang, Gu & Poole 2017; Maddison,
Mnih & Teh 2017) and JointVAE (Dupont 2018), whose code adds a Gaussian block.

Training draws the Concrete relaxation of the one-hot code (its temperature set by the
training step); evaluation (``model.eval()``: validation, test, ``vaelab-eval``) draws one-hot
codes and scores them with the exact categorical densities, so the validation ELBO and the
IW-NLL are bounds on log p(x) of the discrete model itself.
"""

from __future__ import annotations

from torch import Tensor
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.likelihoods.base import Likelihood
from vaelab.models.interface import (
    CategoricalBlock,
    LatentSamples,
    LatentStructure,
    MissingCapability,
)
from vaelab.models.vae import VAE, NetworkBuilder
from vaelab.posteriors.categorical import CategoricalPosterior
from vaelab.priors.categorical import CategoricalPrior
from vaelab.schema import ImageShape, PositiveInt, checked_arguments


@checked_arguments("model")
class DiscreteVAE(VAE):
    """A VAE whose code is ``num_variables`` categorical variables (``posterior=categorical``
    sets K, the temperature schedule and straight-through), after the posterior's Gaussian
    block if it has one (``posterior=joint``); the prior is ``prior=categorical`` (uniform or
    learned). latent_dim = D_c + N·K, the decoder reading the one-hot vectors (relaxed in
    training).

    The KL is the categorical one in closed form (``objective.kl=auto|analytic``: Jang et
    al. 2017's choice) or, with ``objective.kl=monte_carlo``, log q − log p of the relaxed draw
    under both Concrete densities at the posterior's temperature (Maddison et al. 2017, §C,
    eq. 21 with equal temperatures)."""

    def __init__(
        self,
        net: NetworkBuilder,
        num_variables: PositiveInt,
        input_shape: ImageShape,
        posterior: CategoricalPosterior | None = None,
        likelihood: Likelihood | None = None,
        prior: CategoricalPrior | None = None,
    ) -> None:
        posterior = posterior if posterior is not None else CategoricalPosterior()
        prior = prior if prior is not None else CategoricalPrior()
        if not callable(getattr(posterior, "temperature_at", None)):
            raise VaelabError(
                f"{type(posterior).__name__} is not categorical: model=gumbel_vae and "
                "model=joint_vae take posterior=categorical or posterior=joint"
            )
        if not callable(getattr(prior, "match", None)):
            raise VaelabError(
                f"{type(prior).__name__} is not categorical: model=gumbel_vae and "
                "model=joint_vae take prior=categorical (model.prior.learned=true to learn it)"
            )
        prior.match(posterior.continuous_dim, posterior.num_categories)
        self.num_variables = int(num_variables)
        latent_dim = posterior.continuous_dim + self.num_variables * posterior.num_categories
        super().__init__(net, latent_dim, input_shape, posterior, likelihood, prior)

    @property
    def latent_structure(self) -> LatentStructure:
        start, size = self.posterior.continuous_dim, self.posterior.num_categories
        blocks = tuple(CategoricalBlock(start + n * size, size) for n in range(self.num_variables))
        return LatentStructure((self.latent_dim,), self.latent_dim, categorical_blocks=blocks)

    @override
    def sample_latents(
        self, x: Tensor, y: Tensor | None = None, num_samples: int | None = None
    ) -> LatentSamples:
        """Relaxed draws scored by the Concrete densities in training; one-hot draws scored by
        the categorical densities otherwise (module doc)."""
        posterior = self.encode(x, y)
        relaxed = self.training
        draw = posterior.draw(() if num_samples is None else (int(num_samples),), relaxed)
        observation = self.decode(draw.z, y)
        prior = self.prior.distribution_given(y)
        return LatentSamples(
            z=draw.z,
            posterior=posterior,
            observation=observation,
            log_likelihood=lambda: observation.log_prob(x),
            log_prior=lambda: prior.log_density(draw.point, relaxed, posterior.temperature),
            log_posterior=lambda: posterior.log_density(draw.point, relaxed),
        )

    @override
    def log_posterior_stopped(
        self, samples: LatentSamples, x: Tensor, y: Tensor | None = None
    ) -> Tensor:
        raise MissingCapability(
            f"{type(self).__name__} scores relaxed draws it does not hand out: "
            "objective.gradient=stl|dreg is not available for categorical latents"
        )
