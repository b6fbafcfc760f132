"""Categorical latents through the Gumbel-softmax / Concrete relaxation (Jang, Gu & Poole 2017;
Maddison, Mnih & Teh 2017), optionally beside a Gaussian block (JointVAE, Dupont 2018).

The code z ∈ R^(D_c + N·K) is a continuous block of D_c numbers followed by N one-hot vectors
of K categories. The discrete model scores one-hot codes with the categorical densities; for
training, a one-hot draw is replaced by its Concrete relaxation (Maddison et al. 2017, Def. 1;
Jang et al. 2017, eq. 2): y = softmax((log π + g)/τ), g ~ Gumbel(0, 1), whose density is
Maddison et al.'s eq. in Def. 1 (:func:`concrete_log_density`). With ``straight_through`` the
decoder reads the one-hot argmax of y in the forward pass and y's gradient in the backward
pass (Jang et al. 2017, §2.2). The temperature follows Jang et al.'s schedule (§4, Appendix):
τ(step) = max(τ_min, τ₀·exp(−r·step)), the step rounded down to a multiple of ``anneal_every``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal, constraints, register_kl
from torch.nn import functional as F

from vaelab.errors import VaelabError
from vaelab.posteriors.base import Posterior
from vaelab.posteriors.structure import latent_blocks
from vaelab.schema import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Range,
    checked_arguments,
)


def concrete_log_density(logits: Tensor, log_soft: Tensor, temperature: float) -> Tensor:
    """log p(y) of the Concrete distribution with location α = exp(logits) and temperature τ
    at y = exp(log_soft) (Maddison et al. 2017, Def. 1), over the last axis of K categories:

    log p(y) = log (K−1)! + (K−1) log τ + Σ_k (log α_k − (τ+1) log y_k)
               − K log Σ_k α_k y_k^(−τ).

    Taking log y keeps it finite where y_k underflows at low τ."""
    categories = logits.shape[-1]
    scaled = logits - temperature * log_soft
    return (
        math.lgamma(categories)
        + (categories - 1) * math.log(temperature)
        + (logits - (temperature + 1) * log_soft).sum(-1)
        - categories * torch.logsumexp(scaled, dim=-1)
    )


@dataclass
class CodeDraw:
    """A draw of :class:`DiscreteCode`: ``z`` is what the decoder reads (relaxed, straight-through
    or one-hot); ``point`` is what the densities score (the continuous block, then log y of the
    relaxed draw or the one-hot code itself)."""

    z: Tensor
    point: Tensor


class DiscreteCode(Distribution):
    """q(z|x) or p(z) of N categorical variables of K categories (``logits`` [..., N, K]),
    after an optional Gaussian block N(``loc``, ``scale``²) of D_c numbers ([..., D_c]); event
    shape [D_c + N·K]. ``log_prob`` and ``sample`` are those of the discrete model (one-hot
    codes); :meth:`draw` and :meth:`log_density` give the Concrete relaxation at
    ``temperature`` for training."""

    arg_constraints = {}  # noqa: RUF012 - torch's attribute
    has_rsample = False

    def __init__(
        self,
        logits: Tensor,
        temperature: float = 1.0,
        straight_through: bool = False,
        loc: Tensor | None = None,
        scale: Tensor | None = None,
    ) -> None:
        self.logits = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
        self.temperature = float(temperature)
        self.straight_through = bool(straight_through)
        self.continuous = (
            None
            if loc is None or loc.shape[-1] == 0
            else Independent(Normal(loc, scale, validate_args=False), 1, validate_args=False)
        )
        self.num_variables, self.num_categories = logits.shape[-2:]
        self.continuous_dim = 0 if self.continuous is None else loc.shape[-1]
        size = self.continuous_dim + self.num_variables * self.num_categories
        super().__init__(logits.shape[:-2], torch.Size([size]), validate_args=False)

    @property
    def support(self) -> constraints.Constraint:
        return constraints.real_vector

    @property
    def probs(self) -> Tensor:
        return self.logits.exp()

    def _join(self, continuous: Tensor | None, discrete: Tensor) -> Tensor:
        flat = discrete.flatten(-2)
        return flat if continuous is None else torch.cat([continuous, flat], dim=-1)

    def split(self, z: Tensor) -> tuple[Tensor | None, Tensor]:
        """The continuous block [..., D_c] (None if there is none) and the categorical one
        [..., N, K] of codes z [..., D]."""
        continuous = z[..., : self.continuous_dim] if self.continuous is not None else None
        discrete = z[..., self.continuous_dim :]
        return continuous, discrete.unflatten(-1, (self.num_variables, self.num_categories))

    @property
    def mean(self) -> Tensor:
        """E z: the Gaussian means, then the category probabilities."""
        return self._join(None if self.continuous is None else self.continuous.mean, self.probs)

    @property
    def variance(self) -> Tensor:
        """Var z: σ² of the Gaussian block, π(1 − π) of each one-hot number."""
        probs = self.probs
        return self._join(
            None if self.continuous is None else self.continuous.variance, probs * (1 - probs)
        )

    @property
    def mode(self) -> Tensor:
        """The most probable code: the Gaussian means and the one-hot argmax of each variable."""
        one_hot = F.one_hot(self.logits.argmax(-1), self.num_categories).to(self.logits)
        return self._join(None if self.continuous is None else self.continuous.mean, one_hot)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        """One-hot codes of the discrete model (and Gaussian draws for the continuous block)."""
        with torch.no_grad():
            return self.draw(sample_shape, relaxed=False).z

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:  # noqa: ARG002
        raise VaelabError(
            "a categorical latent has no reparameterised draw of its own: it is relaxed for "
            "training by model=gumbel_vae or model=joint_vae (vaelab.models.discrete), which "
            "draw from it with draw(); use one of them"
        )

    def draw(self, sample_shape: torch.Size | tuple = (), relaxed: bool = True) -> CodeDraw:
        """``relaxed``: a Concrete draw at :attr:`temperature` (reparameterised; straight-through
        if set), scored by :meth:`log_density` at its log y; else one-hot codes, scored by the
        categorical densities."""
        sample_shape = torch.Size(sample_shape)
        continuous = None if self.continuous is None else self.continuous.rsample(sample_shape)
        logits = self.logits.expand(*sample_shape, *self.logits.shape)
        if not relaxed:
            drawn = torch.distributions.Categorical(logits=logits, validate_args=False).sample()
            one_hot = F.one_hot(drawn, self.num_categories).to(logits)
            code = self._join(continuous, one_hot)
            return CodeDraw(z=code, point=code)
        gumbel = -torch.empty_like(logits).exponential_().log()
        log_soft = torch.log_softmax((logits + gumbel) / self.temperature, dim=-1)
        soft = log_soft.exp()
        if self.straight_through:
            hard = F.one_hot(log_soft.argmax(-1), self.num_categories).to(soft)
            soft = hard + soft - soft.detach()
        return CodeDraw(z=self._join(continuous, soft), point=self._join(continuous, log_soft))

    def log_prob(self, value: Tensor) -> Tensor:
        """log q(z) of one-hot codes z (the discrete model): Σ_n log π_n,k(n) plus the Gaussian
        block's log-density."""
        continuous, one_hot = self.split(value)
        log_p = (one_hot * self.logits).sum((-1, -2))
        return log_p if continuous is None else log_p + self.continuous.log_prob(continuous)

    def log_density(self, point: Tensor, relaxed: bool, temperature: float | None = None) -> Tensor:
        """log-density of a :class:`CodeDraw`'s ``point``: the Concrete density at
        ``temperature`` (default this distribution's) of a relaxed draw, summed over the N
        variables (Maddison et al. 2017, §C: a prior scores the posterior's relaxed draws at the
        posterior's temperature), or :meth:`log_prob` of a one-hot one."""
        if not relaxed:
            return self.log_prob(point)
        continuous, log_soft = self.split(point)
        tau = self.temperature if temperature is None else float(temperature)
        log_p = concrete_log_density(self.logits, log_soft, tau).sum(-1)
        return log_p if continuous is None else log_p + self.continuous.log_prob(continuous)

    def entropy(self) -> Tensor:
        """H of the categorical variables, Σ_n −Σ_k π_nk log π_nk (the Gaussian block's
        entropy added where there is one); Σ_n log K for uniform ones."""
        entropy = -(self.probs * self.logits).sum((-1, -2))
        return entropy if self.continuous is None else entropy + self.continuous.entropy()

    def categorical_kl(self, other: DiscreteCode) -> Tensor:
        """Σ_n KL(Cat(π_n) || Cat(π'_n)) = Σ_n Σ_k π_nk (log π_nk − log π'_nk)."""
        return (self.probs * (self.logits - other.logits)).sum((-1, -2))


