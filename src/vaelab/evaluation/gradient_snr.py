"""Signal-to-noise ratio of an objective's gradient estimates, SNR = |E[Δ]| / σ[Δ] per
parameter component (Rainforth et al. 2018, "Tighter variational bounds are not necessarily
better", their definition of the SNR), split into the inference network's parameters
(those q(z|x) depends on) and the generative ones."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import Objective
from vaelab.schedules.constant import ConstantBeta


@dataclass
class GradientSNR:
    """Mean over parameter components of |mean| / std of ``num_draws`` gradient estimates of
    the batch-mean loss (components whose estimates never vary are left out)."""

    encoder: float
    decoder: float
    num_draws: int


def inference_parameters(model: LatentVariableModel, x: Tensor) -> set[nn.Parameter]:
    """The parameters the tensors of q(z|x) depend on (encoder and posterior family)."""
    posterior = model.encode(x)
    tensors = [
        value
        for dist in (posterior, getattr(posterior, "base_dist", None))
        if dist is not None
        for value in vars(dist).values()
        if isinstance(value, Tensor) and value.requires_grad
    ]
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(sum(t.sum() for t in tensors), params, allow_unused=True)
    return {p for p, g in zip(params, grads, strict=True) if g is not None}


def snr_of_draws(draws: Tensor) -> Tensor:
    """[R, P] gradient estimates → [P'] per-component SNR over the components that vary."""
    std = draws.std(0)
    varying = std > 0
    return draws.mean(0)[varying].abs() / std[varying]


def gradient_snr(
    model: LatentVariableModel,
    objective: Objective,
    x: Tensor,
    y: Tensor | None = None,
    num_draws: int = 100,
) -> GradientSNR:
    """``num_draws`` independent gradient estimates of ``objective``'s batch-mean loss on the
    fixed batch ``x``; the SNR of each parameter component, averaged over the encoder's and
    over the decoder's components."""
    weighting = ConstantBeta(1.0)
    objective.setup(model, weighting, {})
    encoder = inference_parameters(model, x)
    params = [p for p in model.parameters() if p.requires_grad]
    is_encoder = [p in encoder for p in params]
    encoder_draws, decoder_draws = [], []
    for _ in range(int(num_draws)):
        loss = objective(model, x, y, weighting, 0).loss.mean()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        flat = [
            (g if g is not None else torch.zeros_like(p)).flatten()
            for p, g in zip(params, grads, strict=True)
        ]
        encoder_draws.append(torch.cat([g for g, e in zip(flat, is_encoder, strict=True) if e]))
        decoder_draws.append(torch.cat([g for g, e in zip(flat, is_encoder, strict=True) if not e]))
    return GradientSNR(
        encoder=snr_of_draws(torch.stack(encoder_draws)).mean().item(),
        decoder=snr_of_draws(torch.stack(decoder_draws)).mean().item(),
        num_draws=int(num_draws),
    )
