"""The builders' contract with the data: what a model conditions on must be provided, data
facts fill the constructor parameters named after them, and a model declaring its own
LightningModule is trained by it."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from vaelab.baselines.classifier_module import ClassifierModule
from vaelab.baselines.feature_classifier import FeatureClassifier
from vaelab.builders import (
    build_module,
    data_info_before_setup,
    trainer_overrides,
    values_from_data,
)
from vaelab.errors import VaelabError
from vaelab.module import LatentVariableModule


class FactorReader:
    """A constructor that takes two data facts (and the input shape, passed apart)."""

    def __init__(
        self, input_shape: Sequence[int], factor_sizes: Sequence[int], num_classes: int = 0
    ) -> None:
        self.input_shape, self.factor_sizes = input_shape, factor_sizes
        self.num_classes = num_classes


def test_data_facts_fill_the_parameters_named_after_them():
    cfg = OmegaConf.create({"factor_sizes": None})
    info = {"input_shape": (1, 8, 8), "num_classes": None, "factor_sizes": [3, 6], "num_val": 9}
    # the shape is passed apart; an unprovided fact (None) and keys no parameter takes are not
    assert values_from_data(cfg, FactorReader, info) == {"factor_sizes": [3, 6]}
    agreeing = OmegaConf.create({"factor_sizes": [3, 6]})
    assert values_from_data(agreeing, FactorReader, info) == {"factor_sizes": [3, 6]}
    disagreeing = OmegaConf.create({"factor_sizes": [3, 5]})
    with pytest.raises(VaelabError, match=r"model.factor_sizes=\[3, 5\] does not match the data"):
        values_from_data(disagreeing, FactorReader, info)


def test_data_info_before_setup_names_what_the_datamodule_has():
    factors = SimpleNamespace(
        dims=(1, 64, 64), num_classes=None, factor_sizes=(3, 6), factor_names=("shape", "x")
    )
    assert data_info_before_setup(factors) == {
        "input_shape": (1, 64, 64),
        "num_classes": None,
        "factor_sizes": [3, 6],
        "factor_names": ["shape", "x"],
    }
    labelled = SimpleNamespace(dims=(1, 8, 8), num_classes=10)
    assert data_info_before_setup(labelled) == {"input_shape": (1, 8, 8), "num_classes": 10}


def test_a_model_conditioned_on_what_the_data_lack_is_refused_in_one_line(make_config):
    cfg = make_config("data=digits", "model=cvae_mlp")
    with pytest.raises(VaelabError) as refused:
        build_module(cfg, (1, 8, 8), {"input_shape": (1, 8, 8), "num_classes": None})
    message = str(refused.value)
    assert "\n" not in message
    assert "model=cvae_mlp conditions on class labels" in message
    assert "data=digits has none" in message
    assert "choose data with class labels" in message
    module = build_module(cfg, (1, 8, 8), {"input_shape": (1, 8, 8), "num_classes": 10})
    assert module.model.num_classes == 10


def test_the_feature_classifier_is_trained_by_its_own_module(make_config):
    cfg = make_config("data=digits", "experiment=feature_classifier_mnist")
    module = build_module(cfg, (1, 8, 8), {"input_shape": (1, 8, 8), "num_classes": 10})
    assert type(module) is ClassifierModule
    assert type(module.model) is FeatureClassifier
    assert module.logged_metric_names() == {
        f"{stage}/{name}"
        for stage in ("train", "val", "test")
        for name in ("loss", "cross_entropy", "error")
    }
    assert module.redirected_monitor("val/elbo") == "val/loss"
    assert trainer_overrides(module) == {}
    # its parameter names are those of the checkpoints the LVM module wrote
    assert sorted(module.state_dict()) == sorted(
        f"model.{name}"
        for name in (
            "features.0.0.weight",
            "features.0.0.bias",
            "features.0.2.weight",
            "features.0.2.bias",
            "features.1.weight",
            "features.1.bias",
            "head.weight",
            "head.bias",
        )
    )
    with pytest.raises(VaelabError, match="model=feature_classifier conditions on class labels"):
        build_module(cfg, (1, 8, 8), {"input_shape": (1, 8, 8), "num_classes": None})
    assert build_module(cfg, (1, 8, 8), {"num_classes": 4}).model.num_classes == 4
    with open_dict(cfg):
        cfg.model.num_classes = 10  # a value the data contradict
    with pytest.raises(VaelabError, match=r"model\.num_classes=10 does not match the data's 4"):
        build_module(cfg, (1, 8, 8), {"input_shape": (1, 8, 8), "num_classes": 4})


def test_the_classifier_module_logs_the_classifier_metrics(make_config, tmp_path):
    from tests.linear_factor_model import quiet_trainer

    cfg = make_config("data=digits", "experiment=feature_classifier_mnist")
    torch.manual_seed(0)
    module = build_module(cfg, (1, 8, 8), {"input_shape": (1, 8, 8), "num_classes": 3})
    images = torch.rand(48, 1, 8, 8)
    labels = torch.arange(48) % 3
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), 16)
    trainer = quiet_trainer(tmp_path, max_epochs=1)
    trainer.fit(module, data, data)
    fitted = set(trainer.callback_metrics)
    for stage in ("train", "val"):
        assert {f"{stage}/loss", f"{stage}/cross_entropy", f"{stage}/error"} <= fitted
    trainer.test(module, data)
    assert {"test/loss", "test/cross_entropy", "test/error"} <= set(trainer.callback_metrics)
    assert 0 <= float(trainer.callback_metrics["test/error"]) <= 1


def test_adversarial_modules_clip_their_own_gradients(make_config):
    cfg = make_config("data=digits", "objective=factor_vae", "trainer.gradient_clip_val=1.0")
    module = build_module(cfg, (1, 8, 8))
    assert isinstance(module, LatentVariableModule)
    assert trainer_overrides(module) == {"gradient_clip_val": None}


def test_a_run_that_is_not_a_classifier_is_refused_by_the_classifier_loader(tmp_path):
    from vaelab.evaluation.feature_extractors import load_feature_classifier

    run = tmp_path / "vae_run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"not read: the config is checked first")
    (run / "config.yaml").write_text(
        "model:\n  _target_: vaelab.models.vae.VAE\ndata:\n  _target_: x.Y\n"
    )
    with pytest.raises(VaelabError) as refused:
        load_feature_classifier(run, torch.device("cpu"))
    assert str(refused.value) == (
        f"{run} is a VAE run, not a feature classifier; train one with vaelab-train "
        "experiment=feature_classifier_mnist"
    )
