"""The build backend: setuptools, needing more to build when HIVE_COMPILE=1 (setup.py).

A compiled build runs mypyc, which type-checks the modules it compiles: it needs mypy, the
mypy-zope plugin the configuration names, and hive's own dependencies.
"""

import os
import tomllib

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403


def _compiling() -> list[str]:
    if os.environ.get("HIVE_COMPILE") != "1":
        return []
    with open("pyproject.toml", "rb") as file:
        project = tomllib.load(file)["project"]
    return ["mypy>=1.8", "mypy-zope>=1.0", *project["dependencies"]]


def get_requires_for_build_wheel(config_settings=None):  # type: ignore[no-untyped-def]
    return _setuptools.get_requires_for_build_wheel(config_settings) + _compiling()


def get_requires_for_build_editable(config_settings=None):  # type: ignore[no-untyped-def]
    return _setuptools.get_requires_for_build_editable(config_settings) + _compiling()
