"""hive inside a program that has its own asyncio loop: Twisted's ``reactor.listenTCP``.

::

    port = await hive.listen(Site(root), "127.0.0.1:8080")
    print(port.getHost())          # IPv4Address(type='TCP', host='127.0.0.1', port=8080)
    ...
    await port.stopListening()     # requests in flight finish; WebSockets get 1001

One process, the caller's loop (asyncio or uvloop), the worker's own driver
(hive.worker.serve.Server) without a supervisor: no forking, no signal handlers, no
``sys.exit``, no logging set up (hive logs to its loggers, ``hive.*``; the program
decides where that goes). Sessions are kept in the process (a MemoryStore) unless the
Site has a store of its own. What ``hive run`` adds (workers on every core, ``hive
reload``, the ops endpoint, the access log) is for programs whose job is serving HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import ssl as _ssl
from dataclasses import replace

from hive._config import Config
from hive.address import IPv4Address, IPv6Address, UNIXAddress, address_from_sockaddr
from hive.iweb import IResource
from hive.server import Site
from hive.supervisor.listeners import bind_socket, close_listener, parse_bind
from hive.worker.serve import Server

__all__ = ["ListeningPort", "listen"]


class ListeningPort:
    """A listening address serving a Site (Twisted's IListeningPort)."""

    def __init__(self, server: Server, sock: socket.socket, graceful_timeout: float) -> None:
        self._server = server
        self._socket = sock
        self._host = address_from_sockaddr(sock.family, sock.getsockname())
        self._timeout = graceful_timeout
        self._stopping: asyncio.Task[None] | None = None

    def getHost(self) -> IPv4Address | IPv6Address | UNIXAddress:
        """The local address: IPv4Address / IPv6Address (with the real port after port 0)
        or UNIXAddress."""
        return self._host

    @property
    def connections(self) -> int:
        """Connections open now (HTTP and WebSocket)."""
        return len(self._server.connections)

    async def stopListening(self, timeout: float | None = None) -> None:
        """Stop accepting at once, let requests in flight finish (WebSockets are closed
        with 1001 after the WebSocket grace), and after ``timeout`` seconds (the
        ``graceful_timeout`` of `listen`) cut what is left. A unix socket's file is removed.
        """
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(timeout))
        await asyncio.shield(self._stopping)

    async def _stop(self, timeout: float | None) -> None:
        self._server.stop_accepting()
        close_listener(self._socket)
        await self._server.shutdown(self._timeout if timeout is None else timeout)


async def listen(
    site: Site | IResource,
    address: str = "127.0.0.1:8080",
    *,
    ssl: _ssl.SSLContext | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
    config: Config | None = None,
    graceful_timeout: float = 30.0,
    websocket_grace: float | None = None,
) -> ListeningPort:
    """Serve ``site`` (a Site, or a resource to make one of) on ``address`` in the running loop.

    ``address`` is ``hive run``'s syntax: ``127.0.0.1:8080``, ``[::1]:8080``, ``:8080``
    (every IPv4 interface), ``unix:/run/app.sock``; port 0 picks a free port. TLS with an
    ``ssl`` context, or with ``certfile`` and ``keyfile`` (PEM). ``config`` gives
    hive.run's limits (engine, timeouts, sizes); ``websocket_grace`` is how long
    `ListeningPort.stopListening` lets WebSockets run before closing them with 1001.
    Errors: hive.supervisor.listeners.ListenerError (one line) for an address that
    cannot be listened on, ssl.SSLError / OSError for certificates.
    """
    if not isinstance(site, Site):
        site = Site(site)
    settings = config if config is not None else Config()
    if websocket_grace is not None:
        limits = replace(settings.connection, websocket_drain_timeout=websocket_grace)
        settings = replace(settings, connection=limits)
    if ssl is None and (certfile or keyfile):
        if not (certfile and keyfile):
            raise ValueError("TLS needs both certfile and keyfile")
        ssl = _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH)
        ssl.load_cert_chain(certfile, keyfile)
    sock = bind_socket(parse_bind(address), backlog=settings.backlog)
    server = Server(site, settings)
    try:
        await server.start([sock], tls=ssl)
    except BaseException:
        close_listener(sock)
        raise
    return ListeningPort(server, sock, graceful_timeout)
