"""Security: no unsafe torch.load anywhere, W&B offline unless asked, configs are code."""

from __future__ import annotations

import re
from pathlib import Path

from vaelab.paths import PROJECT_ROOT

SOURCE_DIRS = ("src", "scripts", "tests")
LOAD_CALL = re.compile(r"\btorch\.load\s*\(")


def _call_text(source: str, start: int) -> str:
    """The text of the call whose opening parenthesis ends at ``start``."""
    depth, i = 1, start
    while depth and i < len(source):
        depth += {"(": 1, ")": -1}.get(source[i], 0)
        i += 1
    return source[start:i]


def test_every_torch_load_in_the_tree_passes_weights_only_true():
    offenders, calls = [], 0
    for folder in SOURCE_DIRS:
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            source = path.read_text()
            for match in LOAD_CALL.finditer(source):
                if (
                    path.name == Path(__file__).name
                    and "re.compile" in source[max(0, match.start() - 40) : match.start()]
                ):
                    continue  # this file's own pattern
                calls += 1
                if not re.search(r"weights_only\s*=\s*True", _call_text(source, match.end())):
                    line = source.count("\n", 0, match.start()) + 1
                    offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{line}")
    assert calls > 0  # the scan does see the project's own (safe) loads
    assert offenders == []


def test_lightning_checkpoint_loading_in_train_uses_weights_only():
    source = (PROJECT_ROOT / "src" / "vaelab" / "train.py").read_text()
    for call in ("trainer.fit(", "trainer.test("):
        start = source.index(call) + len(call)
        assert "weights_only=True" in _call_text(source, start), call


def test_wandb_is_off_by_default_and_offline_when_chosen(make_config, tmp_path):
    default = make_config(data_dir=tmp_path)
    assert "wandb" not in default.logger
    chosen = make_config("logger=wandb", data_dir=tmp_path)
    assert chosen.logger.wandb.offline is True
    assert chosen.logger.wandb.save_dir == str(tmp_path / "run")


def test_docs_say_configs_are_code():
    text = (PROJECT_ROOT / "docs" / "reliability.md").read_text()
    assert "configs are code" in text.lower()
