"""The promise of tests/unit, kept by the tests themselves: no network, no sleeping, no forks.

Unit tests pass events and an explicit ``now``; what needs real time, a TCP socket or a
process belongs in tests/integration.  Unix sockets (the control socket's tests) and the
event loop's own self-pipe are in-process and allowed.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

_NETWORK = (socket.AF_INET, socket.AF_INET6)


class BrokenPromise(AssertionError):
    """A unit test did what tests/unit promises not to do."""


@pytest.fixture(autouse=True)
def keep_the_unit_promise(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if seconds > 0:
            raise BrokenPromise(f"time.sleep({seconds}) in a unit test: pass `now` instead")
        real_sleep(0)

    def fork() -> int:
        raise BrokenPromise("os.fork in a unit test: move it to tests/integration")

    def guarded(method: Any) -> Any:
        def call(self: socket.socket, *args: Any) -> Any:
            if self.family in _NETWORK:
                raise BrokenPromise(f"a network socket in a unit test ({method.__name__})")
            return method(self, *args)

        return call

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(os, "fork", fork)
    for name in ("bind", "connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, guarded(getattr(socket.socket, name)))
    yield
