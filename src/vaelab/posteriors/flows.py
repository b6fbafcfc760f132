"""Normalising flows: invertible maps f with a tractable log |det ∂f/∂z|, written as
``torch.distributions.Transform`` subclasses, the networks inside them, the distribution a flow
posterior returns, and the common base of the flow posteriors.

A flow pushes a base density q₀ through f = f_K ∘ … ∘ f_1; the density of z_K = f(z₀) is
log q_K(z_K) = log q₀(z₀) − Σ_k log |det ∂f_k/∂z_{k−1}| (Rezende & Mohamed 2015, eq. 7).
``torch.distributions.TransformedDistribution`` does this sum; each transform here supplies
its forward map, its inverse and its log-determinant. Every transform caches its last (x, y)
pair (``cache_size=1``), so the log-density of a sample just drawn needs no inversion.

With all its parameters zero every transform here is the identity (the networks' output layers
start at zero, so a fresh IAF or coupling flow is the identity too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Independent, Normal, Transform, TransformedDistribution, constraints

from vaelab.errors import VaelabError
from vaelab.posteriors.base import Posterior

#: a transform acts on whole latent vectors z ∈ R^D (event dimension 1)
LATENT_VECTORS = constraints.independent(constraints.real, 1)
#: softplus(SOFTPLUS_ONE) = 1
SOFTPLUS_ONE = math.log(math.e - 1.0)
#: bisection steps of the planar inverse: the bracket shrinks by 2⁻⁶⁰, below float64's ulp
PLANAR_BISECTION_STEPS = 60
#: draws behind the Monte-Carlo variance of a flow posterior (a fixed-seed private generator)
VARIANCE_SAMPLES = 128


def _as_dtype_of(network: nn.Module, x: Tensor) -> Tensor:
    """``x`` in the network's weight dtype (bf16-true runs keep the flow in float32 outside)."""
    weight = next(network.parameters())
    return x if x.dtype == weight.dtype else x.to(weight.dtype)


