"""Interface of a prior p(z) over a flat latent vector z ∈ R^D."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, kl_divergence

from vaelab.posteriors.geometry import EUCLIDEAN, LatentGeometry

#: what a prior may ask of its model: the inference network q(z|x) (the VampPrior needs it)
Encoder = Callable[[Tensor], Distribution]


class Prior(nn.Module):
    """p(z) with event shape [D]; a module, so a learned prior's parameters train and are
    checkpointed with the model. :meth:`setup` is called once by the model that owns it,
    with the latent size, the data shape and the model's encoder."""

    latent_dim: int
    #: what p(z | y) reads from the batch's y: None (unconditional: y is ignored) or
    #: "classes"; a model holding a conditional prior conditions on the same (and the
    #: builders fill a constructor parameter ``num_classes`` from the data)
    conditions_on: ClassVar[str | None] = None
    #: K for a class-conditional prior, else None
    num_classes: int | None = None
    #: the space z lives in: the model's posterior must declare the same
    #: (``posteriors/geometry.py``)
    geometry: LatentGeometry = EUCLIDEAN

    # the interface: a learned prior (the VampPrior) uses the data shape and the encoder
    def setup(self, latent_dim: int, input_shape: tuple[int, ...], encode: Encoder) -> None:  # noqa: ARG002
        """Create parameters that depend on the latent size or the data shape."""
        self.latent_dim = int(latent_dim)

    def distribution(self) -> Distribution:
        """p(z) on the device of the model."""
        raise NotImplementedError

    def distribution_given(self, y: Tensor | None) -> Distribution:  # noqa: ARG002
        """p(z | y) for a batch's labels ``y`` [B] (batch shape [B]); an unconditional prior
        ignores y and returns :meth:`distribution`. A class-conditional prior overrides this
        (and sets :attr:`conditions_on`): log-densities, the KL and samples follow."""
        return self.distribution()

    def log_prob(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """log p(z | y) summed over the latent dimensions: [..., D] → [...]."""
        return self.distribution_given(y).log_prob(z)

    def kl_per_dimension(
        self, posterior_dimension: Distribution, y: Tensor | None = None
    ) -> Tensor:
        """KL(q(z_d|x) || p(z_d | y)) for each dimension d [..., D] in closed form, for a
        posterior and prior that both factorise over the dimensions (``posterior_dimension``
        is the posterior's per-dimension ``base_dist``)."""
        return kl_divergence(posterior_dimension, self.distribution_given(y).base_dist)

    def sample(
        self, num: int, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """``num`` codes z ~ p(z | y): [num, D] (``y``: [num] labels, for a conditional
        prior), drawn by ``generator`` when given (the global RNG is then left alone), else
        by the global RNG."""
        distribution = self.distribution_given(y)
        with drawing_with(generator):
            return distribution.sample(() if distribution.batch_shape else (num,))

    def extra_repr(self) -> str:
        return f"latent_dim={getattr(self, 'latent_dim', None)}"


@contextmanager
def drawing_with(generator: torch.Generator | None) -> Iterator[None]:
    """Draws inside come from ``generator`` (a seed taken from it), and the global RNG of its
    device is as it was afterwards; None: the global RNG draws, untouched."""
    if generator is None:
        yield
        return
    seed = int(torch.randint(2**62, (), generator=generator, device=generator.device))
    on_cuda = generator.device.type == "cuda"
    with torch.random.fork_rng(devices=[generator.device] if on_cuda else []):
        if on_cuda:
            torch.cuda.manual_seed(seed)
        else:
            torch.random.default_generator.manual_seed(seed)
        yield


def device_of(module: nn.Module, fallback: torch.device | None = None) -> torch.device:
    """The device of a module's first parameter or buffer."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return fallback if fallback is not None else torch.device("cpu")
