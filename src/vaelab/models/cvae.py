"""The conditional VAE (Sohn, Lee & Yan 2015): encoder and decoder conditioned on a class label.

p_θ(x, z | y) = p(z) p_θ(x | z, y) with q_φ(z | x, y), trained on the conditional bound
log p(x|y) ≥ E_q[log p(x|z, y)] − KL(q(z|x, y) || p(z)) (Sohn et al. 2015, eq. 4, with the
prior p(z|y) relaxed to p(z) as they allow in §4.1; Kingma et al. 2014's M2 for labelled data).
The label enters both networks as a one-hot vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.likelihoods.base import EVENT_DIMS, ImageDistribution, Likelihood
from vaelab.likelihoods.bernoulli import BernoulliLikelihood
from vaelab.models.interface import LatentVariableModel, input_shape_of
from vaelab.models.vae import NetworkBuilder, in_dtype_of
from vaelab.posteriors.base import Posterior
from vaelab.posteriors.diagonal import DiagonalGaussianPosterior
from vaelab.priors.base import Prior
from vaelab.priors.standard_normal import StandardNormalPrior
from vaelab.schema import ImageShape, PositiveInt, Range, checked_arguments

#: how the one-hot label reaches the encoder: appended to the flattened image (an MLP's
#: concatenation) or as K constant image planes next to the channels (a conv net's)
LabelInput = Literal["vector", "planes"]


@checked_arguments("model")
class ConditionalVAE(LatentVariableModel):
    """A VAE whose encoder reads (x, one-hot y) and whose decoder reads (z, one-hot y).

    ``net`` is a network builder (``model.net``, as for the VAE): the decoder is built for
    codes of ``latent_dim + num_classes`` numbers; the encoder for the image with the label
    appended (``label_input=vector``: a 1×1×(C·H·W + K) input, for MLPs) or as K extra
    channels (``label_input=planes``, for conv nets). ``num_classes`` comes from the data
    (``datamodule.data_info()``), never from the config. ``sample(n)`` without labels draws
    y uniformly over the classes, i.e. samples p(x) = Σ_y p(y) p(x|y) with p(y) = 1/K.
    """

    conditions_on = "classes"

    def __init__(
        self,
        net: NetworkBuilder,
        latent_dim: PositiveInt,
        input_shape: ImageShape,
        num_classes: Annotated[int, Range(ge=2)] | None,
        label_input: LabelInput = "vector",
        posterior: Posterior | None = None,
        likelihood: Likelihood | None = None,
        prior: Prior | None = None,
    ) -> None:
        super().__init__()
        if num_classes is None or int(num_classes) < 2:
            raise VaelabError(
                f"a conditional VAE needs class labels, but this data set has "
                f"{'none' if num_classes is None else num_classes}; choose a labelled data= "
                "(mnist, binarized_mnist, fashion_mnist, cifar10, digits) or an unconditional "
                "model="
            )
        self.latent_dim = int(latent_dim)
        self.num_classes = int(num_classes)
        self.label_input = label_input
        self.input_shape = input_shape_of(input_shape)
        self.posterior = posterior if posterior is not None else DiagonalGaussianPosterior()
        self.likelihood = likelihood if likelihood is not None else BernoulliLikelihood()
        self.likelihood.setup(self.input_shape)
        channels = self.input_shape[0]
        sizes = {
            "encoder_out_features": self.posterior.num_params(self.latent_dim),
            "decoder_out_channels": self.likelihood.params_per_channel * channels,
        }
        codes = self.latent_dim + self.num_classes
        if label_input == "planes":
            networks = net(input_shape=self.encoder_input_shape, latent_dim=codes, **sizes)
            self.encoder, self.decoder = networks.encoder, networks.decoder
        else:  # the decoder from the image's shape, the encoder from the flat input's
            self.decoder = net(input_shape=self.input_shape, latent_dim=codes, **sizes).decoder
            self.encoder = net(
                input_shape=self.encoder_input_shape, latent_dim=codes, **sizes
            ).encoder
        self._modules["prior"] = prior if prior is not None else StandardNormalPrior()
        self.prior.setup(self.latent_dim, self.input_shape, self._encode_without_label)
        self.check_shapes()

    @property
    def encoder_input_shape(self) -> tuple[int, int, int]:
        channels, height, width = self.input_shape
        if self.label_input == "planes":
            return (channels + self.num_classes, height, width)
        return (1, 1, channels * height * width + self.num_classes)

    @property
    def prior(self) -> Prior:
        return self._modules["prior"]

    @property
    def likelihood_is_continuous(self) -> bool:
        return self.likelihood.is_continuous

    def _encode_without_label(self, x: Tensor) -> Distribution:  # noqa: ARG002 (the prior's Encoder)
        raise VaelabError(
            "this prior needs an unconditional encoder q(z|x) (the VampPrior encodes its "
            "pseudo-inputs), but a conditional VAE's q(z|x, y) needs a label; use "
            "prior=standard_normal or prior=mixture"
        )

    def one_hot(self, y: Tensor | None, leading: Sequence[int] = ()) -> Tensor:
        """The labels [B] as one-hot rows [*leading, B, K] in float32."""
        if y is None:
            raise VaelabError(
                f"{type(self).__name__} is conditioned on the class label: pass y (the "
                "batch's labels) to encode, decode, sample and the objectives"
            )
        if y.ndim != 1 or y.is_floating_point():
            raise VaelabError(
                f"{type(self).__name__} needs integer class labels [B]; got a "
                f"{y.dtype} tensor of shape {tuple(y.shape)} (factors of variation are not "
                "classes)"
            )
        try:
            codes = F.one_hot(y.long(), self.num_classes).float()
        except RuntimeError as err:
            raise VaelabError(
                f"class labels must lie in 0 … {self.num_classes - 1} ({err}); −1 marks an "
                "unlabelled example, which a conditional VAE cannot use"
            ) from err
        return codes.expand(*leading, *codes.shape)

    # -- the interface --------------------------------------------------------------------
    @override
    def encode(self, x: Tensor, y: Tensor | None = None) -> Distribution:
        """q_φ(z|x, y), batch [B], event [D]."""
        inputs = self._encoder_inputs(x, y)
        return self.posterior.distribution(self.encoder(in_dtype_of(self.encoder, inputs)))

    @override
    def decode(self, z: Tensor, y: Tensor | None = None) -> ImageDistribution:
        """p_θ(x|z, y) for codes [..., B, D] and labels [B]: batch [..., B]."""
        labels = self.one_hot(y, z.shape[:-2]).to(z.dtype)
        codes = torch.cat([z, labels], dim=-1)
        leading = codes.shape[:-1]
        out = self.decoder(in_dtype_of(self.decoder, codes.reshape(-1, codes.shape[-1])))
        return self.likelihood.observation(out.reshape(*leading, *out.shape[-EVENT_DIMS:]))

    @override
    def sample(
        self, num: int, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """E[x|z, y] for z ~ p(z); without ``y`` the labels are drawn uniformly."""
        if y is None:
            y = self.labels_for_samples(num, generator)
        return self.decode(self.prior.sample(num, y, generator), y).mean

    @override
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """E[x | z = E_q z, y], decoded with the input's own label."""
        code = self.posterior.mean(
            self.encoder(in_dtype_of(self.encoder, self._encoder_inputs(x, y)))
        )
        return self.decode(code, y).mean

    def _encoder_inputs(self, x: Tensor, y: Tensor | None) -> Tensor:
        labels = self.one_hot(y).to(x.dtype)
        if self.label_input == "planes":
            planes = labels[:, :, None, None].expand(-1, -1, *x.shape[-2:])
            return torch.cat([x, planes], dim=1)
        return torch.cat([x.flatten(1), labels], dim=1).reshape(-1, *self.encoder_input_shape)

    @torch.no_grad()
    def check_shapes(self, batch_size: int = 2) -> None:
        """Run one labelled zero batch through both networks; raise if the net does not fit."""
        was_training = self.training
        self.eval()
        try:
            x = torch.zeros(batch_size, *self.input_shape)
            labels = torch.zeros(batch_size, dtype=torch.long)
            encoded = self.encoder(self._encoder_inputs(x, labels)).shape[-1]
            expected = self.posterior.num_params(self.latent_dim)
            if encoded != expected:
                raise VaelabError(
                    f"the encoder outputs {encoded} numbers per image but the posterior needs "
                    f"{expected}; check model.* overrides"
                )
            decoded = self.decode(torch.zeros(batch_size, self.latent_dim), labels).event_shape
            if tuple(decoded) != self.input_shape:
                raise VaelabError(
                    f"the decoder outputs images of {tuple(decoded)}, the data is "
                    f"{self.input_shape}; choose another model.net"
                )
        except RuntimeError as err:
            raise VaelabError(
                f"model.net does not fit the {self.label_input!r} label input for data of "
                f"shape {self.input_shape}: {str(err).splitlines()[0]}; conv nets need "
                "model.label_input=planes, MLPs take vector"
            ) from err
        finally:
            self.train(was_training)