@latent_blocks.register
def _(distribution: DiscreteCode) -> dict[str, Distribution]:
    """The Gaussian block (if any) and the categorical variables, each a distribution of its
    own (JointVAE's two KLs, Dupont 2018, eq. 7)."""
    blocks: dict[str, Distribution] = {}
    if distribution.continuous is not None:
        blocks["continuous"] = distribution.continuous
    blocks["discrete"] = DiscreteCode(distribution.logits, distribution.temperature)
    return blocks


@register_kl(DiscreteCode, DiscreteCode)
def _kl_discrete_code(q: DiscreteCode, p: DiscreteCode) -> Tensor:
    """The categorical KL of the discrete model (Jang et al. 2017, §3's KL term), plus the
    Gaussian blocks' closed form when both have one (JointVAE, Dupont 2018, eq. 7's two KLs)."""
    kl = q.categorical_kl(p)
    if q.continuous is not None:
        if p.continuous is None:
            raise NotImplementedError
        kl = kl + torch.distributions.kl_divergence(q.continuous, p.continuous)
    return kl


@checked_arguments("model.posterior")
class CategoricalPosterior(Posterior):
    """q(z|x): N categorical variables of ``num_categories`` categories after an optional
    Gaussian block of ``continuous_dim`` numbers (JointVAE). The encoder outputs (μ, log σ²)
    of the Gaussian block and the categories' logits. The relaxation's temperature follows
    the training step (:meth:`at_step`, the module's hook): constant for ``anneal_rate = 0``,
    else Jang et al.'s exponential decay (module doc)."""

    def __init__(
        self,
        num_categories: Annotated[int, Range(ge=2)] = 10,
        continuous_dim: NonNegativeInt = 0,
        temperature: PositiveFloat = 1.0,
        temperature_min: PositiveFloat = 0.5,
        anneal_rate: NonNegativeFloat = 0.0,
        anneal_every: PositiveInt = 1,
        straight_through: bool = False,
    ) -> None:
        super().__init__()
        if temperature_min > temperature:
            raise VaelabError(
                f"model.posterior.temperature_min={temperature_min} is above "
                f"model.posterior.temperature={temperature}: the schedule only anneals "
                "downwards; lower temperature_min"
            )
        self.num_categories = int(num_categories)
        self.continuous_dim = int(continuous_dim)
        self.initial_temperature = float(temperature)
        self.temperature_min = float(temperature_min)
        self.anneal_rate = float(anneal_rate)
        self.anneal_every = int(anneal_every)
        self.straight_through = bool(straight_through)
        #: the temperature of the current training step (set by :meth:`at_step`)
        self.temperature = self.temperature_at(0)

    def temperature_at(self, step: int) -> float:
        """τ(step) = max(τ_min, τ₀·exp(−r·⌊step/every⌋·every)) (Jang et al. 2017, Appendix)."""
        counted = (int(step) // self.anneal_every) * self.anneal_every
        decayed = self.initial_temperature * math.exp(-self.anneal_rate * counted)
        return max(self.temperature_min, decayed)

    def at_step(self, step: int) -> dict[str, float]:
        """Set the temperature of training step ``step``; returns it to be logged."""
        self.temperature = self.temperature_at(step)
        return {"temperature": self.temperature}

    def num_variables(self, latent_dim: int) -> int:
        """N, the number of categorical variables in a code of ``latent_dim`` numbers."""
        discrete = int(latent_dim) - self.continuous_dim
        if discrete <= 0 or discrete % self.num_categories:
            raise VaelabError(
                f"a code of {latent_dim} numbers is not {self.continuous_dim} continuous ones "
                f"and whole one-hot vectors of {self.num_categories} categories; check "
                "model.num_variables and model.posterior.*"
            )
        return discrete // self.num_categories

    def num_params(self, latent_dim: int) -> int:
        self.num_variables(latent_dim)
        return int(latent_dim) + self.continuous_dim

    def distribution(self, encoder_output: Tensor) -> DiscreteCode:
        output = encoder_output.float()
        loc = scale = None
        if self.continuous_dim:
            loc = output[..., : self.continuous_dim]
            log_var = output[..., self.continuous_dim : 2 * self.continuous_dim]
            scale = torch.exp(0.5 * log_var)
            output = output[..., 2 * self.continuous_dim :]
        logits = output.unflatten(-1, (-1, self.num_categories))
        return DiscreteCode(logits, self.temperature, self.straight_through, loc, scale)

    def mean(self, encoder_output: Tensor) -> Tensor:
        """The code reconstructions decode: the most probable one (one-hot argmax), a code of
        the discrete model (the probabilities E_q z are not)."""
        return self.distribution(encoder_output).mode
