"""The chaos scenario, short and bounded, in CI: nothing is lost to reloads, scaling and
recycling under load, and a SIGKILL loses at most the requests in flight on its worker.

The full scenario is ``python -m loadtests.chaos``; this runs the same code for less time.
"""

from __future__ import annotations

import shutil

import pytest

from loadtests.chaos import Phase, run_phase, wait_ready
from loadtests.common import running_hive

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


def test_chaos_loses_nothing_to_reloads_scaling_and_recycling() -> None:
    options = ["--workers", "2", "--max-requests", "20000", "--max-requests-jitter", "2000"]
    with running_hive(*options) as hive:
        wait_ready(hive, 2)
        calm = run_phase(hive, Phase("calm"), seconds=10, connections=8, kills=0, reloads=2)
        killing = run_phase(hive, Phase("kills"), seconds=8, connections=8, kills=2, reloads=0)
    assert calm.requests > 1000, calm
    assert calm.failures == 0, calm
    assert sum("reloaded" in event for event in calm.events) == 2, calm.events
    assert killing.failures <= killing.at_risk, killing
