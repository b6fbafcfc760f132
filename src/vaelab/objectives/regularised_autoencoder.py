"""The loss of a regularised autoencoder (Ghosh, Sajjadi, Vergari, Black & Schölkopf 2020,
"From Variational to Deterministic Autoencoders", ICLR): reconstruction, a code-norm penalty
and a regulariser of the decoder."""

from __future__ import annotations

from typing import Literal

from torch import Tensor
from typing_extensions import override

from vaelab.models.interface import LatentVariableModel
from vaelab.objectives.base import Objective, ObjectiveOutput, OptimiserGroup
from vaelab.objectives.gradient_penalty import squared_input_gradient_norm
from vaelab.schedules.base import Weighting
from vaelab.schema import NonNegativeFloat, checked_arguments

#: l2: ‖θ_dec‖² through the optimiser's weight decay on the decoder's parameters (RAE-L2);
#: gradient_penalty: ‖∇_z D(z)‖² at the codes (RAE-GP)
DecoderRegulariser = Literal["l2", "gradient_penalty"]


def code_penalty(z: Tensor) -> Tensor:
    """½‖z‖² per code [B] (Ghosh et al. 2020, the code term L_z^RAE of eq. 11)."""
    return 0.5 * z.pow(2).sum(dim=-1)


@checked_arguments("model")
class RegularisedAutoencoderLoss(Objective):
    """L_RAE = L_rec + β·½‖z‖² + λ·L_reg (Ghosh et al. 2020, eq. 11), z = E(x) the
    deterministic code, per data point in nats where the term is a log-density:

    - ``recon``: −log p(x|z) of the model's likelihood (the paper's L_rec is a squared error,
      a Gaussian's −log p(x|z) up to constants; vaelab's MNIST runs use the Bernoulli one);
    - ``code_penalty``: ½‖z‖², weighted by β (``code_penalty_weight``);
    - ``decoder_regulariser: gradient_penalty`` (RAE-GP): ``decoder_gradient_penalty`` =
      ‖∇_z Σ_i D(z)_i‖², the squared gradient of the decoded picture's sum at the code (one
      vector-Jacobian product, a cheap stand-in for the Jacobian's Frobenius norm), weighted
      by λ and logged;
    - ``decoder_regulariser: l2`` (RAE-L2): λ‖θ_dec‖² is not part of ``loss``: the decoder's
      parameters get weight decay 2λ in their own parameter group of the module's optimiser
      (its gradient), the encoder's none.

    No bound on log p(x): nothing is logged as ``elbo`` and checkpoints watch ``val/loss``.
    """

    bound_name = None

    def __init__(
        self,
        code_penalty_weight: NonNegativeFloat = 1.0,
        decoder_regulariser: DecoderRegulariser = "l2",
        regulariser_weight: NonNegativeFloat = 1e-4,
    ) -> None:
        super().__init__()
        self.code_penalty_weight = float(code_penalty_weight)
        self.decoder_regulariser: DecoderRegulariser = decoder_regulariser
        self.regulariser_weight = float(regulariser_weight)
        # an instance attribute: the gradient penalty is logged only when it is trained on
        self.term_names = ("recon", "code_penalty") + (
            ("decoder_gradient_penalty",) if decoder_regulariser == "gradient_penalty" else ()
        )

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
        z = model.encode(x, y).mean
        recon = -model.decode(z, y).log_prob(x)
        terms = {"recon": recon, "code_penalty": code_penalty(z)}
        loss = recon + self.code_penalty_weight * terms["code_penalty"]
        if self.decoder_regulariser == "gradient_penalty":
            penalty = squared_input_gradient_norm(lambda codes: model.decode(codes, y).mean, z)
            terms["decoder_gradient_penalty"] = penalty
            loss = loss + self.regulariser_weight * penalty
        return ObjectiveOutput(loss=loss, bound=None, terms=terms)

    @override
    def optimiser_groups(self, model: LatentVariableModel) -> tuple[OptimiserGroup, ...]:
        if self.decoder_regulariser != "l2":
            return super().optimiser_groups(model)
        decoder_decay = {
            "params": model.decoder_parameters(),
            "weight_decay": 2 * self.regulariser_weight,
        }
        return (OptimiserGroup("model", [{"params": model.encoder_parameters()}, decoder_decay]),)
