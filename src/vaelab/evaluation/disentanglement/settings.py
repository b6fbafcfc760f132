"""The sample sizes and constants of the disentanglement metrics, in one place.

The defaults are those of disentanglement_lib's study configs
(``config/unsupervised_study_v1/metric_configs/*.gin`` and the β-VAE, FactorVAE and DCI
configs of the same study, Locatello et al. 2019), so that numbers compare with the
literature. ``sizes="quick"`` takes a tenth of them; tests pass smaller sizes; the defaults run
in the slow tests and in ``scripts/metric_timing.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from vaelab.schema import NonNegativeFloat, PositiveInt, Range, Seed, checked_arguments

#: a sample size a metric needs at least two of (a variance, a split)
AtLeastTwo = Annotated[int, Range(ge=2)]

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


#: the sample sizes of ``eval.disentanglement.sizes``: the literature's (the default), and a
#: tenth of them for a quick look (noisier scores, the same definitions; ~10× less work)
SIZE_PRESETS: dict[str, dict[str, int]] = {
    "literature": {
        "num_train": NUM_TRAIN,
        "num_eval": NUM_EVAL,
        "group_size": GROUP_SIZE,
        "num_variance_estimate": NUM_VARIANCE_ESTIMATE,
    },
    "quick": {
        "num_train": NUM_TRAIN // 10,
        "num_eval": NUM_EVAL // 10,
        "group_size": GROUP_SIZE,
        "num_variance_estimate": NUM_VARIANCE_ESTIMATE // 10,
    },
}
SizesName = Literal["literature", "quick"]


@checked_arguments("eval.disentanglement")
@dataclass(frozen=True)
class DisentanglementSettings:
    """Sizes of one evaluation (``eval.disentanglement``; the schema of that config key).
    ``sizes`` names a preset of :data:`SIZE_PRESETS`; a size given explicitly overrides it.
    ``encode_batch_size`` only sets how many observations go through the encoder at once; it
    does not change any score's definition. ``group_size``: a variance needs two points."""

    sizes: SizesName = "literature"
    num_train: AtLeastTwo | None = None
    num_eval: AtLeastTwo | None = None
    group_size: AtLeastTwo | None = None
    num_variance_estimate: AtLeastTwo | None = None
    active_std_threshold: NonNegativeFloat = ACTIVE_STD_THRESHOLD
    num_bins: AtLeastTwo = NUM_BINS
    encode_batch_size: PositiveInt = 1024
    seed: Seed = 0

    def __post_init__(self) -> None:
        for name, value in SIZE_PRESETS[self.sizes].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
