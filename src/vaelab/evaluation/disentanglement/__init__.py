"""Disentanglement metrics of a representation of a :class:`~vaelab.data.ground_truth.
GroundTruthData` set, with disentanglement_lib's definitions and default sizes (one file per
metric; the sizes in :mod:`.settings`)."""

from __future__ import annotations

import time

import torch

from vaelab.data.ground_truth import GroundTruthData
from vaelab.evaluation.disentanglement.beta_vae_score import beta_vae_score
from vaelab.evaluation.disentanglement.dci import dci_scores
from vaelab.evaluation.disentanglement.factor_vae_score import factor_vae_score
from vaelab.evaluation.disentanglement.mig import mutual_information_gap
from vaelab.evaluation.disentanglement.modularity_explicitness import modularity_explicitness
from vaelab.evaluation.disentanglement.sampling import Representation, sample_factor_codes
from vaelab.evaluation.disentanglement.sap import sap_score
from vaelab.evaluation.disentanglement.settings import DisentanglementSettings

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


def compute_disentanglement(
    data: GroundTruthData,
    representation: Representation,
    settings: DisentanglementSettings | None = None,
    metrics: tuple[str, ...] | None = None,
) -> dict[str, float]:
    """Every metric (or those whose names are in ``metrics``) → ``{name: value}``, plus
    ``<name>_seconds`` wall times. MIG, SAP, DCI and modularity/explicitness share one
    training and one held-out sample of (factors, codes); the β-VAE and FactorVAE scores draw
    their own groups. All randomness comes from ``settings.seed``."""
    settings = settings or DisentanglementSettings()
    wanted = set(METRIC_NAMES if metrics is None else metrics)
    generator = torch.Generator().manual_seed(settings.seed)
    results: dict[str, float] = {}

    def timed(names: tuple[str, ...], compute) -> None:
        if not wanted.intersection(names):
            return
        start = time.perf_counter()
        results.update(compute())
        results[f"{names[0]}_seconds"] = time.perf_counter() - start

    timed(
        ("beta_vae_score",),
        lambda: {
            "beta_vae_score": beta_vae_score(
                data, representation, settings, generator
            ).eval_accuracy
        },
    )
    timed(
        ("factor_vae_score",),
        lambda: {
            "factor_vae_score": factor_vae_score(
                data, representation, settings, generator
            ).eval_accuracy
        },
    )
    needs_codes = {
        "mig",
        "sap",
        "dci_disentanglement",
        "dci_completeness",
        "dci_informativeness",
        "modularity",
        "explicitness",
    }
    if not wanted & needs_codes:
        return results
    start = time.perf_counter()
    train = sample_factor_codes(
        data, representation, settings.num_train, generator, settings.encode_batch_size
    )
    test = sample_factor_codes(
        data, representation, settings.num_eval, generator, settings.encode_batch_size
    )
    results["encoding_seconds"] = time.perf_counter() - start
    timed(("mig",), lambda: {"mig": mutual_information_gap(train, settings.num_bins)})
    timed(("sap",), lambda: {"sap": sap_score(train, test)})

    def dci() -> dict[str, float]:
        scores = dci_scores(train, test, settings.seed)
        return {
            "dci_disentanglement": scores.disentanglement,
            "dci_completeness": scores.completeness,
            "dci_informativeness": scores.informativeness_test,
        }

    timed(("dci_disentanglement", "dci_completeness", "dci_informativeness"), dci)

    def modularity() -> dict[str, float]:
        scores = modularity_explicitness(train, test, settings.num_bins)
        return {"modularity": scores.modularity, "explicitness": scores.explicitness_test}

    timed(("modularity", "explicitness"), modularity)
    return {k: v for k, v in results.items() if k in wanted or k.endswith("_seconds")}


__all__ = [
    "METRIC_NAMES",
    "DisentanglementSettings",
    "Representation",
    "compute_disentanglement",
]
