"""The VAE as a plain nn.Module: encoder, decoder, posterior family, likelihood, prior."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vaelab.errors import VaelabError
from vaelab.likelihoods.base import EVENT_DIMS, Likelihood
from vaelab.posteriors.base import Posterior


def _in_dtype_of(network: nn.Module, x: Tensor) -> Tensor:
    """``x`` cast to the network's weight dtype when they differ: with weights in bfloat16
    (trainer.precision=bf16-true) codes arrive in float32 from the float32 posterior."""
    weight = next(network.parameters(), None)
    if weight is None or not x.is_floating_point() or x.dtype == weight.dtype:
        return x
    return x.to(weight.dtype)


class VAE(nn.Module):
    """p_θ(x, z) = p(z) p_θ(x|z) with amortised q_φ(z|x) (Kingma & Welling 2014).

    ``encoder`` maps images [B, C, H, W] to the posterior's parameter vector [B, P];
    ``decoder`` maps codes [N, D] to likelihood parameters [N, k·C, H, W].
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        posterior: Posterior,
        likelihood: Likelihood,
        latent_dim: int,
        input_shape: Sequence[int],
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.posterior = posterior
        self.likelihood = likelihood
        self.latent_dim = int(latent_dim)
        self.input_shape = tuple(int(s) for s in input_shape)

    @torch.no_grad()
    def check_shapes(self, batch_size: int = 2) -> None:
        """Run zeros through both networks once; raise if a shape disagrees with the data."""
        was_training = self.training
        self.eval()
        try:
            x = torch.zeros(batch_size, *self.input_shape)
            features = self.encoder(x).shape[-1]
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

    def encode(self, x: Tensor) -> Distribution:
        """q_φ(z|x), batch shape [B], event shape [D]."""
        return self.posterior.distribution(self.encoder(_in_dtype_of(self.encoder, x)))

    def decode(self, z: Tensor) -> Tensor:
        """Likelihood parameters for codes of shape [..., D] → [..., k·C, H, W]."""
        leading = z.shape[:-1]
        out = self.decoder(_in_dtype_of(self.decoder, z.reshape(-1, self.latent_dim)))
        return out.reshape(*leading, *out.shape[-EVENT_DIMS:])

    def prior(self, device: torch.device | None = None) -> Distribution:
        """p(z) = N(0, I) in the posterior's own family, so KL has a closed form; on
        ``device`` (default: the parameters' device)."""
        if device is None:
            device = next(self.parameters()).device
        return self.posterior.cached_prior(self.latent_dim, device)

    def sample_images(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """Decoder means E[x|z] for z ~ p(z): [num, C, H, W]."""
        device = next(self.parameters()).device
        z = torch.randn(num, self.latent_dim, generator=generator, device=device)
        return self.likelihood.mean(self.decode(z))

    def reconstruct(self, x: Tensor) -> Tensor:
        """Decoder mean at the posterior mean code: E[x | z = E_q z]."""
        return self.likelihood.mean(self.decode(self.posterior.mean(self.encoder(x))))
