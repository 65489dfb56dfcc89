"""HTTP/1.1 client connections kept alive in a pool per worker, on h11.

What `hive.proxy.ReverseProxyResource` and `hive.xmlrpc.Proxy` share: a `Pool` of idle
keep-alive connections per origin (host, port, TLS context) in each process, and on each
`Connection` the exchange of one request for a response head (`Connection.exchange`),
then the body read as it comes (`Connection.read` through ``parser``) or whole with a
bound (`Connection.read_body`).

A connection goes back to the pool only after a complete response with nothing left
over; while idle, any event on it (bytes nobody asked for, the peer closing, an error)
or ``idle_timeout`` seconds close it and take it out.  The keep-alive race (the peer
closing an idle connection just as a request goes out) shows as `ClosedEarly`: no byte of
an answer came back, and the caller decides whether the request may be sent again.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import BinaryIO, Final

import h11

__all__ = ["CHUNK", "ClosedEarly", "Connection", "Pool", "pool_for"]

#: Bytes read from the peer, or from a request body, at a time.
CHUNK: Final = 64 * 1024


class ClosedEarly(ConnectionError):
    """The connection ended before any byte of a response: a reused connection the
    peer had just closed, or a peer that closes without answering."""


class _Protocol(asyncio.StreamReaderProtocol):
    """A stream protocol that reports anything happening while its connection is idle."""

    on_idle_event: Callable[[], None] | None = None
    #: Bytes received, to tell whether any wait unread in the stream.
    received = 0

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.on_idle_event is not None:
            self.on_idle_event()  # bytes nobody asked for: the connection is unusable
        super().data_received(data)

    def eof_received(self) -> bool | None:
        if self.on_idle_event is not None:
            self.on_idle_event()
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.on_idle_event is not None:
            self.on_idle_event()
        super().connection_lost(exc)


class Connection:
    """One client connection: asyncio streams and the h11 client state."""

    __slots__ = ("consumed", "expiry", "parser", "protocol", "reader", "writer")

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        protocol: _Protocol,
        max_head: int,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = protocol
        self.parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head)
        self.expiry: asyncio.TimerHandle | None = None
        self.consumed = 0

    async def read(self, timeout: float) -> bytes:
        """Up to CHUNK bytes; b"" at the end; TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            data = await self.reader.read(CHUNK)
        self.consumed += len(data)
        return data

    async def exchange(
        self, request: h11.Request, body: BinaryIO | bytes, timeout: float, max_head: int
    ) -> h11.Response:
        """Send ``request`` and its body (with a Content-Length among the request's
        headers); return the response head, 1xx responses skipped.

        ``timeout`` bounds each wait (a write draining, a read).  Raises `ClosedEarly`,
        TimeoutError, ConnectionError, or h11.RemoteProtocolError for a malformed answer
        or a head over ``max_head`` bytes.
        """
        parser = self.parser
        writer = self.writer
        writer.write(parser.send(request))
        try:
            if isinstance(body, bytes):
                if body:
                    writer.write(parser.send(h11.Data(data=body)))
            else:
                body.seek(0)  # from the start again on a retry
                while chunk := body.read(CHUNK):
                    writer.write(parser.send(h11.Data(data=chunk)))
                    async with asyncio.timeout(timeout):
                        await writer.drain()
            writer.write(parser.send(h11.EndOfMessage()))
            async with asyncio.timeout(timeout):
                await writer.drain()
        except ConnectionError:
            # The peer may have answered early (413) and closed: read what it said.
            pass
        received = 0
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await self.read(timeout)
                except ConnectionError as exc:
                    if received:
                        raise
                    raise ClosedEarly(f"connection lost before a response: {exc}") from None
                if not data and not received:
                    raise ClosedEarly("the server closed the connection without a response")
                received += len(data)
                parser.receive_data(data)
            elif type(event) is h11.Response:
                # h11 bounds only a head still incomplete; one that came whole is measured.
                size = sum(len(name) + len(value) + 4 for name, value in event.headers)
                if size > max_head:
                    raise h11.RemoteProtocolError(f"response head of {size} bytes")
                return event
            elif type(event) is not h11.InformationalResponse:
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")

    async def read_body(self, limit: int, timeout: float) -> bytes | None:
        """The whole response body, or None if it is longer than ``limit`` bytes.

        ``timeout`` bounds each read; raises TimeoutError, ConnectionError or
        h11.RemoteProtocolError (a body cut short or malformed).
        """
        parser = self.parser
        parts: list[bytes] = []
        size = 0
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                parser.receive_data(await self.read(timeout))
            elif type(event) is h11.Data:
                size += len(event.data)
                if size > limit:
                    return None
                parts.append(bytes(event.data))
            elif type(event) is h11.EndOfMessage:
                return b"".join(parts)
            else:
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")

    def reusable(self) -> bool:
        """Whether the exchange ended cleanly with nothing left over, so another may follow."""
        parser = self.parser
        return (
            parser.our_state is h11.DONE
            and parser.their_state is h11.DONE
            and parser.trailing_data == (b"", False)
            and self.protocol.received == self.consumed
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.transport.abort()


class Pool:
    """Idle keep-alive connections to one origin, most recently used first."""

    def __init__(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.loop = loop
        self.ssl_context = ssl_context
        self.idle: list[Connection] = []
        #: Connections opened, for tests and stats.
        self.opened = 0

    async def acquire(self, fresh: bool, timeout: float, max_head: int) -> tuple[Connection, bool]:
        """A connection and whether it was reused; ``fresh`` skips the idle ones.

        ``timeout`` bounds the TCP connect and the TLS handshake together.
        """
        if not fresh and self.idle:
            conn = self.idle.pop()
            self._take(conn)
            return conn, True
        loop = self.loop
        reader = asyncio.StreamReader(limit=CHUNK, loop=loop)
        protocol = _Protocol(reader, loop=loop)
        context = self.ssl_context
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(
                lambda: protocol,
                self.host,
                self.port,
                ssl=context,
                server_hostname=self.host if context is not None else None,
            )
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        self.opened += 1
        return Connection(reader, writer, protocol, max_head), False

    def release(self, conn: Connection, size: int, timeout: float) -> None:
        """Keep a connection that has just completed a response for the next request."""
        if size <= 0 or conn.writer.is_closing():
            conn.close()
            return
        while len(self.idle) >= size:
            oldest = self.idle.pop(0)
            self._take(oldest)
            oldest.close()
        conn.protocol.on_idle_event = lambda: self._discard(conn)
        conn.expiry = self.loop.call_later(timeout, self._discard, conn)
        self.idle.append(conn)

    def close(self) -> None:
        """Close every idle connection (a test's loop ending, say)."""
        for conn in list(self.idle):
            self._discard(conn)

    def _take(self, conn: Connection) -> None:
        conn.protocol.on_idle_event = None
        if conn.expiry is not None:
            conn.expiry.cancel()
            conn.expiry = None

    def _discard(self, conn: Connection) -> None:
        """An idle connection timed out, was closed by the peer, or got stray bytes."""
        if conn in self.idle:
            self.idle.remove(conn)
        self._take(conn)
        conn.abort()


#: One pool per origin in this process (each worker has its own).
_pools: dict[tuple[str, int, ssl.SSLContext | None], Pool] = {}


def pool_for(host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> Pool:
    """This process's pool for ``host:port`` (over TLS with ``ssl_context``)."""
    loop = asyncio.get_running_loop()
    key = (host, port, ssl_context)
    pool = _pools.get(key)
    if pool is None or pool.loop is not loop:
        # A new event loop (a test's): the old loop's connections died with it.
        pool = _pools[key] = Pool(host, port, loop, ssl_context)
    return pool
