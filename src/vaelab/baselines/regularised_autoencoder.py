"""Regularised autoencoders, RAE-L2 and RAE-GP (Ghosh et al. 2020, "From Variational to
Deterministic Autoencoders", ICLR): a deterministic autoencoder whose codes are kept near the
origin and whose decoder is kept smooth, sampled after training from a density fitted to its
codes (ex-post density estimation, the ``sampler=`` group)."""

from __future__ import annotations

from typing import ClassVar

from typing_extensions import override

from vaelab.baselines.autoencoder import Autoencoder
from vaelab.models.vae import NetworkBuilder
from vaelab.objectives.regularised_autoencoder import (
    DecoderRegulariser,
    RegularisedAutoencoderLoss,
)
from vaelab.schema import ImageShape, NonNegativeFloat, PositiveInt, checked_arguments


@checked_arguments("model")
class RegularisedAutoencoder(Autoencoder):
    """``vaelab-train model=rae_l2`` or ``model=rae_gp``: the autoencoder's deterministic
    encoder and Bernoulli decoder, trained on
    :class:`~vaelab.objectives.regularised_autoencoder.RegularisedAutoencoderLoss` (Ghosh et
    al. 2020, eq. 11: reconstruction + β·½‖z‖² + λ·decoder regulariser). Its loss and β, λ
    are the model's, so it takes ``optimizer=`` and ``lr_scheduler=`` but no ``objective=``.
    ``sample`` decodes z ~ N(0, I) (the paper's "N(0, I)" row); a fitted sampler does better.
    """

    config_groups: ClassVar[frozenset[str]] = frozenset({"optimizer", "lr_scheduler"})

    def __init__(
        self,
        net: NetworkBuilder,
        latent_dim: PositiveInt,
        input_shape: ImageShape,
        code_penalty_weight: NonNegativeFloat = 1.0,
        decoder_regulariser: DecoderRegulariser = "l2",
        regulariser_weight: NonNegativeFloat = 1e-4,
    ) -> None:
        super().__init__(net, latent_dim, input_shape, reconstruction_loss="bce")
        self.code_penalty_weight = float(code_penalty_weight)
        self.decoder_regulariser: DecoderRegulariser = decoder_regulariser
        self.regulariser_weight = float(regulariser_weight)

    @override
    def default_objective(self) -> RegularisedAutoencoderLoss:
        return RegularisedAutoencoderLoss(
            self.code_penalty_weight, self.decoder_regulariser, self.regulariser_weight
        )
