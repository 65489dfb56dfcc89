"""hive._config.Config: the bus's setting (the others are checked where they are used)."""

from __future__ import annotations

import pytest

from hive._config import Config, ConfigError


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://cache.example:6380/2", "unix:///run/r.sock?db=1"]
)
def test_pubsub_takes_a_redis_url(url: str) -> None:
    assert Config(app="a:b", pubsub=url).pubsub == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "127.0.0.1:6379", "", "redis:/x"])
def test_pubsub_refuses_anything_else(url: str) -> None:
    with pytest.raises(ConfigError, match="pubsub: a Redis URL"):
        Config(app="a:b", pubsub=url)


def test_no_pubsub_means_the_supervisor() -> None:
    assert Config(app="a:b").pubsub is None
