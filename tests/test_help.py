"""``vaelab-train --help`` and ``vaelab-eval --help``: what vaelab does, its groups, examples."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from vaelab.paths import CONFIG_DIR, PROJECT_ROOT


def _help(module: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def train_help() -> str:
    return _help("vaelab.train")


def test_train_help_lists_every_group_with_its_options(train_help):
    groups = sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and p.name != "hydra")
    for group in groups:
        options = sorted(f.stem for f in (CONFIG_DIR / group).glob("*.yaml"))
        line = re.search(rf"^{group}: (.+)$", train_help, flags=re.MULTILINE)
        assert line is not None, f"group {group} missing from --help"
        assert line.group(1).split(", ") == options


def test_train_help_explains_and_gives_examples(train_help):
    assert train_help.startswith("vaelab-train: train a variational autoencoder")
    assert "powered by Hydra" not in train_help
    examples = re.findall(r"^  vaelab-train\b", train_help, flags=re.MULTILINE)
    assert len(examples) == 5
    assert "$VAELAB_DATA_DIR" in train_help


def test_eval_help_shows_examples_and_options():
    text = _help("vaelab.eval")
    assert text.startswith("vaelab-eval: evaluate a trained vaelab run")
    assert len(re.findall(r"^  vaelab-eval ckpt_path=", text, flags=re.MULTILINE)) == 7
    assert "num_samples: 5000" in text
    assert "$VAELAB_DATA_DIR" in text
