"""Twisted's Deferreds awaited through hive._deferred, against Twisted itself."""

from __future__ import annotations

import asyncio

import pytest
from twisted.internet import defer

from hive._deferred import DeferredFailed, is_deferred, to_future
from tests.unit.harness import run


def test_deferreds_are_told_from_other_values() -> None:
    assert is_deferred(defer.succeed(1))
    assert is_deferred(defer.Deferred())
    for other in (1, b"x", asyncio.sleep, object()):
        assert not is_deferred(other)


def test_fired_and_later_deferreds_become_futures() -> None:
    async def main() -> list[object]:
        later: defer.Deferred[int] = defer.Deferred()
        future = to_future(later)
        asyncio.get_running_loop().call_soon(later.callback, 7)
        return [await to_future(defer.succeed(41)), await future]

    assert run(main()) == [41, 7]


def test_a_failed_deferred_raises_its_exception() -> None:
    async def main() -> None:
        await to_future(defer.fail(ValueError("no")))

    with pytest.raises(ValueError, match="no"):
        run(main())


def test_a_failure_that_is_no_exception_still_fails_the_future() -> None:
    async def main() -> None:
        await to_future(defer.fail(12))  # type: ignore[arg-type]  # xmlrpcserver.py's defer_fail

    with pytest.raises(DeferredFailed, match="12"):
        run(main())


def test_cancelling_the_future_cancels_the_deferred() -> None:
    cancelled: list[object] = []

    async def main() -> None:
        later: defer.Deferred[int] = defer.Deferred(cancelled.append)
        later.addErrback(lambda failure: None)  # the CancelledError it gets
        to_future(later).cancel()
        await asyncio.sleep(0)

    run(main())
    assert len(cancelled) == 1
