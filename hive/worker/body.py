"""A request body read while it arrives: ``request.content`` of a streaming resource.

A resource that sets ``streamsRequestBody`` (WSGIResource and ASGIResource do) is rendered
as soon as a request head with a Content-Length is in, and reads the body from a
`RequestBody` while the client is still sending it.  The connection feeds it on the event
loop (`feed`, `end`, `fail`); the application reads it from a thread with the blocking
file methods (``read``, ``readline``, iteration: ``wsgi.input``) or on the loop with
``await body.aread()``, ``await body.aread1()`` (what has arrived: ASGI's ``receive``) or
``async for chunk in body.chunks()``.

Flow control: once `HIGH_WATER` bytes wait unread, the connection stops reading the
socket, and starts again when the reader has taken the buffer down to `LOW_WATER`.  The
first read sends ``100 Continue`` to a client that waits for it, so a body the
application never reads is never asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Final, Protocol

__all__ = ["HIGH_WATER", "LOW_WATER", "BodyChannel", "BodyError", "RequestBody"]

#: Unread bytes past which the connection stops reading the socket.
HIGH_WATER: Final = 256 * 1024
#: Unread bytes at or under which it reads again.
LOW_WATER: Final = 64 * 1024
#: A blocked reader wakes this often to notice an event loop that closed under it.
_POLL: Final = 1.0


class BodyError(ConnectionError):
    """The body cannot be read to its end: the client went away or stopped sending."""


class BodyChannel(Protocol):
    """What the body asks of its connection, always on the event loop."""

    def pause_body(self) -> None: ...
    def resume_body(self) -> None: ...
    def continue_body(self) -> None: ...


class RequestBody:
    """The bytes of one request body, as they arrive; a read-only binary file."""

    def __init__(self, channel: BodyChannel, length: int, loop: asyncio.AbstractEventLoop):
        #: The body's declared length (its Content-Length).
        self.length = length
        self._channel = channel
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._cond = threading.Condition(threading.Lock())
        self._buf = bytearray()
        self._ended = False
        self._error: BaseException | None = None
        self._closed = False
        self._paused = False
        self._asked = False
        self._waiter: asyncio.Future[None] | None = None
        #: Bytes handed to the reader so far.
        self.consumed = 0

    # -- from the connection, on the loop --------------------------------------------------

    def feed(self, data: bytes) -> None:
        """More of the body arrived."""
        with self._cond:
            if self._closed:
                return
            self._buf += data
            self._cond.notify_all()
            pause = not self._paused and len(self._buf) > HIGH_WATER
            if pause:
                self._paused = True
        self._wake_loop_reader()
        if pause:
            self._channel.pause_body()

    def end(self) -> None:
        """The whole body arrived."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()
        self._wake_loop_reader()

    def fail(self, error: BaseException) -> None:
        """The body will not be complete: reads past what arrived raise ``error``."""
        with self._cond:
            if self._ended:
                return
            self._error = error
            self._cond.notify_all()
        self._wake_loop_reader()

    @property
    def complete(self) -> bool:
        return self._ended

    @property
    def error(self) -> BaseException | None:
        """What reads past the end of what arrived raise (the client went away), or None."""
        return self._error

    # -- the file interface, from any thread -----------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """The reader wants no more: what arrives later is dropped."""
        with self._cond:
            self._closed = True
            self._buf.clear()
            self._cond.notify_all()

    def read(self, size: int | None = -1) -> bytes:
        """``size`` bytes (fewer only at the end of the body); all the rest if negative."""
        if size is None or size < 0:
            return self._take(lambda buf, done: len(buf) if done else None)
        want = size

        def amount(buf: bytearray, done: bool) -> int | None:
            return want if len(buf) >= want else len(buf) if done else None

        return self._take(amount)

    def read1(self, size: int = -1) -> bytes:
        """What has arrived (at least a byte, unless the body is over), up to ``size``."""
        return self._take(lambda buf, done: _up_to(buf, size) if buf or done else None)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        """One line, its b"\\n" included; at most ``size`` bytes if that is not negative."""
        limit = -1 if size is None else size

        def line_end(buf: bytearray, done: bool) -> int | None:
            end = buf.find(b"\n", 0, limit if limit >= 0 else len(buf)) + 1
            if end:
                return end
            if 0 <= limit <= len(buf):
                return limit
            return len(buf) if done else None

        return self._take(line_end)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    # -- on the event loop ------------------------------------------------------------------

    async def aread(self, size: int = -1) -> bytes:
        """``read`` for code on the event loop: waits for the bytes without blocking it."""
        while True:
            with self._cond:
                self._check_open()
                have = len(self._buf)
                if self._ended or 0 <= size <= have:
                    return self._cut(have if size < 0 or have < size else size)
                if self._error is not None:
                    raise self._error
                waiter = self._waiter = self._loop.create_future()
            self._ask()
            await waiter

    async def aread1(self, size: int = -1) -> bytes:
        """``read1`` for code on the event loop: what has arrived (at least a byte, unless
        the body is over: then b""), up to ``size``; waits without blocking the loop."""
        while True:
            with self._cond:
                self._check_open()
                if self._buf or self._ended:
                    return self._cut(_up_to(self._buf, size))
                if self._error is not None:
                    raise self._error
                waiter = self._waiter = self._loop.create_future()
            self._ask()
            await waiter

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body piece by piece as it arrives (``async for chunk in body.chunks()``)."""
        while True:
            with self._cond:
                self._check_open()
                if self._buf:
                    data = self._cut(len(self._buf))
                elif self._ended:
                    return
                elif self._error is not None:
                    raise self._error
                else:
                    data = b""
                    waiter = self._waiter = self._loop.create_future()
            if data:
                yield data
                continue
            self._ask()
            await waiter

    # -- internals ---------------------------------------------------------------------------

    def _take(self, amount: Callable[[bytearray, bool], int | None]) -> bytes:
        """Wait until ``amount(buffer, done)`` says how much to take, and take it."""
        on_loop = threading.get_ident() == self._loop_thread
        with self._cond:
            while True:
                self._check_open()
                count = amount(self._buf, self._ended)
                if count is not None:
                    return self._cut(count)
                if self._error is not None:
                    raise self._error
                if on_loop:
                    raise RuntimeError(
                        "the request body is still arriving: read it with"
                        " `await request.content.aread()` on the event loop, or from a thread"
                    )
                if not self._asked:
                    self._ask_soon()
                if not self._cond.wait(_POLL) and self._loop.is_closed():
                    raise BodyError("the worker stopped")

    def _cut(self, count: int) -> bytes:
        """Take ``count`` bytes; the lock is held."""
        buf = self._buf
        data = bytes(buf[:count])
        del buf[:count]
        self.consumed += count
        if self._paused and len(buf) <= LOW_WATER:
            self._paused = False
            self._call_on_loop(self._channel.resume_body)
        return data

    def _check_open(self) -> None:
        if self._closed:
            # Closed because the exchange ended early (the client left): say why.
            if self._error is not None:
                raise self._error
            raise ValueError("I/O operation on a closed request body")

    def _ask(self) -> None:
        """On the loop: a reader waits, so a client waiting for 100 Continue may send."""
        if not self._asked:
            self._asked = True
            self._channel.continue_body()

    def _ask_soon(self) -> None:
        self._asked = True
        self._call_on_loop(self._channel.continue_body)

    def _call_on_loop(self, function: Callable[[], None]) -> None:
        if threading.get_ident() == self._loop_thread:
            function()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed: the worker stopped
                self._loop.call_soon_threadsafe(function)

    def _wake_loop_reader(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _up_to(buf: bytearray, size: int) -> int:
    return len(buf) if size < 0 else min(size, len(buf))
