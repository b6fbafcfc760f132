"""A wheel of vaelab (a non-editable ``pip install .``) carries conf/ and trains from any
directory: built from a copy of the project, installed into a fresh venv that sees this
environment's dependencies, run from an unrelated working directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from vaelab.paths import PROJECT_ROOT

#: what a build needs from the project (tests, scripts, docs and logs stay behind)
BUILD_INPUTS = ["src", "conf", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md"]
#: variables that would point the installed vaelab back at this checkout
CHECKOUT_VARIABLES = ("PYTHONPATH", "VAELAB_ROOT")


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-3000:])
    return done


@pytest.mark.slow
def test_installed_wheel_carries_conf_and_trains_from_another_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in CHECKOUT_VARIABLES}
    source = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in BUILD_INPUTS:
        origin = PROJECT_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=ignore)
        else:
            shutil.copy2(origin, source / name)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), "."], source, env)
    (wheel,) = wheels.glob("vaelab-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packed = {name for name in archive.namelist() if name.startswith("vaelab/conf/")}
    configs = {
        f"vaelab/conf/{path.relative_to(PROJECT_ROOT / 'conf').as_posix()}"
        for path in (PROJECT_ROOT / "conf").rglob("*")
        if path.is_file()
    }
    assert configs
    assert packed == configs

    # a fresh venv whose only extra path is this environment's site-packages (its .pth files,
    # such as the editable install's finder, are not run from there), so nothing downloads
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(environment)
    python = environment / "bin" / "python"
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        tmp_path,
        env,
    ).stdout.strip()
    (Path(purelib) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        tmp_path,
        env,
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(
        [str(python), "-c", "import vaelab.paths as p; print(p.CONFIG_DIR)"], elsewhere, env
    )
    assert Path(where.stdout.strip()) == Path(purelib) / "vaelab" / "conf"
    _run(
        [str(environment / "bin" / "vaelab-train"), "trainer.fast_dev_run=true", "data=digits"],
        elsewhere,
        {**env, "OMP_NUM_THREADS": "1"},
    )
    (run_dir,) = (elsewhere / "logs" / "train" / "runs").iterdir()
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / "metrics.json").is_file()
