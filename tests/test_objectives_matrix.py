"""Every objective with every kind of model and posterior: each combination trains for a
fast_dev_run or is refused in one line naming the missing capability — no traceback, no silent
fallback. docs/architecture.md prints this matrix; :data:`REFUSED` is its list of refusals."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from vaelab.errors import VaelabError
from vaelab.paths import CONFIG_DIR
from vaelab.train import train

#: every option of the objective group: a new objective joins the matrix by its yaml
OBJECTIVES = tuple(sorted(path.stem for path in (Path(CONFIG_DIR) / "objective").glob("*.yaml")))
#: the three kinds of model: one flat latent, stochastic layers, conditioned on the label
MODELS = ("mlp", "hierarchical_mlp", "cvae_mlp")
POSTERIORS = ("diagonal", "iaf")
#: settings that keep each run small (FactorVAE's discriminator)
SMALL = {
    objective: ["objective.discriminator_width=32", "objective.discriminator_depth=1"]
    for objective in ("factor_vae", "adversarial_autoencoder", "vae_gan")
}
SMALL["vae_gan"].append("objective.feature_layer=1")

#: (objective, model, posterior) → what the one-line refusal must say (a regular expression);
#: every other combination must train
REFUSED = {
    **{
        (objective, "hierarchical_mlp", "iaf"): r"has no posterior: remove posterior=iaf"
        for objective in OBJECTIVES
    },
    **{
        (objective, "hierarchical_mlp", "diagonal"): r"2 stochastic layers: use objective=elbo"
        for objective in (
            "beta_tcvae",
            "dip_vae_i",
            "dip_vae_ii",
            "info_vae",
            "wae_mmd",
            "swae",
            "factor_vae",
            "joint_capacity",
            "adversarial_autoencoder",
            "vae_gan",
        )
    },
    **{
        ("piwae", model, "iaf"): r"stopped parameters.*objective.gradient=reparam"
        for model in ("mlp", "cvae_mlp")
    },
    ("piwae", "hierarchical_mlp", "diagonal"): r"stopped parameters.*objective=elbo, iwae",
    **{
        ("vq", model, posterior): r"objective=vq trains a vector-quantised model.*use model=vqvae"
        for model in MODELS
        for posterior in POSTERIORS
        if (model, posterior) != ("hierarchical_mlp", "iaf")
    },
    **{
        ("beta_tcvae", model, "iaf"): r"FlowDistribution has none in closed form"
        for model in ("mlp", "cvae_mlp")
    },
    **{
        (variant, model, "iaf"): r"posterior FlowDistribution is not Gaussian"
        for variant in ("dip_vae_i", "dip_vae_ii")
        for model in ("mlp", "cvae_mlp")
    },
    **{
        ("joint_capacity", model, posterior): r"continuous and discrete blocks.*use model=joint_vae"
        for model in ("mlp", "cvae_mlp")
        for posterior in POSTERIORS
    },
    # weak supervision needs pairs of observations (data.changed_factors on a factor data set);
    # tests/test_objectives_weak_supervision.py trains both on XYObject pairs
    **{
        (weak, model, posterior): rf"objective={weak} trains on pairs.*changed_factors"
        for weak in ("ada_gvae", "ada_ml_vae")
        for model in MODELS
        for posterior in POSTERIORS
        if (model, posterior) != ("hierarchical_mlp", "iaf")
    },
}
#: a refusal takes milliseconds; the ~50 fast_dev_runs that train take ~2 s each (slow group)
CASES = [
    pytest.param(o, m, p, id=f"{o}-{m}-{p}", marks=() if (o, m, p) in REFUSED else pytest.mark.slow)
    for o in OBJECTIVES
    for m in MODELS
    for p in POSTERIORS
]
#: the hierarchy's layers are diagonal Gaussians of its own: it takes no posterior= group
OWN_POSTERIOR = {("hierarchical_mlp", "diagonal")}


@pytest.mark.parametrize(("objective", "model", "posterior"), CASES)
def test_objective_trains_or_refuses_in_one_line(objective, model, posterior, make_config):
    posterior_override = [] if (model, posterior) in OWN_POSTERIOR else [f"posterior={posterior}"]
    cfg = make_config(
        "data=digits",
        f"model={model}",
        *posterior_override,
        f"objective={objective}",
        "trainer.fast_dev_run=true",
        "callbacks=none",
        "logger=[]",
        *SMALL.get(objective, []),
    )
    refusal = REFUSED.get((objective, model, posterior))
    if refusal is None:
        metrics = train(cfg)
        assert math.isfinite(metrics["test/loss"])
        return
    with pytest.raises(VaelabError) as refused:
        train(cfg)
    message = str(refused.value)
    assert "\n" not in message, message
    assert re.search(refusal, message), message
