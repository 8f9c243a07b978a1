"""The wheel ships what the commands need besides the code: the dbt project and the example
profile, copied from the repository root into the package (exigo_sync/_data/) when the wheel is
built, found there by exigo_sync.paths. The repository keeps one copy of each (`dbt_project/`,
`profiles.example.yml` at the root); an editable install uses them in place."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# What dbt writes into a project folder when run there: never shipped.
NOT_SHIPPED = ("target", "logs", "dbt_packages", "__pycache__", "*.pyc", ".user.yml")


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads dbt_project/ and the profile in the checkout
        data = Path(self.build_lib) / "exigo_sync" / "_data"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        shutil.copytree(
            ROOT / "dbt_project", data / "dbt_project", ignore=shutil.ignore_patterns(*NOT_SHIPPED)
        )
        shutil.copyfile(ROOT / "profiles.example.yml", data / "profiles.example.yml")


setup(cmdclass={"build_py": BuildPyWithData})
