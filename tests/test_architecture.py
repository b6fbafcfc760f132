"""The package layering of docs/architecture.md: no two packages of ``vaelab`` import each
other, and the model layer never reaches up into training, evaluation or plotting."""

from __future__ import annotations

import re
from pathlib import Path

import vaelab

SOURCE = Path(vaelab.__file__).parent
IMPORT = re.compile(r"^\s*(?:from|import) vaelab\.(\w+)", re.MULTILINE)


def package_imports() -> dict[str, set[str]]:
    """Which top-level parts of vaelab (packages or modules) each part imports."""
    imports: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        parts = path.relative_to(SOURCE).parts
        part = parts[0] if len(parts) > 1 else path.stem
        imported = set(IMPORT.findall(path.read_text())) - {part}
        imports.setdefault(part, set()).update(imported)
    return imports


def test_no_two_parts_import_each_other():
    imports = package_imports()
    cycles = sorted(
        (a, b) for a, targets in imports.items() for b in targets if a in imports.get(b, set())
    )
    assert not cycles, cycles


def test_the_model_layer_does_not_import_training_evaluation_or_plots():
    imports = package_imports()
    upper = {"module", "builders", "train", "eval", "report", "evaluation", "plots", "callbacks"}
    for lower in ("models", "priors", "posteriors", "flows", "likelihoods", "nets", "objectives"):
        assert not imports.get(lower, set()) & upper, (lower, imports[lower] & upper)
