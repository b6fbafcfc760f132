"""Build hook: a wheel carries the project's top-level conf/ as vaelab/conf, where
vaelab.paths finds it when vaelab does not run from a checkout. Everything else about the
package is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONFIG_DIR = Path(__file__).resolve().parent / "conf"


class BuildPyWithConfigs(build_py):
    """setuptools' build_py, then a copy of conf/ into the built package."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:  # an editable install reads the checkout's conf/ itself
            target = Path(self.build_lib) / "vaelab" / "conf"
            shutil.copytree(CONFIG_DIR, target, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithConfigs})
