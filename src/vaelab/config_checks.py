"""Validate a composed config before any data is loaded: one error listing every bad value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from vaelab.errors import VaelabError


@dataclass(frozen=True)
class Rule:
    """``key`` (dotted), when present and not null, must satisfy ``check``."""

    key: str
    check: Callable[[float], bool]
    requirement: str
    example: str


def _is_fraction_or_count(value) -> bool:
    if isinstance(value, float):
        return 0.0 < value < 1.0
    return value >= 1


RULES = (
    Rule("model.latent_dim", lambda v: v >= 1, "an integer >= 1", "model.latent_dim=2"),
    Rule("beta.value", lambda v: v >= 0, ">= 0 (β = 1 is the ELBO)", "beta.value=1.0"),
    Rule("optimizer.lr", lambda v: v > 0, "> 0", "optimizer.lr=1e-3"),
    Rule("objective.num_samples", lambda v: v >= 1, "an integer >= 1", "objective.num_samples=1"),
    Rule("data.batch_size", lambda v: v >= 1, "an integer >= 1", "data.batch_size=100"),
    Rule(
        "data.val_size",
        _is_fraction_or_count,
        "a fraction in (0, 1) or a count >= 1",
        "data.val_size=0.1",
    ),
    Rule(
        "data.val_fraction",
        lambda v: 0.0 < v < 1.0,
        "a fraction in (0, 1)",
        "data.val_fraction=0.1",
    ),
    Rule(
        "trainer.max_epochs", lambda v: v >= -1, ">= 1, or -1 for no limit", "trainer.max_epochs=10"
    ),
)


def validate_config(cfg: DictConfig, rules: tuple[Rule, ...] = RULES) -> None:
    """Raise :class:`VaelabError` naming every value that breaks a rule and how to fix it."""
    problems = []
    for rule in rules:
        value = OmegaConf.select(cfg, rule.key, default=None)
        if value is None or isinstance(value, bool):
            continue
        if not isinstance(value, int | float):
            problems.append(f"{rule.key}={value!r} must be a number ({rule.requirement})")
        elif not rule.check(value):
            problems.append(f"{rule.key}={value} must be {rule.requirement}, e.g. {rule.example}")
    if problems:
        raise VaelabError("invalid config: " + "; ".join(problems))
