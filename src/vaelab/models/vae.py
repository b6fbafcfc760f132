"""The VAE: an encoder network and a posterior family for q(z|x), a decoder network and a
likelihood for p(x|z), and a prior p(z) (Kingma & Welling 2014)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.distributions import Distribution
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.likelihoods.base import EVENT_DIMS, ImageDistribution, Likelihood
from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.models.interface import LatentVariableModel, input_shape_of
from vaelab.nets.networks import EncoderDecoder
from vaelab.posteriors.base import Posterior
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior
from vaelab.posteriors.geometry import LatentGeometry
from vaelab.priors.base import Prior
from vaelab.priors.standard_normal import StandardNormalPrior
from vaelab.schema import ImageShape, PositiveInt, checked_arguments

#: builds the two networks from the data's shape and the sizes the parts need
NetworkBuilder = Callable[..., EncoderDecoder]


def in_dtype_of(network: nn.Module, x: Tensor) -> Tensor:
    """``x`` cast to the network's weight dtype when they differ: with weights in bfloat16
    (trainer.precision=bf16-true) codes arrive in float32 from the float32 posterior."""
    weight = next(network.parameters(), None)
    if weight is None or not x.is_floating_point() or x.dtype == weight.dtype:
        return x
    return x.to(weight.dtype)


@checked_arguments("model")
class VAE(LatentVariableModel):
    """p_θ(x, z) = p(z) p_θ(x|z) with amortised q_φ(z|x) (Kingma & Welling 2014, §2.4).

    ``net`` is a partial network builder (``model.net``) called with the data's
    ``input_shape``, ``latent_dim``, the number of posterior parameters the encoder must
    output and the number of channels the decoder must output; ``posterior``,
    ``likelihood`` and ``prior`` are the ``posterior=``, ``likelihood=`` and ``prior=``
    groups (defaults: diagonal Gaussian, Bernoulli, N(0, I)).
    """

    def __init__(
        self,
        net: NetworkBuilder,
        latent_dim: PositiveInt,
        input_shape: ImageShape,
        posterior: Posterior | None = None,
        likelihood: Likelihood | None = None,
        prior: Prior | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.input_shape = input_shape_of(input_shape)
        self.posterior = posterior if posterior is not None else DiagonalGaussianPosterior()
        self.likelihood = likelihood if likelihood is not None else BernoulliLikelihood()
        self.likelihood.setup(self.input_shape)  # per-pixel parameters need (C, H, W)
        networks = net(
            input_shape=self.input_shape,
            latent_dim=self.latent_dim,
            encoder_out_features=self.posterior.num_params(self.latent_dim),
            decoder_out_channels=self.likelihood.params_per_channel * self.input_shape[0],
        )
        self.encoder = networks.encoder
        self.decoder = networks.decoder
        self.check_shapes()
        # registered under the name "prior" (checkpoint keys model.prior.*) behind the
        # interface's read-only ``prior`` property
        self._modules["prior"] = prior if prior is not None else StandardNormalPrior()
        self.prior.setup(self.latent_dim, self.input_shape, self.encode)
        self._check_geometry()
        # a conditional prior p(z | y) makes the model condition on what it reads
        self.conditions_on = self.prior.conditions_on
        self.num_classes = self.prior.num_classes

    @property
    def prior(self) -> Prior:
        return self._modules["prior"]

    @property
    @override
    def latent_geometry(self) -> LatentGeometry:
        """The space the posterior and the prior share (checked when built)."""
        return self.posterior.geometry

    def _check_geometry(self) -> None:
        """q(z|x) and p(z) must live on the same space: their log-densities are with respect
        to its measure (R^D's, the sphere's surface, the ball's)."""
        q_space, p_space = self.posterior.geometry, self.prior.geometry
        if q_space != p_space:
            raise VaelabError(
                f"the posterior {type(self.posterior).__name__} lives on {q_space.describe()} "
                f"but the prior {type(self.prior).__name__} on {p_space.describe()}: choose a "
                "prior= of the same space (sphere: prior=spherical_uniform; Poincaré ball: "
                "prior=wrapped_normal with the posterior's curvature; R^D: "
                "prior=standard_normal), or model=hyperspherical_mlp / model=poincare_mlp"
            )

    @property
    def likelihood_is_continuous(self) -> bool:
        return self.likelihood.is_continuous

    # -- the interface --------------------------------------------------------------------
    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """q_φ(z|x), batch shape [B], event shape [D]."""
        return self.posterior.distribution(self.encoder(in_dtype_of(self.encoder, x)))

    @override
    def decode(self, z: Tensor, y: Tensor | None = None) -> ImageDistribution:
        """p_θ(x|z) for codes [..., D]: batch shape [...], event shape (C, H, W)."""
        if z.dim() == 2:  # one code per data point: no sample axis to fold into the batch
            return self.likelihood.observation(self.decoder(in_dtype_of(self.decoder, z)))
        leading = z.shape[:-1]
        out = self.decoder(in_dtype_of(self.decoder, z.reshape(-1, self.latent_dim)))
        return self.likelihood.observation(out.reshape(*leading, *out.shape[-EVENT_DIMS:]))

    @override
    def sample(
        self, num: int, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Decoder means E[x|z] for z ~ p(z): [num, C, H, W]."""
        return self.decode(self.prior.sample(num, y, generator), y).mean

    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Decoder mean at the posterior mean code: E[x | z = E_q z]."""
        code = self.posterior.mean(self.encoder(in_dtype_of(self.encoder, x)))
        return self.decode(code, y).mean

    # -- checks ---------------------------------------------------------------------------
    @torch.no_grad()
    def check_shapes(self, batch_size: int = 2) -> None:
        """Run zeros through both networks once; raise if a shape disagrees with the data."""
        was_training = self.training
        self.eval()
        try:
            features = self.encoder(torch.zeros(batch_size, *self.input_shape)).shape[-1]
            expected = self.posterior.num_params(self.latent_dim)
            if features != expected:
                raise VaelabError(
                    f"the encoder outputs {features} numbers per image but the "
                    f"{type(self.posterior).__name__} with latent_dim={self.latent_dim} needs "
                    f"{expected}; check model.* overrides"
                )
            out = self.decoder(torch.zeros(batch_size, self.latent_dim)).shape[1:]
            channels = self.likelihood.params_per_channel * self.input_shape[0]
            wanted = (channels, *self.input_shape[1:])
            if tuple(out) != wanted:
                raise VaelabError(
                    f"the decoder outputs {tuple(out)} per image but the data is "
                    f"{self.input_shape} (C, H, W) and the {type(self.likelihood).__name__} "
                    f"needs {wanted}; this network cannot produce images of this dataset's "
                    "shape: choose another model= or data="
                )
        except RuntimeError as err:
            raise VaelabError(
                f"the model does not fit data of shape {self.input_shape} (C, H, W): "
                f"{str(err).splitlines()[0]}; choose a model= that supports this dataset, or "
                "remove shape overrides such as model.net.*"
            ) from err
        finally:
            self.train(was_training)
