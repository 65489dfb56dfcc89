"""What every session store must do, checked against each: SQLite and memory in
tests/unit/test_session.py, Redis (a real server) in tests/integration/test_redis.py."""

from __future__ import annotations

import math
import time

from hive.session import RedisStore, SessionStore


def check_store_semantics(store: SessionStore) -> None:
    now = time.time()
    assert store.get("a") is None
    assert store.save("a", '{"n":1}', now + 100, create=True)
    assert not store.save("a", '{"n":9}', now + 100, create=True)  # no overwrite on create
    record = store.get("a")
    assert record is not None and record.data == '{"n":1}'
    assert math.isclose(record.expires_at, now + 100, abs_tol=0.05)
    assert store.save("a", '{"n":2}', now + 200)
    assert not store.save("b", "{}", now + 200)  # an update never creates: no resurrection
    assert store.get("b") is None
    assert store.touch("a", now + 300)
    assert not store.touch("b", now + 300)
    record = store.get("a")
    assert record is not None and record.data == '{"n":2}'
    assert math.isclose(record.expires_at, now + 300, abs_tol=0.05)
    store.delete("a")
    store.delete("a")  # deleting what is gone is fine
    assert store.get("a") is None


def check_store_purge(store: SessionStore) -> None:
    now = time.time()
    store.save("old", "{}", now - 1, create=True)
    store.save("new", "{}", now + 100, create=True)
    purged = store.purge_expired(now)
    assert purged == (0 if isinstance(store, RedisStore) else 1)  # Redis expires keys itself
    assert store.get("old") is None
    assert store.get("new") is not None
