"""The asyncio driver: sockets in, `Connection` objects fed, deadlines swept.

`Server` serves a Site on listening sockets inside a running event loop; it is also the
way to run hive inside an existing asyncio program::

    server = Server(site, config)
    await server.start(sockets)
    ...
    await server.shutdown(timeout=30)
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import sys
from typing import Any

from hive._config import Config
from hive.address import address_from_sockaddr
from hive.engine import EngineFactory, HeadLimits, get_engine
from hive.worker.connection import Connection, ConnectionLimits, Driven, RequestHandler

__all__ = ["Server"]

log = logging.getLogger("hive.worker")

# Python 3.13 unlinks a unix socket's path when its server closes; the path is not ours.
_KEEP_PATH: dict[str, Any] = {"cleanup_socket": False} if sys.version_info >= (3, 13) else {}

#: Deadlines are checked this often; a deadline is thus kept to within this many seconds.
SWEEP_INTERVAL = 1.0


class _HTTPProtocol(asyncio.Protocol):
    """Forwards the transport's calls to a sans-IO Connection, with the loop's time."""

    __slots__ = ("connection", "family", "server", "time")

    connection: Driven

    def __init__(self, server: Server, family: int) -> None:
        self.server = server
        self.family = family
        self.time = server.loop.time

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self.server
        family = self.family
        peer = address_from_sockaddr(family, transport.get_extra_info("peername"))
        # Few local addresses: each is made once.
        sockname = transport.get_extra_info("sockname")
        host = server.hosts.get(sockname)
        if host is None:
            host = server.hosts[sockname] = address_from_sockaddr(family, sockname)
        self.connection = Connection(
            server.engine(server.head_limits),
            server.handler,
            transport,  # type: ignore[arg-type]
            server.limits,
            self.time(),
            clock=self.time,
            peer=peer,
            host=host,
            secure=server.secure,
            on_switch=self._switched,
        )
        server.connections.add(self.connection)
        server.accepted += 1
        if server.draining:
            self.connection.drain(self.time())

    def _switched(self, switched: Driven) -> None:
        """The connection switched protocols (a WebSocket): feed the new object from now."""
        server = self.server
        server.connections.discard(self.connection)
        self.connection = switched
        server.connections.add(switched)
        if server.draining:
            switched.drain(self.time())

    def data_received(self, data: bytes) -> None:
        self.connection.data_received(data, self.time())

    def eof_received(self) -> bool:
        connection = self.connection
        now = self.time()
        keep = connection.eof_received(now)
        if keep and connection.deadline < now + SWEEP_INTERVAL:
            # An answer due within the second (HALF_CLOSE_GRACE): the sweep would be late.
            self.server.loop.call_at(connection.deadline, self._check_deadlines)
        return keep

    def _check_deadlines(self) -> None:
        self.connection.check_deadlines(self.time())

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self.connection)
        self.connection.connection_lost(exc)

    def pause_writing(self) -> None:
        self.connection.pause_writing(self.time())

    def resume_writing(self) -> None:
        self.connection.resume_writing()


class Server:
    """Serves one request handler (a Site) on listening sockets, in the running loop."""

    def __init__(
        self,
        handler: RequestHandler,
        config: Config,
        *,
        on_sweep: Any = None,
    ) -> None:
        self.handler = handler
        self.loop = asyncio.get_running_loop()
        self.engine: EngineFactory = get_engine(config.http)
        self.head_limits: HeadLimits = config.head
        self.limits: ConnectionLimits = config.connection
        self.backlog = config.backlog
        self.connections: set[Driven] = set()
        #: The address objects of the local addresses connections came to.
        self.hosts: dict[Any, Any] = {}
        #: Connections accepted since the server started.
        self.accepted = 0
        self.draining = False
        self.secure = False
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._on_sweep = on_sweep

    async def start(self, sockets: list[socket.socket], tls: ssl.SSLContext | None = None) -> None:
        """Accept connections on ``sockets`` (bound and listening), over TLS if ``tls``.

        The loop gets a duplicate of each socket, so stopping here never closes the
        listening socket itself: its owner (the supervisor) keeps the accept queue open.
        """
        for sock in sockets:
            if sock.family == socket.AF_UNIX:
                server = await self.loop.create_unix_server(
                    lambda: _HTTPProtocol(self, socket.AF_UNIX),
                    sock=sock.dup(),
                    backlog=self.backlog,
                    ssl=tls,
                    **_KEEP_PATH,
                )
            else:
                family = sock.family
                server = await self.loop.create_server(
                    lambda family=family: _HTTPProtocol(self, family),
                    sock=sock.dup(),
                    backlog=self.backlog,
                    ssl=tls,
                )
            self._servers.append(server)
        self.secure = tls is not None
        self._sweeper = self.loop.call_later(SWEEP_INTERVAL, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in list(self.connections):
            connection.check_deadlines(now)
        if self._on_sweep is not None:
            self._on_sweep()
        self._sweeper = self.loop.call_later(SWEEP_INTERVAL, self._sweep)

    def stop_accepting(self) -> None:
        """Stop taking new connections; the listening sockets stay open for others."""
        for server in self._servers:
            server.close()
        self._servers.clear()

    def abort_all(self) -> None:
        """Close every connection at once, whatever it is doing."""
        for connection in list(self.connections):
            connection.transport.abort()

    async def shutdown(self, timeout: float) -> None:
        """Stop accepting, let requests in flight finish (up to ``timeout``), close the rest."""
        self.draining = True
        self.stop_accepting()
        now = self.loop.time()
        for connection in list(self.connections):
            connection.drain(now)
        deadline = self.loop.time() + timeout
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        self.abort_all()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._on_sweep is not None:
            self._on_sweep()
