"""The worker's thread pool and the inbox that carries results back to the event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from hive.worker.threads import LoopInbox, ThreadPool
from tests.unit.harness import run


def test_pool_runs_calls_in_its_threads() -> None:
    pool = ThreadPool(3, "test-pool")
    done = threading.Event()
    seen: list[tuple[int, str]] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        with lock:
            seen.append((n, threading.current_thread().name))
            if len(seen) == 20:
                done.set()

    for n in range(20):
        pool.call(work, n)
    assert done.wait(10)
    pool.shutdown()
    assert sorted(n for n, _ in seen) == list(range(20))
    assert all(name.startswith("test-pool-") for _, name in seen)


def test_pool_logs_what_a_call_raises_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    pool = ThreadPool(1)
    done = threading.Event()

    def boom() -> None:
        raise ValueError("in a thread")

    with caplog.at_level(logging.ERROR, "hive.worker"):
        pool.call(boom)
        pool.call(done.set)
        assert done.wait(10)
    pool.shutdown()
    assert "ValueError: in a thread" in caplog.text


def test_pool_needs_a_thread() -> None:
    with pytest.raises(ValueError):
        ThreadPool(0)


def test_inbox_runs_calls_on_the_loop_in_batches() -> None:
    async def scenario() -> tuple[list[int], int, set[int]]:
        loop = asyncio.get_running_loop()
        inbox = LoopInbox(loop)
        wakeups = 0
        real = loop.call_soon_threadsafe

        def counting(callback: Any, *args: Any) -> Any:
            nonlocal wakeups
            wakeups += 1
            return real(callback, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]
        got: list[int] = []
        threads: set[int] = set()

        def record(n: int) -> None:
            got.append(n)
            threads.add(threading.get_ident())

        def producer() -> None:
            for n in range(50):
                inbox.put(record, n)

        thread = threading.Thread(target=producer)
        thread.start()
        thread.join()
        while len(got) < 50:
            await asyncio.sleep(0.001)
        return got, wakeups, threads

    got, wakeups, threads = run(scenario())
    assert got == list(range(50))
    assert wakeups == 1  # the loop did not run meanwhile: one batch for all
    assert threads == {threading.get_ident()}


def test_inbox_keeps_going_after_a_failing_call(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> list[str]:
        inbox = LoopInbox(asyncio.get_running_loop())
        got: list[str] = []

        def boom() -> None:
            raise RuntimeError("on the loop")

        inbox.put(boom)
        inbox.put(got.append, "after")
        while not got:
            await asyncio.sleep(0.001)
        return got

    with caplog.at_level(logging.ERROR, "hive.worker"):
        assert run(scenario()) == ["after"]
    assert "RuntimeError: on the loop" in caplog.text
