"""Disentanglement metrics of a representation of a :class:`~vaelab.data.ground_truth.
GroundTruthData` set, with disentanglement_lib's definitions and default sizes (one file per
metric; the sizes in :mod:`.settings`).

One evaluation draws its samples once: MIG, SAP, DCI, modularity/explicitness and the
FactorVAE score's variance estimate read prefixes of one i.i.d. sample of (factors, codes)
(each sees an i.i.d. sample of its own size), and every metric encodes through one
:class:`~.factor_encoder.FactorEncoder`, which encodes each distinct observation once where
the data make observations a function of the factors. Each metric is a stage of
:mod:`vaelab.stage_progress` (its amount of work, an estimate, progress).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from vaelab.data.ground_truth import GroundTruthData
from vaelab.evaluation.disentanglement import beta_vae_score as beta_vae
from vaelab.evaluation.disentanglement import dci as dci_module
from vaelab.evaluation.disentanglement import factor_vae_score as factor_vae
from vaelab.evaluation.disentanglement import sap as sap_module
from vaelab.evaluation.disentanglement.factor_encoder import FactorEncoder
from vaelab.evaluation.disentanglement.mig import mutual_information_gap
from vaelab.evaluation.disentanglement.modularity_explicitness import modularity_explicitness
from vaelab.evaluation.disentanglement.sampling import FactorCodes, Representation
from vaelab.evaluation.disentanglement.settings import SIZE_PRESETS, DisentanglementSettings
from vaelab.stage_progress import Mode, Stage, stage

#: the headline numbers (held-out where the metric has a held-out set), as written to
#: metrics.json and drawn by vaelab-report
METRIC_NAMES = (
    "beta_vae_score",
    "factor_vae_score",
    "mig",
    "sap",
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness",
    "modularity",
    "explicitness",
)
#: the metrics computed from the shared (factors, codes) sample
SHARED_SAMPLE_METRICS = frozenset(METRIC_NAMES) - {"beta_vae_score", "factor_vae_score"}
#: how many observations went through the representation in one evaluation
ENCODED_KEY = "encoded_observations"


@dataclass
class MetricStage:
    """One metric as a stage of work: ``amount(sizes)`` units of ``unit`` under sample sizes
    ``sizes``; ``compute(progress)`` → its named numbers."""

    label: str
    names: tuple[str, ...]
    unit: str
    amount: Callable[[DisentanglementSettings], int]
    compute: Callable[[Stage], dict[str, float]]


def shared_sample_sizes(settings: DisentanglementSettings, wanted: set[str]) -> tuple[int, int]:
    """(training, held-out) sizes of the shared sample: the largest any wanted metric reads."""
    train = settings.num_train if wanted & SHARED_SAMPLE_METRICS else 0
    if "factor_vae_score" in wanted:
        train = max(train, settings.num_variance_estimate)
    return train, settings.num_eval if wanted & SHARED_SAMPLE_METRICS else 0


def shared_sample_stages(
    train: FactorCodes, test: FactorCodes, settings: DisentanglementSettings
) -> list[MetricStage]:
    """MIG, SAP, DCI and modularity/explicitness on the first ``num_train`` training and
    ``num_eval`` held-out points. A classifier's work grows about linearly with its training
    points, so at other sizes a stage's amount is scaled by their ratio."""
    train = FactorCodes(train.codes[: settings.num_train], train.factors[: settings.num_train])
    test = FactorCodes(test.codes[: settings.num_eval], test.factors[: settings.num_eval])

    def scaled(count: int) -> Callable[[DisentanglementSettings], int]:
        return lambda sizes: round(count * sizes.num_train / settings.num_train)

    def mig(_: Stage) -> dict[str, float]:
        return {"mig": mutual_information_gap(train, settings.num_bins)}

    def dci(progress: Stage) -> dict[str, float]:
        scores = dci_module.dci_scores(train, test, settings.seed, progress)
        return {
            "dci_disentanglement": scores.disentanglement,
            "dci_completeness": scores.completeness,
            "dci_informativeness": scores.informativeness_test,
        }

    def modularity(progress: Stage) -> dict[str, float]:
        scores = modularity_explicitness(train, test, settings.num_bins, progress)
        return {"modularity": scores.modularity, "explicitness": scores.explicitness_test}

    num_factors = train.factors.shape[1]
    return [
        MetricStage("MIG", ("mig",), "computations", lambda _: 1, mig),
        MetricStage(
            "SAP",
            ("sap",),
            "classifier fits",
            scaled(sap_module.fits(train)),
            lambda progress: {"sap": sap_module.sap_score(train, test, progress=progress)},
        ),
        MetricStage(
            "DCI",
            ("dci_disentanglement", "dci_completeness", "dci_informativeness"),
            "trees",
            scaled(sum(dci_module.trees_per_factor(train))),
            dci,
        ),
        MetricStage(
            "modularity and explicitness",
            ("modularity", "explicitness"),
            "classifier fits",
            scaled(num_factors),
            modularity,
        ),
    ]


