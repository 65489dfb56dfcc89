"""The table ``hive status`` prints."""

from __future__ import annotations

import pytest

from hive.cli import status
from hive.cli.status import format_hives, format_status


def test_format_status() -> None:
    now = 1_700_000_000.0
    data = {
        "pid": 4242,
        "generation": 3,
        "now": now,
        "workers": [
            {
                "slot": 1,
                "pid": 4301,
                "generation": 3,
                "state": "ready",
                "requests": 1523,
                "rss": 24_536_678,
                "cpu_seconds": 12.34,
                "started_at": now - 3725,
            },
            {
                "slot": 0,
                "pid": 4300,
                "generation": 3,
                "state": "ready",
                "requests": 20,
                "rss": 1536,
                "cpu_seconds": 0.04,
                "started_at": now - 45.5,
            },
            {
                "slot": 0,
                "pid": 4250,
                "generation": 2,
                "state": "stopping",
                "requests": 100000,
                "rss": 512,
                "cpu_seconds": 3600.0,
                "started_at": now - 273_600,
            },
        ],
    }
    assert format_status(data) == (
        "hive supervisor pid 4242, generation 3\n"
        "SLOT   PID  GEN  STATE     REQUESTS  MEMORY     CPU  UPTIME\n"
        "   0  4250    2  stopping    100000    512B  3600.0   3d04h\n"
        "   0  4300    3  ready           20    1.5K     0.0     45s\n"
        "   1  4301    3  ready         1523   23.4M    12.3   1h02m"
    )


def test_format_status_names_the_build() -> None:
    data = {"pid": 7, "generation": 1, "workers": [], "build": "mypyc"}
    assert format_status(data).splitlines()[0] == "hive supervisor pid 7, generation 1, mypyc build"


def test_format_status_without_workers_or_values() -> None:
    assert format_status({"generation": 1, "workers": [{"slot": 0, "state": "starting"}]}) == (
        "hive supervisor pid -, generation 1\n"
        "SLOT  PID  GEN  STATE     REQUESTS  MEMORY  CPU  UPTIME\n"
        "   0    -    -  starting         -       -    -       -"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-3, "0s"),
        (0, "0s"),
        (59.9, "59s"),
        (60, "1m00s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (86399, "23h59m"),
        (86400, "1d00h"),
    ],
)
def test_uptime(seconds: float, text: str) -> None:
    assert status._duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (1023, "1023B"),
        (1024, "1.0K"),
        (1024 * 1024 - 1, "1.0M"),
        (5 * 1024**3, "5.0G"),
        (3 * 1024**5, "3072.0T"),
    ],
)
def test_memory(size: int, text: str) -> None:
    assert status._bytes(size) == text


def test_the_hive_list_has_a_line_per_hive() -> None:
    hives: list[dict[str, object]] = [
        {
            "name": "127.0.0.1:8080",
            "pid": 4100,
            "target": 2,
            "generation": 3,
            "now": 1000.0,
            "started_at": 693.0,
            "app": "examples.site:root",
            "urls": ["http://127.0.0.1:8080", "unix:/run/a.sock"],
            "workers": [{"state": "ready"}, {"state": "starting"}],
        },
        {"name": "blog", "error": "hive did not answer within 3 s"},
    ]
    assert format_hives(hives).splitlines() == [
        "NAME             PID  WORKERS  GEN  UPTIME  APP                               LISTENING",
        "127.0.0.1:8080  4100      1/2    3   5m07s  examples.site:root                "
        "http://127.0.0.1:8080 unix:/run/a.sock",
        "blog               -        -    -       -  (hive did not answer within 3 s)  -",
    ]
