"""The prior of categorical latents: N independent categorical variables of K categories,
uniform (Jang et al. 2017, §3; Maddison et al. 2017) or with learned category logits, after an
optional N(0, I) block (JointVAE, Dupont 2018, §3)."""

from __future__ import annotations

import torch
from torch import nn

from vaelab.errors import VaelabError
from vaelab.posteriors.categorical import DiscreteCode
from vaelab.priors.base import Encoder, Prior
from vaelab.schema import checked_arguments


@checked_arguments("model.prior")
class CategoricalPrior(Prior):
    """p(z) = N(z_c; 0, I) ∏_n Cat(z_n; π_n) with π_n uniform, or softmax of learned logits
    (``learned``, initialised uniform). Its layout (the continuous block's size and K) is the
    posterior's, handed over by the model (:meth:`match`) before :meth:`setup`. The KL to a
    categorical posterior is in closed form (``DiscreteCode``'s registered KL)."""

    def __init__(self, learned: bool = False) -> None:
        super().__init__()
        self.learned = bool(learned)
        self.continuous_dim: int | None = None
        self.num_categories: int | None = None

    def match(self, continuous_dim: int, num_categories: int) -> None:
        """Take the posterior's layout: ``continuous_dim`` Gaussian numbers, then one-hot
        vectors of ``num_categories``."""
        self.continuous_dim, self.num_categories = int(continuous_dim), int(num_categories)

    def setup(self, latent_dim: int, input_shape: tuple[int, ...], encode: Encoder) -> None:
        super().setup(latent_dim, input_shape, encode)
        if self.num_categories is None or self.continuous_dim is None:
            raise VaelabError(
                "prior=categorical takes its layout from a categorical posterior: use "
                "model=gumbel_vae or model=joint_vae"
            )
        num_variables = (self.latent_dim - self.continuous_dim) // self.num_categories
        logits = torch.zeros(num_variables, self.num_categories)
        if self.learned:
            self.logits = nn.Parameter(logits)
        else:  # not learned: nothing of it goes into checkpoints
            self.register_buffer("logits", logits, persistent=False)
        self.register_buffer("loc", torch.zeros(self.continuous_dim), persistent=False)

    def distribution(self) -> DiscreteCode:
        loc = self.loc.float()
        return DiscreteCode(self.logits.float(), loc=loc, scale=torch.ones_like(loc))
