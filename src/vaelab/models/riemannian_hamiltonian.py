"""The Riemannian Hamiltonian VAE (Chadebec, Mantoux & Allassonnière 2020, "Geometry-aware
Hamiltonian Variational Auto-Encoder"): the HVAE's flow on a learned Riemannian metric of the
latent space, integrated by the generalised leapfrog, and generation by HMC on the density the
metric induces."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from vaelab.likelihoods.base import Likelihood
from vaelab.models.hamiltonian import HamiltonianVAE, Moved, PhasePoint, Tempering, leapfrog
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

#: G⁻¹(z) [..., D, D] for positions [..., D]
InverseMetric = Callable[[Tensor], Tensor]
Generation = Literal["manifold", "prior"]


def inverse_metric(
    z: Tensor, centroids: Tensor, factors: Tensor, temperature: float, regularisation: float
) -> Tensor:
    """G⁻¹(z) = Σ_i L_i L_iᵀ exp(−‖z − c_i‖² / T²) + λ I (Chadebec et al. 2020, eq. 6):
    ``centroids`` c [N, D], ``factors`` L [N, D, D] lower-triangular; z [..., D]."""
    weights = torch.exp(-(z.unsqueeze(-2) - centroids).square().sum(-1) / temperature**2)
    products = factors @ factors.transpose(-1, -2)
    eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
    return torch.einsum("...n,nij->...ij", weights, products) + regularisation * eye


def riemannian_hamiltonian(
    potential: Callable[[Tensor], Tensor], metric: InverseMetric, z: Tensor, v: Tensor
) -> Tensor:
    """H(z, v) = U(z) + ½ log((2π)^D det G(z)) + ½ vᵀG⁻¹(z)v (Chadebec et al. 2020, eq. 4),
    with log det G = −log det G⁻¹."""
    g_inv = metric(z)
    kinetic = 0.5 * (v.unsqueeze(-2) @ g_inv @ v.unsqueeze(-1)).squeeze(-1).squeeze(-1)
    log_det = -torch.linalg.slogdet(g_inv).logabsdet
    return potential(z) + 0.5 * (z.shape[-1] * math.log(2 * math.pi) + log_det) + kinetic


@dataclass(frozen=True)
class GeneralisedStep:
    """One generalised leapfrog step's end and the residuals of its two implicit equations
    (max over the batch of |v½ − (v − ε/2 ∇_z H(z, v½))| and of the z update's)."""

    point: PhasePoint
    momentum_residual: Tensor
    position_residual: Tensor


def generalised_leapfrog(
    point: PhasePoint,
    step_size: Tensor,
    potential: Callable[[Tensor], Tensor],
    metric: InverseMetric,
    iterations: int,
    create_graph: bool,
) -> GeneralisedStep:
    """The generalised leapfrog (Chadebec et al. 2020, eqs. 7–9; Girolami & Calderhead 2011):

        v½  = v − ε/2 ∇_z H(z, v½)                      (implicit: fixed-point iterations)
        z'  = z + ε/2 [G⁻¹(z) + G⁻¹(z')] v½             (implicit: fixed-point iterations)
        v'  = v½ − ε/2 ∇_z H(z', v½)

    symplectic, hence volume-preserving and reversible, when the implicit equations hold."""

    def grad_z(z: Tensor, v: Tensor) -> Tensor:
        if not create_graph:  # evaluation: no graph is kept across the iterations
            z, v = z.detach().requires_grad_(True), v.detach()
        elif not z.requires_grad:
            z = z.detach().requires_grad_(True)
        energy = riemannian_hamiltonian(potential, metric, z, v).sum()
        gradient = torch.autograd.grad(energy, z, create_graph=create_graph)[0]
        return gradient if create_graph else gradient.detach()

    def velocity(z: Tensor, v: Tensor) -> Tensor:  # ∇_v H = G⁻¹(z) v
        if not create_graph:
            z, v = z.detach(), v.detach()
        return (metric(z) @ v.unsqueeze(-1)).squeeze(-1)

    z, v = point.z, point.rho
    half = v
    for _ in range(iterations):
        half = v - 0.5 * step_size * grad_z(z, half)
    momentum_residual = (half - (v - 0.5 * step_size * grad_z(z, half))).abs().max()
    start_velocity = velocity(z, half)
    moved = z
    for _ in range(iterations):
        moved = z + 0.5 * step_size * (start_velocity + velocity(moved, half))
    position_residual = moved - (z + 0.5 * step_size * (start_velocity + velocity(moved, half)))
    end = PhasePoint(moved, half - 0.5 * step_size * grad_z(moved, half))
    return GeneralisedStep(end, momentum_residual.detach(), position_residual.abs().max().detach())


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
    def stored_metric(self) -> InverseMetric:
        """G⁻¹ of the stored centroids (λ I alone before any training step)."""
        count = int(self.num_stored)
        centroids, factors = self.stored_centroids[:count], self.stored_factors[:count]
        return lambda z: inverse_metric(
            z, centroids, factors, self.metric_temperature, self.metric_regularisation
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
            temperature, regularisation = self.metric_temperature, self.metric_regularisation

            def metric(z: Tensor) -> Tensor:
                return inverse_metric(z, centroids, factors, temperature, regularisation)

        else:
            metric = self.stored_metric()

        def potential(z: Tensor) -> Tensor:
            return -(self.decode(z, y).log_prob(x) + self.prior.log_prob(z, y))

        beta_zero = self.initial_inverse_temperature
        g_inv_start = metric(z0)
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
        point = PhasePoint(z0, v0)
        for k in range(1, self.num_leapfrog_steps + 1):
            point = generalised_leapfrog(
                point, step_size, potential, metric, self.fixed_point_iterations, create_graph
            ).point
            point = PhasePoint(point.z, point.rho * (betas[k - 1] / betas[k]).sqrt())
        dim = z0.shape[-1]
        log_beta_zero = betas[0].log()
        g_inv_end = metric(point.z)
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
            return -0.5 * torch.linalg.slogdet(metric(z)).logabsdet

        def gradient(z: Tensor) -> Tensor:
            z = z.detach().requires_grad_(True)
            return torch.autograd.grad(energy(z).sum(), z)[0]

        start = torch.randint(int(self.num_stored), (num,), generator=generator, device=device)
        z = self.stored_centroids[start].clone()
        accepted = torch.zeros((), device=device)
        step = torch.tensor(self.sampler_step_size, device=device)
        with torch.inference_mode(False), torch.enable_grad():
            z = z.clone()
            for _ in range(self.sampler_chain_steps):
                v = torch.randn(z.shape, generator=generator, device=device)
                point = PhasePoint(z, v)
                for _ in range(self.sampler_leapfrog_steps):
                    point = leapfrog(point, step, gradient)
                before = energy(z) + 0.5 * v.square().sum(-1)
                after = energy(point.z) + 0.5 * point.rho.square().sum(-1)
                uniform = torch.rand(num, generator=generator, device=device)
                accept = uniform.log() < (before - after).detach()
                z = torch.where(accept.unsqueeze(-1), point.z, z).detach()
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
