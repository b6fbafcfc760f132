"""The squared norm of a network's input gradient, per data point: RAE-GP's decoder penalty
(Ghosh et al. 2020) and the discriminator's R1 penalty of the VAE-GAN option."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def squared_input_gradient_norm(function: Callable[[Tensor], Tensor], inputs: Tensor) -> Tensor:
    """‖∇_u Σ_j f(u)_j‖² at u = each row of ``inputs`` [B, ...] → [B], for a ``function``
    that maps each row on its own (no batch statistics), so that the gradient of the batch's
    sum at row b is row b's own.

    While gradients are enabled (training) the result is differentiable in the function's
    parameters and, through ``inputs``, in whatever made them (the encoder, for RAE-GP); in
    evaluation (Lightning's inference mode) it is computed from a copy of the inputs and
    returned detached, so a validation loss holds the same terms as the training loss.
    """
    training = torch.is_grad_enabled()
    with torch.inference_mode(False), torch.enable_grad():
        if not (training and inputs.requires_grad):
            inputs = inputs.detach().clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(function(inputs).sum(), inputs, create_graph=training)
    squared_norm = gradient.flatten(1).pow(2).sum(dim=1)
    return squared_norm if training else squared_norm.detach()
