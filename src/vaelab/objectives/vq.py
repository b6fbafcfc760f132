"""The VQ-VAE's objective (van den Oord et al. 2017, eq. 3, with the EMA codebook of
Appendix A.1) for stage 1, and the prior's maximum likelihood for stage 2."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from typing_extensions import override

from vaelab.models.interface import LatentVariableModel, MissingCapability
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.posteriors.codebook import QuantizedPosterior, perplexity
from vaelab.posteriors.structure import vector_quantised
from vaelab.schedules.base import Weighting

#: the codebook statistics logged beside the nats
PERPLEXITY, CODEBOOK_USAGE = "perplexity", "codebook_usage"


class VectorQuantization(Objective):
    """Stage 1 (eq. 3 with Appendix A.1): loss = −log p(x|z_q(x)) + β ‖z_e(x) − sg[e]‖²; the
    codebook term ‖sg[z_e(x)] − e‖² is replaced by the EMA update of the codebook, done here
    in training steps only (never in validation or test), after the loss is computed. The
    decoder's gradient reaches the encoder straight through the quantiser (§3.1).

    Stage 2 (the encoder and codebook frozen, a learned prior training): loss = −ELBO; only
    −log p(k(x)) trains (the prior's maximum likelihood on the codes).

    The model is used through its interface only: :meth:`~LatentVariableModel.sample_latents`
    gives log p(x|z_q) and log p(z_q); its q(z|x) must be a
    :class:`~vaelab.posteriors.codebook.QuantizedPosterior`, which carries the commitment term
    and β, the code histogram, the codebook's EMA step and whether the codebook trains. A model
    whose q(z|x) is not quantised is refused in :meth:`setup`.

    Logged, per data point: ``recon`` = −log p(x|z_q) (nats), ``kl`` = KL(q(z|x) ‖ p(z)) =
    −log p(k(x)) (nats; exact, as q is one-hot; h·w·log K in stage 1), ``elbo`` = −(recon +
    kl) ≤ log p(x), ``commitment`` = ‖z_e − sg[e]‖² summed over the code map (unweighted);
    and two numbers of the batch's histogram of its B·h·w codes (the same for every data
    point of the batch, averaged over the batches of an epoch): ``perplexity`` = exp(entropy)
    and ``codebook_usage``, the fraction of the K codes used at least once.
    """

    bound_name = "elbo"
    term_names = ("recon", "kl", "commitment", PERPLEXITY, CODEBOOK_USAGE)

    @override
    def setup(
        self, model: LatentVariableModel, weighting: Weighting, data_info: dict[str, Any]
    ) -> None:
        x = torch.zeros(2, *model.input_shape, device=model.device)
        y = model.labels_for_samples(2, torch.Generator(model.device).manual_seed(0))
        was_training = model.training
        model.eval()  # the probe leaves batch-norm statistics alone
        try:
            with torch.no_grad():
                quantized_posterior(model, model.encode(x, y))
        finally:
            model.train(was_training)

    @override
    def forward(
        self,
        model: LatentVariableModel,
        x: Tensor,
        y: Tensor | None,
        weighting: Weighting,
        step: int,
        split: str = "train",
    ) -> ObjectiveOutput:
        samples = model.sample_latents(x, y)
        posterior = quantized_posterior(model, samples.posterior)
        recon = -samples.log_likelihood
        kl = samples.log_posterior - samples.log_prior
        commitment = posterior.commitment()
        if posterior.trains_codebook:
            loss = recon + posterior.commitment_cost * commitment
            if self.training:
                posterior.update_codebook()
        else:
            loss = recon + kl
        counts = posterior.code_counts()
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


def quantized_posterior(model: LatentVariableModel, posterior: Any) -> QuantizedPosterior:
    """``posterior`` if it is a vector-quantised q(z|x); else the one-line refusal."""
    quantised = vector_quantised(posterior)
    if quantised is None:
        raise MissingCapability(
            f"objective=vq trains a vector-quantised model, but {type(model).__name__}'s "
            f"q(z|x) is {type(posterior).__name__}, not a QuantizedPosterior (no codebook to "
            "commit to or update); use model=vqvae, or another objective= for this model"
        )
    return quantised
