"""The Hamiltonian VAE (Caterini, Doucet & Sejdinovic 2018): K tempered leapfrog steps move a
sample of q(z₀|x) towards the posterior, and the ELBO is taken in the extended space of
(z, v), position and momentum v (the paper's rho)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vaelab.likelihoods.base import Likelihood
from vaelab.models.interface import LatentSamples, LatentStructure, MissingCapability
from vaelab.models.vae import VAE, NetworkBuilder
from vaelab.posteriors.base import Posterior
from vaelab.priors.base import Prior
from vaelab.schema import ImageShape, NonNegativeInt, PositiveFloat, Range, checked_arguments

Tempering = Literal["quadratic", "none"]
#: ∇_z U(z) for positions [..., D]
PotentialGradient = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class PhasePoint:
    """A point of phase space: positions z and momenta v, both [..., D]."""

    z: Tensor
    rho: Tensor


def leapfrog(point: PhasePoint, step_size: Tensor, gradient: PotentialGradient) -> PhasePoint:
    """One leapfrog step of H(z, v) = U(z) + ½vᵀv (Caterini et al. 2018, Alg. 1, the three
    updates inside the loop): v ← v − ε/2 ⊙ ∇U(z), z ← z + ε ⊙ v, v ← v − ε/2 ⊙ ∇U(z).
    Volume-preserving and reversible (negating v runs it backwards); ε [D] or a scalar."""
    rho = point.rho - 0.5 * step_size * gradient(point.z)
    z = point.z + step_size * rho
    return PhasePoint(z, rho - 0.5 * step_size * gradient(z))


def quadratic_tempering(initial_inverse_temperature: Tensor, num_steps: int) -> list[Tensor]:
    """β₀, …, β_K of Caterini et al. 2018's quadratic tempering schedule:
    1/√β_k = (1 − 1/√β₀) k²/K² + 1/√β₀, so β_K = 1."""
    inverse_root = initial_inverse_temperature.rsqrt()
    return [
        ((1.0 - inverse_root) * (k / num_steps) ** 2 + inverse_root) ** -2
        for k in range(num_steps + 1)
    ]


@dataclass(frozen=True)
class Moved:
    """The end of the flow: positions z_K [..., D], log of the target's momentum density at
    v_K and log of the initial momentum's density less the flow's log-det, both [...]."""

    z: Tensor
    log_target_momentum: Tensor
    log_initial_momentum: Tensor


def standard_normal_log_density(rho: Tensor) -> Tensor:
    """log N(v; 0, I) summed over the last axis."""
    return -0.5 * (rho.square().sum(-1) + rho.shape[-1] * math.log(2 * math.pi))


@checked_arguments("model")
class HamiltonianVAE(VAE):
    """The HVAE (Caterini et al. 2018, Alg. 1 and 2): z₀ ~ q(z₀|x) (``posterior=``),
    v₀ ~ N(0, β₀⁻¹ I), then K leapfrog steps of H(z, v) = −log p(x, z) + ½vᵀv, each followed
    by tempering v ← √(β_{k−1}/β_k) v. The flow's Jacobian is the tempering's alone (leapfrog
    preserves volume): (β₀/β_K)^{D/2} = β₀^{D/2}, so the log-weight in the extended space is
    (the extended-space ELBO of their §3, with the target N(v_K; 0, I))

        log w = log p(x, z_K) + log N(v_K; 0, I) − log q(z₀|x) − log N(v₀; 0, β₀⁻¹ I)
                + (D/2) log β₀.

    :meth:`sample_latents` returns z_K with log p(z) := log p(z_K) + log N(v_K; 0, I) and
    log q := log q(z₀|x) + log N(v₀; 0, β₀⁻¹ I) − (D/2) log β₀, so the one ELBO engine, the
    IWAE family and the IW-NLL use this weight unchanged (the logged ``kl`` is the extended
    space's). The step sizes ε ∈ R^D (positive, log-parameterised) and β₀ ∈ (0, 1] (√β₀ a
    sigmoid) are learned when ``learn_step_size`` / ``learn_tempering``, as in the paper;
    ``tempering=none`` keeps β_k = 1. K = 0 is the VAE: no momentum is drawn.
    """

    #: one leapfrog step size per latent dimension (the paper's ε ∈ R^D), else one for all
    step_size_per_dimension: ClassVar[bool] = True

    def __init__(
        self,
        net: NetworkBuilder,
        latent_dim: Annotated[int, Range(ge=1)],
        input_shape: ImageShape,
        posterior: Posterior | None = None,
        likelihood: Likelihood | None = None,
        prior: Prior | None = None,
        num_leapfrog_steps: NonNegativeInt = 3,
        step_size: PositiveFloat = 0.01,
        learn_step_size: bool = True,
        tempering: Tempering = "quadratic",
        initial_inverse_temperature: Annotated[float, Range(gt=0, lt=1)] = 0.3,
        learn_tempering: bool = True,
    ) -> None:
        super().__init__(net, latent_dim, input_shape, posterior, likelihood, prior)
        self.num_leapfrog_steps = int(num_leapfrog_steps)
        self.tempering = tempering
        step_sizes = self.latent_dim if self.step_size_per_dimension else 1
        log_step = torch.full((step_sizes,), math.log(step_size))
        self.log_step_size = nn.Parameter(log_step, requires_grad=bool(learn_step_size))
        root = math.sqrt(initial_inverse_temperature)
        self.raw_root_inverse_temperature = nn.Parameter(
            torch.tensor(math.log(root / (1.0 - root))), requires_grad=bool(learn_tempering)
        )

    @property
    def latent_structure(self) -> LatentStructure:
        dim = int(self.latent_dim)
        return LatentStructure((dim,), dim, encoded_posterior=self.num_leapfrog_steps == 0)

    @property
    def step_size(self) -> Tensor:
        """ε [D] (or [1])."""
        return self.log_step_size.float().exp()

    @property
    def initial_inverse_temperature(self) -> Tensor:
        """β₀ (1 without tempering)."""
        if self.tempering == "none":
            return torch.ones((), device=self.log_step_size.device)
        return torch.sigmoid(self.raw_root_inverse_temperature.float()).square()

    def inverse_temperatures(self) -> list[Tensor]:
        """β₀, …, β_K."""
        beta_zero = self.initial_inverse_temperature
        if self.tempering == "none":
            return [beta_zero] * (self.num_leapfrog_steps + 1)
        return quadratic_tempering(beta_zero, self.num_leapfrog_steps)

    def hamiltonian_terms(self) -> dict[str, float]:
        """The flow's own numbers (β₀, mean ε) for reports."""
        return {
            "initial_inverse_temperature": float(self.initial_inverse_temperature),
            "step_size_mean": float(self.step_size.mean()),
        }

    # -- the flow ---------------------------------------------------------------------------
    def potential_gradient(
        self, x: Tensor, y: Tensor | None, create_graph: bool
    ) -> PotentialGradient:
        """z ↦ ∇_z U(z), U(z) = −log p(x|z) − log p(z) for positions [..., B, D]."""

        def gradient(z: Tensor) -> Tensor:
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            log_joint = self.decode(z, y).log_prob(x) + self.prior.log_prob(z, y)
            (grad,) = torch.autograd.grad(-log_joint.sum(), z, create_graph=create_graph)
            return grad

        return gradient

    def flow(
        self, z0: Tensor, rho0: Tensor, gradient: PotentialGradient
    ) -> tuple[PhasePoint, Tensor]:
        """(z_K, v_K) from (z₀, v₀) and log β₀; the K tempered leapfrog steps."""
        betas = self.inverse_temperatures()
        step_size = self.step_size.to(z0.dtype)
        point = PhasePoint(z0, rho0)
        for k in range(1, self.num_leapfrog_steps + 1):
            point = leapfrog(point, step_size, gradient)
            point = PhasePoint(point.z, point.rho * (betas[k - 1] / betas[k]).sqrt())
        return point, betas[0].log()

    def move(
        self, x: Tensor, y: Tensor | None, z0: Tensor, q0: Distribution, create_graph: bool
    ) -> Moved:
        """Draw the initial momentum, run the K tempered steps from z₀ and score both momenta."""
        del q0  # the Euclidean kinetic energy does not read q(z₀|x)
        beta_zero = self.initial_inverse_temperature
        gamma = torch.randn_like(z0)
        gradient = self.potential_gradient(x, y, create_graph=create_graph)
        end, log_beta_zero = self.flow(z0, gamma * beta_zero.rsqrt(), gradient)
        dim = z0.shape[-1]
        # log N(v₀; 0, β₀⁻¹ I) = log N(γ; 0, I) + (D/2) log β₀, less the tempering's log-det
        # Σ_k (D/2) log(β_{k−1}/β_k) = (D/2) log β₀
        tempering_log_det = 0.5 * dim * log_beta_zero
        return Moved(
            z=end.z,
            log_target_momentum=standard_normal_log_density(end.rho),
            log_initial_momentum=standard_normal_log_density(gamma)
            + 0.5 * dim * log_beta_zero
            - tempering_log_det,
        )

    def sample_latents(
        self, x: Tensor, y: Tensor | None = None, num_samples: int | None = None
    ) -> LatentSamples:
        if self.num_leapfrog_steps == 0:
            return super().sample_latents(x, y, num_samples)
        q0: Distribution = self.encode(x, y)
        z0 = q0.rsample(() if num_samples is None else (int(num_samples),))
        log_q0 = q0.log_prob(z0)
        training_graph = torch.is_grad_enabled()
        # the leapfrog steps need ∇U also when evaluating, under Lightning's inference mode too
        # (whose tensors autograd cannot record: they are cloned out of it)
        with torch.inference_mode(False), torch.enable_grad():
            x_flow, y_flow, z_start = (
                t.clone() if isinstance(t, Tensor) and t.is_inference() else t for t in (x, y, z0)
            )
            moved = self.move(x_flow, y_flow, z_start, q0, create_graph=training_graph)
        if not training_graph:
            moved = Moved(
                moved.z.detach(),
                moved.log_target_momentum.detach(),
                moved.log_initial_momentum.detach(),
            )
        z_k = moved.z
        observation = self.decode(z_k, y)
        return LatentSamples(
            z=z_k,
            posterior=q0,
            observation=observation,
            log_likelihood=lambda: observation.log_prob(x),
            log_prior=lambda: self.prior.log_prob(z_k, y) + moved.log_target_momentum,
            log_posterior=log_q0 + moved.log_initial_momentum,
        )

    def log_posterior_stopped(
        self,
        samples: LatentSamples,  # noqa: ARG002
        x: Tensor,  # noqa: ARG002
        y: Tensor | None = None,  # noqa: ARG002
    ) -> Tensor:
        raise MissingCapability(
            f"{type(self).__name__}'s samples went through leapfrog steps that read the "
            "decoder: their density with q's parameters stopped is not defined here"
        )
