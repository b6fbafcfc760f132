"""The sample sizes and constants of the disentanglement metrics, in one place.

The defaults are those of disentanglement_lib's study configs
(``config/unsupervised_study_v1/metric_configs/*.gin`` and the β-VAE, FactorVAE and DCI
configs of the same study, Locatello et al. 2019), so that numbers compare with the
literature. Tests pass smaller sizes; the defaults run in the slow tests and in
``scripts/metric_timing.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

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


@checked_arguments("eval.disentanglement")
@dataclass(frozen=True)
class DisentanglementSettings:
    """Sizes of one evaluation (``eval.disentanglement``; the schema of that config key).
    ``encode_batch_size`` only sets how many observations go through the encoder at once; it
    does not change any score's definition. ``group_size``: a variance needs two points."""

    num_train: AtLeastTwo = NUM_TRAIN
    num_eval: AtLeastTwo = NUM_EVAL
    group_size: AtLeastTwo = GROUP_SIZE
    num_variance_estimate: AtLeastTwo = NUM_VARIANCE_ESTIMATE
    active_std_threshold: NonNegativeFloat = ACTIVE_STD_THRESHOLD
    num_bins: AtLeastTwo = NUM_BINS
    encode_batch_size: PositiveInt = 1024
    seed: Seed = 0
