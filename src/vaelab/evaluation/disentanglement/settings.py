"""The sample sizes and constants of the disentanglement metrics, in one place.

The defaults are those of disentanglement_lib's study configs
(``config/unsupervised_study_v1/metric_configs/*.gin`` and the β-VAE, FactorVAE and DCI
configs of the same study, Locatello et al. 2019), so that numbers compare with the
literature. Tests pass smaller sizes; the defaults run in the slow tests and in
``scripts/metric_timing.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from vaelab.errors import VaelabError

#: bins of the histogram discretiser of the codes (MIG, modularity): ``discretizer.num_bins``
NUM_BINS = 20
#: training / held-out points of every metric (``*.num_train``; ``num_eval`` / ``num_test``)
NUM_TRAIN = 10_000
NUM_EVAL = 5_000
#: points per training example of the β-VAE and FactorVAE scores (``*.batch_size = 64``)
GROUP_SIZE = 64
#: points that estimate the global variance of each code (``num_variance_estimate``)
NUM_VARIANCE_ESTIMATE = 10_000
#: FactorVAE score: a code whose standard deviation is below this counts as collapsed
#: (``prune_dims.threshold = 0.05``, Kim & Mnih 2018's 0.05)
ACTIVE_STD_THRESHOLD = 0.05


@dataclass(frozen=True)
class DisentanglementSettings:
    """Sizes of one evaluation. ``encode_batch_size`` only sets how many observations go
    through the encoder at once; it does not change any score's definition."""

    num_train: int = NUM_TRAIN
    num_eval: int = NUM_EVAL
    group_size: int = GROUP_SIZE
    num_variance_estimate: int = NUM_VARIANCE_ESTIMATE
    active_std_threshold: float = ACTIVE_STD_THRESHOLD
    num_bins: int = NUM_BINS
    encode_batch_size: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_train", "num_eval", "num_variance_estimate", "num_bins"):
            if getattr(self, name) < 2:
                raise VaelabError(
                    f"disentanglement {name} must be at least 2, got {getattr(self, name)}"
                )
        if self.group_size < 2:
            raise VaelabError(
                f"disentanglement group_size must be at least 2 (a variance needs two points), "
                f"got {self.group_size}"
            )
        if self.encode_batch_size < 1:
            raise VaelabError(f"encode_batch_size must be positive, got {self.encode_batch_size}")
