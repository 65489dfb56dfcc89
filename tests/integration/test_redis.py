"""RedisStore against a real redis-server (tests/integration/conftest.py starts it): the
checks every store passes (tests/stores.py), Redis's own expiry, and one session shared by
two ``hive run`` instances, as by two hosts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hive.session import RedisStore
from tests.integration.conftest import RedisServer
from tests.integration.test_session import Client
from tests.stores import check_store_purge, check_store_semantics


def test_redis_store_semantics(redis_url: str) -> None:
    check_store_semantics(RedisStore.from_url(redis_url))


def test_redis_store_purge(redis_url: str) -> None:
    check_store_purge(RedisStore.from_url(redis_url))


def test_redis_expires_sessions_itself(redis_server: RedisServer, redis_url: str) -> None:
    store = RedisStore.from_url(redis_url, prefix="app:")
    assert store.save("short", '{"a": 1}', time.time() + 0.3, create=True)
    assert redis_server.client().exists("app:short") == 1  # the prefix is the key's
    record = store.get("short")
    assert record is not None and record.expires_at <= time.time() + 0.35
    deadline = time.monotonic() + 10
    while store.get("short") is not None:
        assert time.monotonic() < deadline, "Redis did not expire the session"
        time.sleep(0.05)
    assert redis_server.client().exists("app:short") == 0


def test_stores_with_other_prefixes_do_not_meet(redis_url: str) -> None:
    one, two = RedisStore.from_url(redis_url, "one:"), RedisStore.from_url(redis_url, "two:")
    assert one.save("uid", "{}", time.time() + 60, create=True)
    assert two.get("uid") is None
    assert two.save("uid", '{"b": 2}', time.time() + 60, create=True)
    record = one.get("uid")
    assert record is not None and record.data == "{}"


APP = """
import json
import os

from hive.resource import Resource
from hive.server import Site
from hive.session import RedisStore


class Count(Resource):
    isLeaf = True

    def render_GET(self, request):
        session = request.getSession()
        session["visits"] = session.get("visits", 0) + 1
        request.setHeader(b"content-type", b"application/json")
        answer = {"visits": session["visits"], "pid": os.getpid(), "uid": session.uid.decode()}
        return json.dumps(answer).encode()


root = Site(Count())
root.sessionStore = RedisStore.from_url(%r)
"""


def test_one_session_across_two_hive_instances(
    hive_run: Any, tmp_path: Path, redis_url: str
) -> None:
    (tmp_path / "redisapp.py").write_text(APP % redis_url)
    args = ("redisapp:root", "--app-dir", str(tmp_path), "--bind", "127.0.0.1:0")
    hosts = [hive_run(*args, "--workers", "2"), hive_run(*args, "--workers", "1")]
    client = Client(hosts[0].port)
    counts, pids = [], set()
    for n in range(6):
        client.port = hosts[n % 2].port
        answer = client.get()
        counts.append(answer["visits"])
        pids.add(answer["pid"])
    assert counts == [1, 2, 3, 4, 5, 6]
    assert len(pids) >= 2
