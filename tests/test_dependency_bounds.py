"""pyproject's lower bounds admit no release that lacks an API vaelab calls (each first release
was found by grepping the wheels of the releases before and after it)."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from vaelab.paths import PROJECT_ROOT

tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11

#: package → (first release with the API, the API)
FIRST_RELEASE_WITH = {
    "lightning": ("2.6.0", "Trainer.fit(weights_only=...), train.py"),
    "torchmetrics": ("1.6.2", 'MeanMetric(nan_strategy="disable"), module.py'),
    "torch": ("2.4", "fused Adam on the CPU, optimizer.fused=true"),
    "torchvision": ("0.19", "the torchvision of torch 2.4"),
    "typing_extensions": ("4.4", "typing_extensions.override, on every hook"),
}


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    parsed = (Requirement(line) for line in project["dependencies"])
    return {requirement.name: requirement for requirement in parsed}


@pytest.mark.parametrize("package", sorted(FIRST_RELEASE_WITH))
def test_lower_bound_has_the_api(package):
    first, api = FIRST_RELEASE_WITH[package]
    requirement = _requirements()[package]
    lower = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    assert lower, f"{requirement} admits releases without {api}"
    assert min(lower) >= Version(first), f"{requirement} admits releases without {api}"
    # and the tested (installed) version satisfies the requirement
    assert requirement.specifier.contains(version(package), prereleases=True)
