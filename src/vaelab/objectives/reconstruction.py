"""The reconstruction loss of an autoencoder (no prior, no KL, no bound on log p(x)), and its
denoising form (Vincent et al. 2010): reconstruct the clean x from a corrupted x̃."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from torch import Tensor
from torch.distributions import Distribution
from typing_extensions import override

from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import Objective, ObjectiveOutput
from vaelab.schedules.base import Weighting
from vaelab.schema import checked_arguments

ReconstructionLossKind = Literal["bce", "mse"]
#: the term every reconstruction objective logs: the loss on clean inputs
RECON = "recon"


def reconstruction_loss(
    kind: ReconstructionLossKind, observation: Distribution, x: Tensor
) -> Tensor:
    """Per-data-point loss [B] of the targets ``x`` under the decoder's p(x|z), summed over the
    event (pixel) dimensions, in float32.

    ``bce``: −log p(x|z); for a Bernoulli(σ(logits)) decoder this is BCE-with-logits in nats
    (seed 004's ``BCEWithLogitsLoss(reduction="sum")``; seed 003's Keras loss is this divided
    by the number of pixels). ``mse``: Σ (x − E[x|z])², the squared error of the picture.
    """
    if kind == "bce":
        return -observation.log_prob(x)
    event_dims = tuple(range(-len(observation.event_shape), 0))
    return ((observation.mean.float() - x.float()) ** 2).sum(dim=event_dims)


@checked_arguments("model")
class Reconstruction(Objective):
    """loss = :func:`reconstruction_loss` of x from the code of the input: the objective of a
    deterministic autoencoder (``encode`` a point mass, ``decode`` a Bernoulli over pixels).

    With a ``corruption`` x ↦ x̃ (a denoising autoencoder) the loss is that of the clean x from
    the code of x̃, with fresh noise at every call; evaluation also reports ``recon``, the loss
    on clean inputs (comparable with a plain autoencoder's). Training skips that second
    forward pass. Without a corruption ``recon`` equals ``loss``.
    """

    bound_name = None
    term_names = (RECON,)

    def __init__(
        self,
        reconstruction_loss: ReconstructionLossKind = "bce",
        corruption: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.loss_kind: ReconstructionLossKind = reconstruction_loss
        self.corruption = corruption

    def loss_of(
        self, model: LatentVariableModel, inputs: Tensor, targets: Tensor, y: Tensor | None
    ) -> Tensor:
        """Per-data-point loss [B] of ``targets`` decoded from the code of ``inputs``."""
        code = model.encode(inputs, y).rsample()
        return reconstruction_loss(self.loss_kind, model.decode(code, y), targets)

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
        if self.corruption is None:
            recon = self.loss_of(model, x, x, y)
            return ObjectiveOutput(loss=recon, bound=None, terms={RECON: recon})
        denoising = self.loss_of(model, self.corruption(x), x, y)
        terms = {} if self.training else {RECON: self.loss_of(model, x, x, y)}
        return ObjectiveOutput(loss=denoising, bound=None, terms=terms)

    def extra_repr(self) -> str:
        return f"loss={self.loss_kind!r}, corruption={self.corruption!r}"
