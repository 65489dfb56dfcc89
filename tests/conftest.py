"""Test-wide settings."""

import os

import pytest
from hypothesis import settings

from hive.engine import ENGINES

# CI runs the same examples every time (a red CI must mean a change broke something);
# local runs explore new ones.  HYPOTHESIS_PROFILE=explore to explore under CI too.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "explore")
)


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The name of each HTTP engine in turn: what runs against one runs against every one."""
    return str(request.param)