def compute_disentanglement(
    data: GroundTruthData,
    representation: Representation,
    settings: DisentanglementSettings | None = None,
    metrics: tuple[str, ...] | None = None,
    *,
    where: str = "this CPU",
    progress: Mode | None = None,
) -> dict[str, float]:
    """Every metric (or those whose names are in ``metrics``) → ``{name: value}``, plus
    ``<name>_seconds`` wall times and :data:`ENCODED_KEY`. All randomness comes from
    ``settings.seed``: the shared sample (training part, then held-out part) is drawn first,
    then the β-VAE and FactorVAE scores' groups. ``where`` names the device in the time
    estimates; ``progress``: the :mod:`vaelab.stage_progress` mode (default: a bar on a
    terminal, lines elsewhere). Each stage's estimate also gives the time at
    ``eval.disentanglement.sizes=quick``."""
    settings = settings or DisentanglementSettings()
    wanted = set(METRIC_NAMES if metrics is None else metrics)
    generator = torch.Generator().manual_seed(settings.seed)
    encoder = FactorEncoder(data, representation, generator, settings.encode_batch_size)
    quick = replace(settings, sizes="quick", **SIZE_PRESETS["quick"])
    larger_than_quick = beta_vae.draws(settings) > beta_vae.draws(quick)
    alternatives = {"eval.disentanglement.sizes=quick": quick} if larger_than_quick else {}
    results: dict[str, float] = {ENCODED_KEY: 0}

    def run(metric: MetricStage) -> None:
        if not wanted.intersection(metric.names):
            return
        others = {label: metric.amount(sizes) for label, sizes in alternatives.items()}
        start = time.perf_counter()
        total = metric.amount(settings)
        with stage(
            metric.label, total, metric.unit, where=where, alternatives=others, mode=progress
        ) as bar:
            encoder.progress = bar  # encoding stages advance by each encoded batch
            results.update(metric.compute(bar))
            encoder.progress = None
        results[f"{metric.names[0]}_seconds"] = time.perf_counter() - start

    def encodings(draws: Callable[[DisentanglementSettings], int]):
        return lambda sizes: encoder.expected_encodings(draws(sizes))

    samples: dict[str, FactorCodes] = {}

    def draw_shared(_: Stage) -> dict[str, float]:
        num_train, num_eval = shared_sample_sizes(settings, wanted)
        samples["train"], samples["test"] = encoder.sample(num_train), encoder.sample(num_eval)
        return {}

    shared = MetricStage(
        "shared sample of (factors, codes)",
        ("encoding",),
        "encodings",
        encodings(lambda sizes: sum(shared_sample_sizes(sizes, wanted))),
        draw_shared,
    )
    if any(shared_sample_sizes(settings, wanted)):
        wanted.add("encoding")
    run(shared)
    run(
        MetricStage(
            "β-VAE score",
            ("beta_vae_score",),
            "encodings",
            encodings(beta_vae.draws),
            lambda _: {"beta_vae_score": beta_vae.beta_vae_score(encoder, settings).eval_accuracy},
        )
    )
    run(
        MetricStage(
            "FactorVAE score",
            ("factor_vae_score",),
            "encodings",
            encodings(lambda sizes: factor_vae.draws(sizes, variance_sample_given=True)),
            lambda _: {
                "factor_vae_score": factor_vae.factor_vae_score(
                    encoder, settings, samples["train"]
                ).eval_accuracy
            },
        )
    )
    if wanted & SHARED_SAMPLE_METRICS:
        for metric in shared_sample_stages(samples["train"], samples["test"], settings):
            run(metric)
    results[ENCODED_KEY] = encoder.encoded
    return {
        k: v
        for k, v in results.items()
        if k in wanted - {"encoding"} or k.endswith("_seconds") or k == ENCODED_KEY
    }


__all__ = [
    "ENCODED_KEY",
    "METRIC_NAMES",
    "DisentanglementSettings",
    "Representation",
    "compute_disentanglement",
]
