"""vaelab.config_checks: resume is a closed set and a typo loses nothing; values that were
silently fixed or wrongly typed are refused before any data is loaded; a monitored metric the
model never logs is refused before training; every shipped config passes."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from tests.conftest import FAST, compose_config
from tests.tiny_digits_run import digits_config, refused
from vaelab.config_checks import (
    EvalSettings,
    config_problems,
    unknown_override_message,
    validate_config,
)
from vaelab.errors import VaelabError
from vaelab.paths import CONFIG_DIR
from vaelab.run_files import CHECKPOINT_DIR, CONFIG_FILE, LAST_CHECKPOINT


# -- work lost with exit 0: resume is a closed set -------------------------------------------
@pytest.mark.parametrize("value", ["true", "Auto", "no", "1", "never_"])
def test_resume_is_auto_or_never_and_a_typo_loses_nothing(tmp_path, value):
    run_dir = tmp_path / "run"
    (run_dir / CHECKPOINT_DIR).mkdir(parents=True)
    (run_dir / CONFIG_FILE).write_text("the earlier attempt's config\n")
    (run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT).write_bytes(b"the earlier attempt's weights")
    message = refused(digits_config(tmp_path, f"resume={value}"))
    assert f"resume={value} must be one of auto, never" in message
    assert (run_dir / CONFIG_FILE).read_text() == "the earlier attempt's config\n"
    assert sorted(p.name for p in run_dir.iterdir()) == [CHECKPOINT_DIR, CONFIG_FILE]


# -- silently "fixed" values and wrong types are refused before any data is loaded ----------
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.max_epochs=0", "trainer.max_epochs=0 must be an integer >= 1, or -1"),
        ("trainer.max_steps=0", "trainer.max_steps=0 must be an integer >= 1, or -1"),
        ("trainer.limit_train_batches=0", "trainer.limit_train_batches=0 must be an integer >= 1"),
        ("trainer.max_epochs=2.5", "trainer.max_epochs=2.5 must be an integer"),
        ("trainer.devices=0", "trainer.devices=0 must be an integer >= 1, or -1"),
        ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps=0 must be an integer >= 1"),
        ("model.latent_dim=2.7", "model.latent_dim=2.7 must be an integer"),
        ("model.latent_dim=true", "model.latent_dim=true must be an integer"),
        ("data.batch_size=1e2", "data.batch_size=100.0 must be an integer (write 100, not"),
        ("seed=-1", "seed=-1 must be an integer in [0, 4294967295]"),
        ("test=maybe", "test=maybe must be true or false"),
        ("data.shuffle=yes", "data.shuffle=yes must be true or false"),
        ("data.binarize=Dynamic", "must be one of none, dynamic, static (did you mean dynamic?)"),
        ("objective.kl=analytical", "objective.kl=analytical must be one of auto, analytic, monte"),
        ("trainer.precision=33", "trainer.precision=33 must be one of 64, 32, 16"),
        ("callbacks.model_checkpoint.mode=maximum", "mode=maximum must be one of min, max"),
        ("optimizer.betas=[0.9]", "optimizer.betas=[0.9] must be a list of 2 values"),
        ("+model.hidden=3", "model.hidden=3 is not a known key; known: input_shape, latent_dim"),
        ("+trainer.max_epoch=3", "trainer.max_epoch=3 is not a known key (did you mean max_epochs"),
        ("+foo=1", "foo=1 is not a known key; known: ckpt_path"),
    ],
)
def test_values_that_were_silently_fixed_or_wrongly_typed_are_refused(tmp_path, override, expected):
    # data=mnist in a data dir that does not exist: the config error must come first
    cfg = compose_config(
        [*FAST, f"paths.data_dir={tmp_path / 'absent'}", override], tmp_path / "run"
    )
    message = refused(cfg)
    assert message.startswith("invalid config:"), message
    assert expected in message, message


@pytest.mark.slow  # ~70 compositions, and every target imported (wandb among them)
def test_every_shipped_config_passes_the_schema(tmp_path):
    """No false refusals: every option of every group, and every experiment, validates."""
    from vaelab.config_checks import TrainSettings

    choices = [[]] + [
        [f"{group.name}={option.stem}"]
        for group in sorted(CONFIG_DIR.iterdir())
        if group.is_dir() and group.name not in ("hydra", "paths", "hparams_search", "sampler")
        for option in sorted(group.glob("*.yaml"))
    ]
    assert len(choices) > 60
    for overrides in choices:
        cfg = compose_config(overrides, tmp_path / "run")
        tree = validate_config(cfg, TrainSettings)
        assert not config_problems(tree, TrainSettings), overrides
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        validate_config(compose("eval"), EvalSettings)
        for option in sorted((CONFIG_DIR / "sampler").glob("*.yaml")):  # vaelab-eval's group
            validate_config(compose("eval", overrides=[f"sampler={option.stem}"]), EvalSettings)
        with pytest.raises(VaelabError, match=r"sampler.num_components=0 must be an integer"):
            validate_config(
                compose("eval", overrides=["sampler=gmm", "sampler.num_components=0"]),
                EvalSettings,
            )
        with pytest.raises(VaelabError, match=r"eval.num_samples=0 must be an integer >= 1"):
            validate_config(compose("eval", overrides=["eval.num_samples=0"]), EvalSettings)


def test_a_monitored_metric_the_model_never_logs_is_refused_before_training(tmp_path):
    message = refused(digits_config(tmp_path, "callbacks.model_checkpoint.monitor=val/elbbo"))
    assert "callbacks.model_checkpoint.monitor=val/elbbo is not a metric this model logs" in message
    assert "val/elbo" in message
    assert not (tmp_path / "run" / CHECKPOINT_DIR).exists()  # no training started
    message = refused(digits_config(tmp_path, "optimized_metric=val/elb", name="other"))
    assert "optimized_metric=val/elb is not a metric this model logs" in message


@pytest.mark.parametrize(
    ("arguments", "config_name", "expected"),
    [
        (
            ["modle=vqvae"],
            "train",
            "unknown config group 'modle': did you mean model? (model=vqvae)",
        ),
        (["modle.latent_dim=3"], "train", "did you mean model? (model.latent_dim=3)"),
        (["modul.compile=true"], "train", "did you mean module? (module.compile=true)"),
        (["-m", "optimiser=sgd,adam"], "train", "did you mean optimizer? (optimizer=sgd,adam)"),
        (["sed=3"], "train", "unknown key 'sed': did you mean seed? (seed=3)"),
        (["compile=true"], "train", "did you mean module.compile? (module.compile=true)"),
        (["num_samples=3"], "eval", "did you mean eval.num_samples? (eval.num_samples=3)"),
        (["zzz=1"], "train", "unknown config group or key 'zzz' in zzz=1; config groups: beta,"),
    ],
)
def test_an_unknown_top_level_name_on_the_command_line_names_the_closest(
    arguments, config_name, expected
):
    assert expected in unknown_override_message(arguments, config_name)


def test_known_names_and_appended_keys_pass_to_hydra_and_the_schema():
    fine = [
        "model=vqvae",
        "objective.beta=2",
        "hydra/launcher=slurm",
        "hydra.run.dir=/tmp/x",
        "~logger",
        "+trainer.max_time=1",
        "+foo=1",  # nothing close: the schema check names it
    ]
    assert unknown_override_message(fine, "train") is None
    # another primary config: its names are not known here
    assert unknown_override_message(["--config-name", "other", "zzz=1"], "train") is None
    assert unknown_override_message(["-m", "seed=1,2", "threads=4"], "train") is None


def test_a_group_key_set_by_another_option_names_that_option_and_the_options_taking_it(tmp_path):
    # objective=beta_tcvae sets beta.value (the paper's β = 6); beta=capacity has no value
    overrides = [*FAST, f"paths.data_dir={tmp_path / 'absent'}", "objective=beta_tcvae"]
    message = refused(compose_config([*overrides, "beta=capacity"], tmp_path / "run"))
    assert message == (
        "invalid config: beta.value=6.0 is set by objective=beta_tcvae, but beta=capacity has "
        "no value: use beta=constant | cyclical | linear_warmup, or another objective"
    )
