"""The VQ-VAE's objective (van den Oord et al. 2017, eq. 3, with the EMA codebook of
Appendix A.1) for stage 1, and the prior's maximum likelihood for stage 2."""

from __future__ import annotations

from typing import Annotated, Any

import torch
from torch import Tensor
from typing_extensions import override

from vaelab.errors import VaelabError
from vaelab.models.interface import LatentVariableModel
from vaelab.models.vqvae import VQVAE, perplexity
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.schedules.base import Weighting
from vaelab.schema import Range

#: the codebook statistics logged beside the nats
PERPLEXITY, CODEBOOK_USAGE = "perplexity", "codebook_usage"


class VectorQuantization(Objective):
    """Stage 1 (eq. 3 with Appendix A.1): loss = −log p(x|z_q(x)) + β ‖z_e(x) − sg[e]‖²; the
    codebook term ‖sg[z_e(x)] − e‖² is replaced by the EMA update of the codebook, done here
    in training steps only (never in validation or test), after the loss is computed. The
    decoder's gradient reaches the encoder straight through the quantiser (§3.1).

    Stage 2 (a model with a PixelCNN prior): loss = −ELBO; the stage-1 parts are frozen, so
    only −log p(k(x)) trains (the prior's maximum likelihood on the codes).

    Logged, per data point: ``recon`` = −log p(x|z_q) (nats), ``kl`` = KL(q(z|x) ‖ p(z)) =
    −log p(k(x)) (nats; exact, as q is one-hot; h·w·log K in stage 1), ``elbo`` = −(recon +
    kl) ≤ log p(x), ``commitment`` = ‖z_e − sg[e]‖² summed over the code map (unweighted);
    and two numbers of the batch's histogram of its B·h·w codes (the same for every data
    point of the batch, averaged over the batches of an epoch): ``perplexity`` = exp(entropy)
    and ``codebook_usage``, the fraction of the K codes used at least once.
    """

    bound_name = "elbo"
    term_names = ("recon", "kl", "commitment", PERPLEXITY, CODEBOOK_USAGE)

    def __init__(self, commitment_cost: Annotated[float, Range(ge=0)] = 0.25) -> None:
        super().__init__()
        if float(commitment_cost) < 0:
            raise VaelabError(f"model.commitment_cost must be >= 0, got {commitment_cost}")
        self.commitment_cost = float(commitment_cost)

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        if not isinstance(model, VQVAE):
            raise VaelabError(
                f"the vector-quantisation objective trains a VQ-VAE (model=vqvae), not "
                f"{type(model).__name__}"
            )

    @override
    def forward(
        self,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        weighting: Weighting,
        step: int,
    ) -> ObjectiveOutput:
        posterior = model.encode(x, y)
        quantized = posterior.quantized
        recon = -model.decode(posterior.rsample(), y).log_prob(x)
        kl = -model.prior.log_prob_of_indices(quantized.indices)
        code_dims = tuple(range(1, posterior.encoded.dim()))
        commitment = (posterior.encoded - quantized.codes.detach()).pow(2).sum(code_dims)
        if model.learns_prior:
            loss = recon + kl
        else:
            loss = recon + self.commitment_cost * commitment
            if self.training:
                model.quantizer.update(posterior.encoded, quantized.indices)
        counts = torch.bincount(quantized.indices.flatten(), minlength=model.quantizer.num_codes)
        batch = torch.ones_like(recon)
        return ObjectiveOutput(
            loss=loss,
            bound=-(recon + kl),
            terms={
                "recon": recon,
                "kl": kl,
                "commitment": commitment,
                PERPLEXITY: batch * perplexity(counts),
                CODEBOOK_USAGE: batch * (counts > 0).float().mean(),
            },
        )

    def extra_repr(self) -> str:
        return f"commitment_cost={self.commitment_cost}"