# -- transforms ---------------------------------------------------------------------------
class PlanarTransform(Transform):
    """f(z) = z + û tanh(wᵀz + b) (Rezende & Mohamed 2015, eq. 10) with
    log |det ∂f/∂z| = log |1 + ûᵀψ(z)|, ψ(z) = tanh'(wᵀz + b) w (eqs. 11–12).

    û = u + [m(wᵀu) − wᵀu] w / ‖w‖² makes wᵀû = m(wᵀu) > −1, so f is invertible (their
    Appendix A). m(a) = softplus(a + log(e − 1)) − 1 is the paper's −1 + softplus(a) shifted
    so that m(0) = 0: then u = 0 gives û = 0 and the identity whatever w is.

    ``u``, ``w`` [..., D] and ``b`` [...] broadcast against z's leading axes (amortised
    parameters carry the batch axis). The inverse solves the scalar equation
    wᵀy = a + wᵀû tanh(a + b) for a = wᵀx by bisection (its right side increases with a).
    """

    domain = LATENT_VECTORS
    codomain = LATENT_VECTORS
    bijective = True

    def __init__(self, u: Tensor, w: Tensor, b: Tensor) -> None:
        super().__init__(cache_size=1)
        w_dot_u = (w * u).sum(-1, keepdim=True)
        m = F.softplus(w_dot_u + SOFTPLUS_ONE) - 1.0
        norm_sq = (w * w).sum(-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
        self.u_hat = u + (m - w_dot_u) * w / norm_sq
        self.w = w
        self.b = b

    def _pre_activation(self, x: Tensor) -> Tensor:
        return (x * self.w).sum(-1) + self.b

    def _call(self, x: Tensor) -> Tensor:
        return x + self.u_hat * torch.tanh(self._pre_activation(x)).unsqueeze(-1)

    def _inverse(self, y: Tensor) -> Tensor:
        slope = (self.w * self.u_hat).sum(-1)  # wᵀû > −1
        target = (y * self.w).sum(-1)  # wᵀy = a + slope · tanh(a + b), solved for a
        low = target - slope.abs() - 1.0
        high = target + slope.abs() + 1.0
        for _ in range(PLANAR_BISECTION_STEPS):
            middle = 0.5 * (low + high)
            below = middle + slope * torch.tanh(middle + self.b) < target
            low = torch.where(below, middle, low)
            high = torch.where(below, high, middle)
        projection = 0.5 * (low + high)  # a = wᵀx
        return y - self.u_hat * torch.tanh(projection + self.b).unsqueeze(-1)

    # torch's Transform interface passes y too; these log-determinants need only x
    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:  # noqa: ARG002
        derivative = 1.0 - torch.tanh(self._pre_activation(x)) ** 2
        return torch.log1p(derivative * (self.w * self.u_hat).sum(-1))


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask [out, in]."""

    def __init__(self, mask: Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float())

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """An autoregressive network (MADE, Germain et al. 2015, §4): outputs (shift m, raw scale
    s) ∈ R^D × R^D where m_i and s_i depend only on the inputs before i in the order.

    Input i has degree d(i) ∈ {1, …, D} (``reverse`` flips the order: stacked IAF steps
    alternate it, Kingma et al. 2016, §4); hidden unit k gets degree k mod D ∈ {0, …, D − 1};
    a weight is kept when the receiving unit's degree is ≥ the sender's (hidden layers) or
    > it (the output). A context vector h enters the first hidden layer unmasked (the IAF
    AR-NN's extra input h, Kingma et al. 2016, Algorithm 1); degree-0 units see only h, so
    even z₁ (or a 1-D latent) is shifted and scaled by a function of h. ELU activations;
    the output layer starts at zero (m = s = 0).
    """

    def __init__(
        self, latent_dim: int, hidden_dims: Sequence[int], context_dim: int, reverse: bool
    ) -> None:
        super().__init__()
        if not hidden_dims:
            raise VaelabError("a MADE needs at least one hidden layer: set hidden_dims")
        self.latent_dim = latent_dim
        degrees = torch.arange(1, latent_dim + 1)
        input_degrees = degrees.flip(0) if reverse else degrees
        first_width = int(hidden_dims[0])
        self.context = nn.Linear(context_dim, first_width) if context_dim else None
        previous = input_degrees
        layers = []
        for width in hidden_dims:
            hidden = torch.arange(int(width)) % latent_dim
            layers.append(MaskedLinear(hidden[:, None] >= previous[None, :]))
            previous = hidden
        self.hidden = nn.ModuleList(layers)
        # two heads (m, s), each connected like the inputs' degrees
        output_degrees = torch.cat([input_degrees, input_degrees])
        self.output = MaskedLinear(output_degrees[:, None] > previous[None, :])
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, z: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        """(m, s), each shaped like ``z`` [..., D]; ``context`` [B', H] broadcasts to z."""
        out = self.hidden[0](_as_dtype_of(self, z))
        if self.context is not None:
            out = out + self.context(_as_dtype_of(self, context))
        out = F.elu(out)
        for layer in self.hidden[1:]:
            out = F.elu(layer(out))
        shift, raw_scale = self.output(out).float().chunk(2, dim=-1)
        return shift, raw_scale


class InverseAutoregressiveTransform(Transform):
    """One IAF step (Kingma et al. 2016): (m, s) = MADE(z, h), then

    - ``affine``: z_new = m + exp(s) ⊙ z (their eq. 10 with σ = exp s; the identity at s = m = 0);
    - ``gated``: σ = sigmoid(s + gate_bias), z_new = σ ⊙ z + (1 − σ) ⊙ m (the numerically stable
      update of their Algorithm 1; ``gate_bias`` > 0 starts it close to the identity).

    The Jacobian is triangular, so log |det| = Σ_i log σ_i (their eq. 11). The inverse takes D
    passes (each fixes one more coordinate); sampling and the density of a sample take one.
    """

    domain = LATENT_VECTORS
    codomain = LATENT_VECTORS
    bijective = True

    def __init__(
        self, network: MADE, context: Tensor | None, gated: bool, gate_bias: float
    ) -> None:
        super().__init__(cache_size=1)
        self.network = network
        self.context = context
        self.gated = gated
        self.gate_bias = gate_bias
        self._last_log_det: tuple[Tensor, Tensor] | None = None

    def _shift_and_log_scale(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(shift, scale, log scale) with z_new = shift + scale ⊙ z."""
        context = self.context
        if context is not None:
            context = context.expand(*x.shape[:-1], context.shape[-1])
        m, s = self.network(x, context)
        if not self.gated:
            return m, torch.exp(s), s
        gate_input = s + self.gate_bias
        gate = torch.sigmoid(gate_input)
        return (1.0 - gate) * m, gate, F.logsigmoid(gate_input)

    def _call(self, x: Tensor) -> Tensor:
        shift, scale, log_scale = self._shift_and_log_scale(x)
        self._last_log_det = (x, log_scale.sum(-1))
        return shift + scale * x

    def _inverse(self, y: Tensor) -> Tensor:
        x = torch.zeros_like(y)
        for _ in range(y.shape[-1]):  # coordinate i is exact after pass i
            shift, scale, _ = self._shift_and_log_scale(x)
            x = (y - shift) / scale
        return x

    # torch's Transform interface passes y too; these log-determinants need only x
    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:  # noqa: ARG002
        if self._last_log_det is not None and self._last_log_det[0] is x:
            return self._last_log_det[1]
        return self._shift_and_log_scale(x)[2].sum(-1)


class CouplingNetwork(nn.Module):
    """(s, t) = NN(b ⊙ z, h): an MLP with ELU activations on the kept half of z (and the
    context h, when there is one); its output layer starts at zero (s = t = 0)."""

    def __init__(self, latent_dim: int, hidden_dims: Sequence[int], context_dim: int) -> None:
        super().__init__()
        sizes = [latent_dim + context_dim, *(int(w) for w in hidden_dims)]
        layers: list[nn.Module] = []
        for fan_in, fan_out in pairwise(sizes):
            layers += [nn.Linear(fan_in, fan_out), nn.ELU()]
        last = nn.Linear(sizes[-1], 2 * latent_dim)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.layers = nn.Sequential(*layers, last)

    def forward(self, kept: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        inputs = kept if context is None else torch.cat([kept, context], -1)
        raw_log_scale, shift = self.layers(_as_dtype_of(self, inputs)).float().chunk(2, -1)
        return raw_log_scale, shift


class AffineCouplingTransform(Transform):
    """The affine coupling layer of RealNVP (Dinh et al. 2017, eqs. 4–6, masked form eq. 9):
    y = b ⊙ x + (1 − b) ⊙ (x ⊙ exp(s) + t), (s, t) = NN(b ⊙ x [, h]), log |det| = Σ (1 − b) ⊙ s.

    s = scale ⊙ tanh(raw s) with a learned per-dimension ``scale`` (RealNVP's tanh with a
    learned scale, their §4.1) keeps each layer's log-scale bounded. Both directions cost one
    network pass.
    """

    domain = LATENT_VECTORS
    codomain = LATENT_VECTORS
    bijective = True

    def __init__(
        self, network: CouplingNetwork, mask: Tensor, scale: Tensor, context: Tensor | None
    ) -> None:
        super().__init__(cache_size=1)
        self.network = network
        self.mask = mask
        self.scale = scale
        self.context = context
        self._last_log_det: tuple[Tensor, Tensor] | None = None

    def _log_scale_and_shift(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        context = self.context
        if context is not None:
            context = context.expand(*kept.shape[:-1], context.shape[-1])
        raw_log_scale, shift = self.network(kept, context)
        free = 1.0 - self.mask
        return free * self.scale * torch.tanh(raw_log_scale), free * shift

    def _call(self, x: Tensor) -> Tensor:
        log_scale, shift = self._log_scale_and_shift(self.mask * x)
        self._last_log_det = (x, log_scale.sum(-1))
        return x * torch.exp(log_scale) + shift

    def _inverse(self, y: Tensor) -> Tensor:
        log_scale, shift = self._log_scale_and_shift(self.mask * y)
        return (y - shift) * torch.exp(-log_scale)

    # torch's Transform interface passes y too; these log-determinants need only x
    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:  # noqa: ARG002
        if self._last_log_det is not None and self._last_log_det[0] is x:
            return self._last_log_det[1]
        return self._log_scale_and_shift(self.mask * x)[0].sum(-1)


def alternating_masks(latent_dim: int, num_flows: int) -> Tensor:
    """[K, D] 0/1 masks b_k: layer k keeps the coordinates j with (j + k) even (RealNVP's
    alternating pattern, Dinh et al. 2017, §3.4), so consecutive layers update each other's."""
    index = torch.arange(latent_dim)
    return torch.stack([((index + k) % 2 == 0).float() for k in range(num_flows)])


class AffineCouplingStack(nn.Module):
    """K affine coupling layers with alternating masks, optionally conditioned on a context
    vector (the flow of ``posterior=affine_coupling`` and ``prior=flow``)."""

    def __init__(
        self, latent_dim: int, num_flows: int, hidden_dims: Sequence[int], context_dim: int
    ) -> None:
        super().__init__()
        self.register_buffer("masks", alternating_masks(latent_dim, num_flows), persistent=False)
        self.networks = nn.ModuleList(
            CouplingNetwork(latent_dim, hidden_dims, context_dim) for _ in range(num_flows)
        )
        self.scales = nn.Parameter(torch.ones(num_flows, latent_dim))

    def transforms(self, context: Tensor | None) -> list[Transform]:
        return [
            AffineCouplingTransform(network, mask, scale.float(), context)
            for network, mask, scale in zip(self.networks, self.masks, self.scales, strict=True)
        ]


# -- the distribution -----------------------------------------------------------------------
class FlowDistribution(TransformedDistribution):
    """A base N(μ, diag σ²) pushed through a flow: sampling, ``rsample`` and ``log_prob`` are
    exact (``TransformedDistribution``).

    ``mean`` is f(μ₀), the flow applied to the base mean — a central code for
    reconstructions, plots and active units, *not* E[z], which has no closed form. ``variance``
    is a Monte-Carlo estimate of Var[z_j] from :data:`VARIANCE_SAMPLES` draws of a private
    generator with a fixed seed (deterministic; the global RNG is left alone).
    """

    def __init__(self, base: Independent, transforms: list[Transform]) -> None:
        super().__init__(base, transforms, validate_args=False)

    def _push(self, z: Tensor) -> Tensor:
        for transform in self.transforms:
            z = transform(z)
        return z

    @property
    def mean(self) -> Tensor:
        return self._push(self.base_dist.mean)

    @property
    def variance(self) -> Tensor:
        base: Normal = self.base_dist.base_dist
        generator = torch.Generator(device=base.loc.device).manual_seed(0)
        noise = torch.randn(
            (VARIANCE_SAMPLES, *base.loc.shape),
            generator=generator,
            device=base.loc.device,
            dtype=base.loc.dtype,
        )
        return self._push(base.loc + base.scale * noise).var(0)


# -- the posterior family -----------------------------------------------------------------
class FlowPosterior(Posterior):
    """q(z|x): a diagonal Gaussian q₀ = N(μ, diag σ²) from the encoder (σ = exp(s/2), s the
    encoder's log σ²) pushed through a flow whose transforms may read more encoder outputs
    (amortised flow parameters, a context vector). q does not factorise and KL(q || p) has no
    closed form: ``objective.kl=auto`` takes the Monte-Carlo KL.

    The encoder's outputs per data point are laid out as [μ (D), log σ² (D), flow inputs
    (:meth:`num_flow_inputs`)]. The flow's own networks need D, which a posterior first learns
    from :meth:`num_params` (the first thing every model asks of it): they are created there,
    once; asking again for another D is an error.
    """

    factorizes = False

    def __init__(self, num_flows: int) -> None:
        super().__init__()
        if int(num_flows) < 1:
            raise VaelabError(f"model.posterior.num_flows must be >= 1, got {num_flows}")
        self.num_flows = int(num_flows)
        self.latent_dim: int | None = None

    def num_flow_inputs(self, latent_dim: int) -> int:
        """Encoder outputs the flow reads per data point (0: nothing amortised)."""
        raise NotImplementedError

    def build(self, latent_dim: int) -> None:
        """Create the flow's parameters for a latent of size ``latent_dim``."""

    def transforms(self, flow_inputs: Tensor) -> list[Transform]:
        """The flow f_1, …, f_K for encoder outputs ``flow_inputs`` [B, num_flow_inputs]."""
        raise NotImplementedError

    def num_params(self, latent_dim: int) -> int:
        latent_dim = int(latent_dim)
        if self.latent_dim is None:
            self.latent_dim = latent_dim
            self.build(latent_dim)
        elif latent_dim != self.latent_dim:
            raise VaelabError(
                f"this {type(self).__name__} was built for latent_dim={self.latent_dim} and "
                f"cannot serve latent_dim={latent_dim}: give each latent its own posterior"
            )
        return 2 * latent_dim + self.num_flow_inputs(latent_dim)

    def distribution(self, encoder_output: Tensor) -> FlowDistribution:
        if self.latent_dim is None:
            raise VaelabError(f"{type(self).__name__}.num_params(latent_dim) was never called")
        dim = self.latent_dim
        encoder_output = encoder_output.float()
        mu, log_var = encoder_output[..., :dim], encoder_output[..., dim : 2 * dim]
        base = Independent(
            Normal(mu, torch.exp(0.5 * log_var), validate_args=False), 1, validate_args=False
        )
        return FlowDistribution(base, self.transforms(encoder_output[..., 2 * dim :]))

    def mean(self, encoder_output: Tensor) -> Tensor:
        """f(μ₀), the flow applied to the base mean (see :class:`FlowDistribution`)."""
        return self.distribution(encoder_output).mean
