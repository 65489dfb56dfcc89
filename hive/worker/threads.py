"""Threads for blocking application code (WSGI), and the way back to the event loop.

`ThreadPool` is a fixed number of daemon threads taking calls from one queue.  It makes
no Future per call, as ThreadPoolExecutor does: the caller hands its result back itself,
through a `LoopInbox`.  The inbox runs calls from other threads on the loop in batches:
whatever arrives before the loop gets to the last batch rides along with it, so a busy
loop is woken once for many results, not once for each.  Both count: a hand-off per
request is most of what a thread costs a small request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

__all__ = ["LoopInbox", "ThreadPool"]

log = logging.getLogger("hive.worker")

_Call = tuple[Callable[..., object], tuple[Any, ...]]


class ThreadPool:
    """``size`` daemon threads running calls in the order they were queued.

    The threads start at the first call, so a pool made before a fork has them in the
    child.  Daemon threads: a worker that exits does not wait for a stuck call.
    """

    def __init__(self, size: int, name: str = "hive-thread") -> None:
        if size < 1:
            raise ValueError(f"a thread pool needs at least one thread, got {size}")
        self.size = size
        self.name = name
        self._calls: SimpleQueue[_Call | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def call(self, function: Callable[..., object], *args: Any) -> None:
        """Run ``function(*args)`` in one of the threads; what it raises is logged."""
        if not self._threads:
            self._start()
        self._calls.put((function, args))

    def shutdown(self) -> None:
        """Let each thread finish the calls queued before this, then end."""
        with self._lock:
            for _ in self._threads:
                self._calls.put(None)
            self._threads = []

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._serve, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        calls = self._calls
        while (item := calls.get()) is not None:
            function, args = item
            try:
                function(*args)
            except BaseException:
                log.exception("uncaught error in %s", threading.current_thread().name)


class LoopInbox:
    """Calls from any thread, run on ``loop`` in batches."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._calls: deque[_Call] = deque()
        self._scheduled = False

    def put(self, function: Callable[..., object], *args: Any) -> None:
        """Run ``function(*args)`` on the loop soon; RuntimeError if the loop is closed."""
        self._calls.append((function, args))
        # A batch that is scheduled and not yet started will find this call.  The loop
        # clears the flag before taking calls, so a call that sees it clear is never
        # stranded; two threads scheduling at once only cost an empty batch.
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon_threadsafe(self._run)

    def _run(self) -> None:
        self._scheduled = False
        calls = self._calls
        while calls:
            function, args = calls.popleft()
            try:
                function(*args)
            except Exception:
                log.exception("error in a call handed back to the event loop")
