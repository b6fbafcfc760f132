"""The Riemannian Hamiltonian VAE (Chadebec, Mantoux & Allassonnière 2020, "Geometry-aware
Hamiltonian Variational Auto-Encoder"): the HVAE's flow on a learned Riemannian metric of the
latent space, integrated by the generalised leapfrog, and generation by HMC on the density the
metric induces."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vaelab.likelihoods.base import Likelihood
from vaelab.models.hamiltonian import (
    HamiltonianVAE,
    Moved,
    PhasePoint,
    PotentialGradient,
    Tempering,
    leapfrog,
)
from vaelab.models.vae import NetworkBuilder
from vaelab.posteriors.base import Posterior
from vaelab.priors.base import Prior
from vaelab.schema import (
    ImageShape,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Range,
    checked_arguments,
)

Generation = Literal["manifold", "prior"]


def squared_distances(z: Tensor, centroids: Tensor) -> Tensor:
    """‖z − c_i‖² [..., N] for z [..., D] and centroids [N, D], by ‖z‖² − 2 z·c_i + ‖c_i‖²
    (no [..., N, D] difference tensor: evaluation has 10⁵ points and 500 centroids)."""
    cross = z @ centroids.transpose(-1, -2)
    return (z.square().sum(-1, keepdim=True) - 2 * cross + centroids.square().sum(-1)).clamp_min(0)


@dataclass(frozen=True)
class KernelMetric:
    """The RHVAE's metric (Chadebec et al. 2020, eq. 6): ``centroids`` c [N, D] and
    lower-triangular ``factors`` L [N, D, D] give

        G⁻¹(z) = Σ_i L_i L_iᵀ exp(−‖z − c_i‖² / T²) + λ I.

    Its derivatives in z are analytic (:meth:`kinetic_gradient`), so the generalised leapfrog
    differentiates only the potential −log p(x, z) by autograd."""

    centroids: Tensor
    factors: Tensor
    temperature: float
    regularisation: float

    def weights(self, z: Tensor) -> Tensor:
        """exp(−‖z − c_i‖² / T²) [..., N]."""
        return torch.exp(-squared_distances(z, self.centroids) / self.temperature**2)

    @cached_property
    def flat_products(self) -> Tensor:
        """L_i L_iᵀ flattened, [N, D²] (computed once per metric: the leapfrog steps and the
        sampler evaluate it thousands of times)."""
        return (self.factors @ self.factors.transpose(-1, -2)).flatten(-2)

    def inverse(self, z: Tensor) -> Tensor:
        """G⁻¹(z) [..., D, D] for positions z [..., D]."""
        return self.inverse_from(self.weights(z), z.shape[-1])

    def kinetic_gradient(self, z: Tensor, v: Tensor) -> Tensor:
        """∇_z [½ log det G(z) + ½ vᵀG⁻¹(z)v] at fixed v, in closed form (as pythae's RHVAE):
        with w_i = exp(−‖z − c_i‖²/T²), ∇_z w_i = −2 w_i (z − c_i)/T² and A_i = L_i L_iᵀ,

            ∇_z ½ vᵀG⁻¹v        = −(1/T²) Σ_i w_i (vᵀA_i v) (z − c_i)
            ∇_z (−½ log det G⁻¹) = (1/T²) Σ_i w_i tr(G A_i) (z − c_i),

        so the sum is (1/T²) Σ_i w_i tr((G − vvᵀ) A_i) (z − c_i)."""
        weights = self.weights(z)
        inverse = self.inverse_from(weights, z.shape[-1])
        metric = torch.cholesky_inverse(torch.linalg.cholesky(inverse))
        outer = v.unsqueeze(-1) * v.unsqueeze(-2)
        coefficients = weights * ((metric - outer).flatten(-2) @ self.flat_products.T)
        pulled = coefficients.sum(-1, keepdim=True) * z - coefficients @ self.centroids
        return pulled / self.temperature**2

    def inverse_from(self, weights: Tensor, dim: int) -> Tensor:
        """G⁻¹ [..., D, D] from the kernel weights [..., N]."""
        mixed = (weights @ self.flat_products).unflatten(-1, (dim, dim))
        eye = torch.eye(dim, dtype=weights.dtype, device=weights.device)
        return mixed + self.regularisation * eye


def inverse_metric(
    z: Tensor, centroids: Tensor, factors: Tensor, temperature: float, regularisation: float
) -> Tensor:
    """G⁻¹(z) = Σ_i L_i L_iᵀ exp(−‖z − c_i‖² / T²) + λ I (Chadebec et al. 2020, eq. 6):
    ``centroids`` c [N, D], ``factors`` L [N, D, D] lower-triangular; z [..., D]."""
    return KernelMetric(centroids, factors, temperature, regularisation).inverse(z)


def riemannian_hamiltonian(
    potential: Callable[[Tensor], Tensor], metric: KernelMetric, z: Tensor, v: Tensor
) -> Tensor:
    """H(z, v) = U(z) + ½ log((2π)^D det G(z)) + ½ vᵀG⁻¹(z)v (Chadebec et al. 2020, eq. 4),
    with log det G = −log det G⁻¹."""
    g_inv = metric.inverse(z)
    kinetic = 0.5 * (v.unsqueeze(-2) @ g_inv @ v.unsqueeze(-1)).squeeze(-1).squeeze(-1)
    log_det = -torch.linalg.slogdet(g_inv).logabsdet
    return potential(z) + 0.5 * (z.shape[-1] * math.log(2 * math.pi) + log_det) + kinetic


@dataclass(frozen=True)
class GeneralisedStep:
    """One generalised leapfrog step's end, ∇U at the end (the next step's start), and the
    residuals of its two implicit equations (max over the batch of
    |v½ − (v − ε/2 ∇_z H(z, v½))| and of the z update's)."""

    point: PhasePoint
    end_potential_gradient: Tensor
    momentum_residual: Tensor
    position_residual: Tensor


def generalised_leapfrog(
    point: PhasePoint,
    step_size: Tensor,
    potential_gradient: PotentialGradient,
    metric: KernelMetric,
    iterations: int,
    start_potential_gradient: Tensor | None = None,
) -> GeneralisedStep:
    """The generalised leapfrog (Chadebec et al. 2020, eqs. 7–9; Girolami & Calderhead 2011):

        v½  = v − ε/2 ∇_z H(z, v½)                      (implicit: fixed-point iterations)
        z'  = z + ε/2 [G⁻¹(z) + G⁻¹(z')] v½             (implicit: fixed-point iterations)
        v'  = v½ − ε/2 ∇_z H(z', v½)

    symplectic, hence volume-preserving and reversible, when the implicit equations hold.
    ∇_z H = ∇U(z) + the metric's closed-form part (:meth:`KernelMetric.kinetic_gradient`):
    ∇U does not depend on v, so the momentum iterations reuse ∇U(z), and a step costs one
    ∇U (at z'; ``start_potential_gradient`` passes ∇U(z) from the previous step). Gradients
    flow through the iterations as through any computation (no nested autograd)."""
    z, v = point.z, point.rho
    force = potential_gradient(z) if start_potential_gradient is None else start_potential_gradient

    def half_momentum(half: Tensor) -> Tensor:
        return v - 0.5 * step_size * (force + metric.kinetic_gradient(z, half))

    half = v
    for _ in range(iterations):
        half = half_momentum(half)
    momentum_residual = (half - half_momentum(half)).abs().max()
    start_velocity = (metric.inverse(z) @ half.unsqueeze(-1)).squeeze(-1)  # ∇_v H = G⁻¹(z) v

    def position(moved: Tensor) -> Tensor:
        end_velocity = (metric.inverse(moved) @ half.unsqueeze(-1)).squeeze(-1)
        return z + 0.5 * step_size * (start_velocity + end_velocity)

    moved = z
    for _ in range(iterations):
        moved = position(moved)
    position_residual = (moved - position(moved)).abs().max()
    end_force = potential_gradient(moved)
    end_momentum = half - 0.5 * step_size * (end_force + metric.kinetic_gradient(moved, half))
    return GeneralisedStep(
        PhasePoint(moved, end_momentum),
        end_force,
        momentum_residual.detach(),
        position_residual.detach(),
    )


@checked_arguments("model")
class MetricNetwork(nn.Module):
    """x ↦ L_ψ(x), a lower-triangular D × D factor with a positive (exponentiated) diagonal
    (Chadebec et al. 2020, §3.2: the metric's network)."""

    def __init__(
        self, input_size: PositiveInt, latent_dim: PositiveInt, hidden_dims: Sequence[PositiveInt]
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = int(input_size)
        for hidden in hidden_dims:
            layers += [nn.Linear(width, int(hidden)), nn.ReLU()]
            width = int(hidden)
        self.body = nn.Sequential(*layers)
        self.diagonal = nn.Linear(width, latent_dim)
        self.lower = nn.Linear(width, latent_dim * (latent_dim - 1) // 2)
        self.latent_dim = int(latent_dim)

    def forward(self, x: Tensor) -> Tensor:
        features = self.body(x)
        dim = self.latent_dim
        rows, cols = torch.tril_indices(dim, dim, offset=-1, device=x.device)
        lower = features.new_zeros(*features.shape[:-1], dim, dim)
        lower[..., rows, cols] = self.lower(features)
        return lower + torch.diag_embed(self.diagonal(features).exp())


@checked_arguments("model")
class RiemannianHamiltonianVAE(HamiltonianVAE):
    """The RHVAE (Chadebec et al. 2020): the HVAE's tempered flow (Caterini et al. 2018) with
    the kinetic energy ½vᵀG⁻¹(z)v + ½ log((2π)^D det G(z)) of a learned metric

        G⁻¹(z) = Σ_i L_ψ(x_i) L_ψ(x_i)ᵀ exp(−‖z − μ(x_i)‖² / T²) + λ I,

    integrated by the generalised leapfrog (fixed-point iterations for its implicit steps).
    v₀ ~ N(0, G(z₀)/β₀) and the log-weight in the extended space is

        log w = log p(x, z_K) + log N(v_K; 0, G(z_K)) − log q(z₀|x) − log N(v₀; 0, G(z₀)/β₀)
                + (D/2) log β₀.

    Training uses the current batch's centroids μ(x_i) and factors L_ψ(x_i) (with gradients,
    so ψ learns); each training batch's are also stored (detached) in a buffer of the last
    ``num_centroids``, checkpointed with the model, which evaluation and generation use.
    ``generation=manifold`` draws samples by HMC on the density ∝ √det G⁻¹(z) (the paper's
    sampler; the stored buffer's metric) from stored centroids, ``prior`` from p(z).
    """

    step_size_per_dimension: ClassVar[bool] = False

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
        metric_hidden_dims: Sequence[PositiveInt] = (400,),
        metric_temperature: PositiveFloat = 0.8,
        metric_regularisation: PositiveFloat = 1e-3,
        fixed_point_iterations: PositiveInt = 3,
        num_centroids: PositiveInt = 500,
        generation: Generation = "manifold",
        sampler_chain_steps: PositiveInt = 100,
        sampler_leapfrog_steps: PositiveInt = 15,
        sampler_step_size: PositiveFloat = 0.03,
    ) -> None:
        super().__init__(
            net,
            latent_dim,
            input_shape,
            posterior,
            likelihood,
            prior,
            num_leapfrog_steps,
            step_size,
            learn_step_size,
            tempering,
            initial_inverse_temperature,
            learn_tempering,
        )
        dim = self.latent_dim
        self.metric_network = MetricNetwork(math.prod(self.input_shape), dim, metric_hidden_dims)
        self.metric_temperature = float(metric_temperature)
        self.metric_regularisation = float(metric_regularisation)
        self.fixed_point_iterations = int(fixed_point_iterations)
        self.generation = generation
        self.sampler_chain_steps = int(sampler_chain_steps)
        self.sampler_leapfrog_steps = int(sampler_leapfrog_steps)
        self.sampler_step_size = float(sampler_step_size)
        self.register_buffer("stored_centroids", torch.zeros(int(num_centroids), dim))
        self.register_buffer("stored_factors", torch.zeros(int(num_centroids), dim, dim))
        self.register_buffer("num_stored", torch.zeros((), dtype=torch.long))
        self.register_buffer("store_cursor", torch.zeros((), dtype=torch.long))
        #: the Metropolis acceptance rate of the last manifold sampling (None before any)
        self.last_acceptance_rate: float | None = None

    # -- the metric ---------------------------------------------------------------------------
    def stored_metric(self) -> KernelMetric:
        """The metric of the stored centroids (λ I alone before any training step)."""
        count = int(self.num_stored)
        return KernelMetric(
            self.stored_centroids[:count],
            self.stored_factors[:count],
            self.metric_temperature,
            self.metric_regularisation,
        )

    @torch.no_grad()
    def store(self, centroids: Tensor, factors: Tensor) -> None:
        """Keep a training batch's centroids and factors (a ring of ``num_centroids``)."""
        capacity = self.stored_centroids.shape[0]
        for centroid, factor in zip(centroids[-capacity:], factors[-capacity:], strict=True):
            cursor = int(self.store_cursor)
            self.stored_centroids[cursor] = centroid
            self.stored_factors[cursor] = factor
            self.store_cursor.fill_((cursor + 1) % capacity)
        self.num_stored.fill_(min(capacity, int(self.num_stored) + len(centroids)))

    def metric_terms(self) -> dict[str, float]:
        terms = self.hamiltonian_terms()
        if self.last_acceptance_rate is not None:
            terms["sampler_acceptance_rate"] = self.last_acceptance_rate
        return terms

    # -- the flow -----------------------------------------------------------------------------
    def move(
        self, x: Tensor, y: Tensor | None, z0: Tensor, q0: Distribution, create_graph: bool
    ) -> Moved:
        if self.training and torch.is_grad_enabled():
            centroids = q0.mean
            centroids = centroids.clone() if centroids.is_inference() else centroids
            factors = self.metric_network(x)
            self.store(centroids.detach(), factors.detach())
            metric = KernelMetric(
                centroids, factors, self.metric_temperature, self.metric_regularisation
            )
        else:
            metric = self.stored_metric()
        potential_gradient = self.potential_gradient(x, y, create_graph=create_graph)
        if create_graph:
            return self.flow_on(metric, z0, potential_gradient)
        # evaluation: no graph is kept across the steps (∇U alone needs autograd)
        with torch.no_grad():
            return self.flow_on(metric, z0.detach(), self.detached(potential_gradient))

    @staticmethod
    def detached(potential_gradient: PotentialGradient) -> PotentialGradient:
        def gradient(z: Tensor) -> Tensor:
            with torch.enable_grad():
                return potential_gradient(z.detach().requires_grad_(True)).detach()

        return gradient

    def flow_on(
        self, metric: KernelMetric, z0: Tensor, potential_gradient: PotentialGradient
    ) -> Moved:
        """Draw v₀ ~ N(0, G(z₀)/β₀), run the K tempered generalised leapfrog steps and score
        both momenta."""
        beta_zero = self.initial_inverse_temperature
        g_inv_start = metric.inverse(z0)
        cholesky = torch.linalg.cholesky(g_inv_start)  # G⁻¹ = C Cᵀ, so G = C⁻ᵀ C⁻¹
        gamma = torch.randn_like(z0)
        v0 = (
            torch.linalg.solve_triangular(
                cholesky.transpose(-1, -2), gamma.unsqueeze(-1), upper=True
            ).squeeze(-1)
            * beta_zero.rsqrt()
        )
        betas = self.inverse_temperatures()
        step_size = self.step_size.to(z0.dtype)
        point, force = PhasePoint(z0, v0), None
        for k in range(1, self.num_leapfrog_steps + 1):
            step = generalised_leapfrog(
                point, step_size, potential_gradient, metric, self.fixed_point_iterations, force
            )
            point = PhasePoint(step.point.z, step.point.rho * (betas[k - 1] / betas[k]).sqrt())
            force = step.end_potential_gradient
        dim = z0.shape[-1]
        log_beta_zero = betas[0].log()
        g_inv_end = metric.inverse(point.z)
        quadratic = (point.rho.unsqueeze(-2) @ g_inv_end @ point.rho.unsqueeze(-1)).squeeze(-1)
        log_normaliser = -0.5 * dim * math.log(2 * math.pi)
        log_target_momentum = (
            log_normaliser
            + 0.5 * torch.linalg.slogdet(g_inv_end).logabsdet
            - 0.5 * quadratic.squeeze(-1)
        )
        # log N(v₀; 0, G(z₀)/β₀) = log N(γ; 0, I) + ½ log det G⁻¹(z₀) + (D/2) log β₀
        log_initial = (
            log_normaliser
            - 0.5 * gamma.square().sum(-1)
            + cholesky.diagonal(dim1=-2, dim2=-1).log().sum(-1)
            + 0.5 * dim * log_beta_zero
        )
        tempering_log_det = 0.5 * dim * log_beta_zero
        return Moved(point.z, log_target_momentum, log_initial - tempering_log_det)

    # -- generation ---------------------------------------------------------------------------
    def manifold_samples(self, num: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ ∝ √det G⁻¹(z) by HMC (Chadebec et al. 2020, §4: sampling from the metric's
        volume element), started at stored centroids; Metropolis-corrected, the acceptance
        rate kept in :attr:`last_acceptance_rate`."""
        metric = self.stored_metric()
        device = self.stored_centroids.device

        def energy(z: Tensor) -> Tensor:  # −log π(z) = −½ log det G⁻¹(z)
            return -0.5 * torch.linalg.slogdet(metric.inverse(z)).logabsdet

        def gradient(z: Tensor) -> Tensor:  # the metric's closed form at v = 0
            return metric.kinetic_gradient(z, torch.zeros_like(z))

        start = torch.randint(int(self.num_stored), (num,), generator=generator, device=device)
        z = self.stored_centroids[start].clone()
        accepted = torch.zeros((), device=device)
        step = torch.tensor(self.sampler_step_size, device=device)
        with torch.no_grad():
            for _ in range(self.sampler_chain_steps):
                v = torch.randn(z.shape, generator=generator, device=device)
                point = PhasePoint(z, v)
                for _ in range(self.sampler_leapfrog_steps):
                    point = leapfrog(point, step, gradient)
                before = energy(z) + 0.5 * v.square().sum(-1)
                after = energy(point.z) + 0.5 * point.rho.square().sum(-1)
                uniform = torch.rand(num, generator=generator, device=device)
                accept = uniform.log() < (before - after).detach()
                z = torch.where(accept.unsqueeze(-1), point.z, z)
                accepted = accepted + accept.float().mean()
        self.last_acceptance_rate = float(accepted) / self.sampler_chain_steps
        return z

    def sample(
        self, num: int, y: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Decoder means at manifold samples (``generation=manifold``, once centroids are
        stored) or prior samples."""
        if self.generation == "prior" or int(self.num_stored) == 0:
            return super().sample(num, y, generator)
        return self.decode(self.manifold_samples(num, generator), y).mean
