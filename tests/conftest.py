"""Test-wide settings."""

import os

from hypothesis import settings

# CI runs the same examples every time (a red CI must mean a change broke something);
# local runs explore new ones.  HYPOTHESIS_PROFILE=explore to explore under CI too.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "explore")
)
