"""The clock behind Date headers and access log times."""

from __future__ import annotations

from hive._clock import Clock
from hive.resource import Resource
from hive.server import Site
from tests.unit.harness import Harness

IMF_SECONDS = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example)


class Ticking:
    def __init__(self, now: float) -> None:
        self.value = now

    def __call__(self) -> float:
        return self.value


def test_http_date_is_made_once_a_second() -> None:
    now = Ticking(IMF_SECONDS + 0.1)
    clock = Clock(now)
    first = clock.http_date()
    assert first == b"Sun, 06 Nov 1994 08:49:37 GMT"
    now.value = IMF_SECONDS + 0.9
    assert clock.http_date() is first
    now.value = IMF_SECONDS + 1
    assert clock.http_date() == b"Sun, 06 Nov 1994 08:49:38 GMT"


def test_log_stamp() -> None:
    clock = Clock()
    assert clock.log_stamp(971166936.5) == "10/Oct/2000:08:35:36 +0000"
    assert clock.log_stamp(971166936.9) is clock.log_stamp(971166936.1)
    assert clock.log_stamp(0) == "01/Jan/1970:00:00:00 +0000"


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request: object) -> bytes:
        return b"hi"


def test_site_dates_responses_with_its_clock() -> None:
    now = Ticking(IMF_SECONDS)
    harness = Harness(Site(Hello(), clock=Clock(now)))
    assert harness.get("/").header("date") == "Sun, 06 Nov 1994 08:49:37 GMT"
    now.value += 60
    assert harness.get("/").header("date") == "Sun, 06 Nov 1994 08:50:37 GMT"
