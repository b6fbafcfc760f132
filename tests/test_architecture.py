"""docs/architecture.md's import order is enforced: the table under "Import order" gives every
part of ``vaelab`` (a package ``x/`` or a module ``x.py``) one layer, and every import in
``src/vaelab`` goes to a part of the same or a lower layer.

Every ``import`` / ``from … import`` statement counts, at module level or inside a function
(a lazy import is a dependency too); only imports under ``if TYPE_CHECKING:`` are exempt,
since they never run."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import vaelab
from vaelab.paths import PROJECT_ROOT

SOURCE = Path(vaelab.__file__).parent
ARCHITECTURE = PROJECT_ROOT / "docs" / "architecture.md"
ROW = re.compile(r"^\|\s*(\d+)\s*\|(.*)\|\s*$")
NAME = re.compile(r"`([\w/.]+)`")


def layer_table(text: str) -> dict[str, int]:
    """``{part: layer}`` from the first table after the "Import order" line; a part is a
    top-level package or module of vaelab (``nets/`` → ``nets``, ``module.py`` → ``module``)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Import order"))
    table: dict[str, int] = {}
    in_table = False
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            in_table = True
            match = ROW.match(line)
            if not match:
                continue  # the header and its |---| line
            for name in NAME.findall(match.group(2)):
                part = name.removesuffix("/").removesuffix(".py")
                assert part not in table, f"{name} is in layers {table[part]} and {match[1]}"
                table[part] = int(match.group(1))
        elif in_table:
            break
    return table


def part_of(module: str) -> str:
    """``vaelab.nets.mlp`` → ``nets``; ``vaelab.schema`` → ``schema``."""
    return module.split(".")[1]


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, vaelab module)`` of every import that runs (not under ``if TYPE_CHECKING:``)."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module] + [f"{child.module}.{a.name}" for a in child.names]
                if child.module == "vaelab":
                    found.extend((child.lineno, name) for name in names[1:])
                elif child.module.startswith("vaelab."):
                    found.append((child.lineno, child.module))
            elif isinstance(child, ast.Import):
                found.extend(
                    (child.lineno, alias.name)
                    for alias in child.names
                    if alias.name.startswith("vaelab.")
                )
            visit(child)

    visit(tree)
    return found


def source_parts() -> dict[Path, str]:
    """Every module file of vaelab (the package's own ``__init__.py`` aside) → its part."""
    return {
        path: path.relative_to(SOURCE).parts[0].removesuffix(".py")
        for path in sorted(SOURCE.rglob("*.py"))
        if path != SOURCE / "__init__.py"
    }


def test_the_table_parses_into_layers():
    table = layer_table(ARCHITECTURE.read_text())
    assert table["errors"] == 1
    assert table["models"] < table["objectives"] < table["module"] < table["builders"]
    assert table["evaluation"] == table["plots"] == table["callbacks"]
    assert table["train"] == table["eval"] == max(table.values())


def test_a_doubly_listed_part_and_a_wrong_import_are_caught():
    with pytest.raises(AssertionError, match="in layers 1 and 2"):
        layer_table("Import order:\n\n| layer | packages |\n|---|---|\n| 1 | `a/` |\n| 2 | `a` |\n")
    code = "from vaelab.module import X\nif TYPE_CHECKING:\n    import vaelab.train\n"
    assert _imports(ast.parse(code)) == [(1, "vaelab.module")]
    nested = "def f():\n    from vaelab import plots, errors\n"
    assert [m for _, m in _imports(ast.parse(nested))] == ["vaelab.plots", "vaelab.errors"]


def test_every_module_is_in_exactly_one_layer():
    table = layer_table(ARCHITECTURE.read_text())
    missing = sorted({part for part in source_parts().values() if part not in table})
    assert not missing, (
        f"{', '.join(missing)} not in the import-order table of docs/architecture.md: "
        "add each to the layer it belongs to"
    )


def test_every_import_goes_to_the_same_or_a_lower_layer():
    table = layer_table(ARCHITECTURE.read_text())
    violations = []
    for path, part in source_parts().items():
        for line, module in _imports(ast.parse(path.read_text())):
            target = part_of(module)
            if target in table and part in table and table[target] > table[part]:
                violations.append(
                    f"{path.relative_to(SOURCE)}:{line} ({part}, layer {table[part]}) imports "
                    f"{module} (layer {table[target]})"
                )
    assert not violations, "\n".join(violations)


def test_no_two_parts_import_each_other():
    """Within a layer too: two parts that import each other are one part."""
    imports: dict[str, set[str]] = {}
    for path, part in source_parts().items():
        targets = {part_of(module) for _, module in _imports(ast.parse(path.read_text()))}
        imports.setdefault(part, set()).update(targets - {part})
    cycles = sorted(
        (a, b) for a, targets in imports.items() for b in targets if a in imports.get(b, set())
    )
    assert not cycles, cycles
