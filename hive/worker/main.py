"""A worker process: import the application, serve it, report to the supervisor.

The supervisor forks a worker and hands it one end of a socketpair (the channel) and the
listening sockets of its slot.  The worker says Hello, sets up its bus (hive.pubsub: the
supervisor's relay over this channel, or Redis), imports the application (so a reload
runs new code), runs the lifespan startup of its ASGI applications (one that fails is a
failed start: the worker says Failed and exits), starts serving and says Ready; then,
from its event loop, a Heartbeat and its Stats every second (a blocked loop goes silent,
and the supervisor replaces it).  Drain makes it end its subscriptions (their clients
reconnect to the new workers), stop accepting, finish what is in flight, run the ASGI
lifespan shutdown and exit; Stop makes it exit at once.  When the channel closes, the
supervisor is gone: the worker drains and exits too, so no worker outlives its
supervisor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
import time
from typing import Any, cast

from hive import _ipc as ipc
from hive import _reactor as reactor
from hive import asgi, pubsub, wsgi
from hive._accesslog import AccessLog, AccessLogError
from hive._config import Config
from hive._forwarded import TrustedProxies
from hive._loader import LoadError, load_target, resolve_site
from hive._logs import reopen_log_files
from hive.http import HTTPFactory
from hive.pubsub.relay import RelayBus
from hive.resource import Resource
from hive.server import Site, site_for_factory
from hive.session import DEFAULT_COOKIE_NAME, SQLiteStore, session_file
from hive.worker.serve import Server
from hive.worker.stats import WorkerStats

__all__ = ["BOOT_FAILED", "load_site", "new_event_loop", "worker_main"]

log = logging.getLogger("hive.worker")

#: Exit status of a worker whose application could not be loaded.
BOOT_FAILED = 3


def load_site(config: Config, access_log: AccessLog | None) -> Site:
    """Import the application named by ``config.app`` and set it up as a Site."""
    wsgi.set_default_threads(config.threads)
    if config.path is not None:
        target: object = path_resource(config.path, scripts=config.scripts)
    else:
        target = load_target(config.app, app_dir=config.app_dir)
    if config.wsgi:
        if isinstance(target, Site | Resource) or not callable(target):
            raise LoadError(f"{config.app!r} is not a WSGI application (drop --wsgi?)")
        target = wsgi.WSGIResource(None, None, target)
    elif config.asgi:
        if isinstance(target, Site | Resource) or not callable(target):
            raise LoadError(f"{config.app!r} is not an ASGI application (drop --asgi?)")
        target = asgi.ASGIResource(target)
    site: Site = resolve_site(
        target,
        site_type=Site,
        resource_type=Resource,
        make_site=Site,
        spec=config.app,
        adapters=[(HTTPFactory, site_for_factory)],
    )
    site.displayTracebacks = site.displayTracebacks or config.display_tracebacks
    site.server_header = config.server_header.encode("latin-1")
    if site.logPath is None:
        site.access_log = access_log
    site.access_log_format = config.log_format
    if site.sessionStore is None:  # an application's own store (Redis) wins
        # Opened on first use: a site that never asks for a session never makes the file.
        site.sessionStore = SQLiteStore(session_file(config.session_dir))
    if config.session_cookie != DEFAULT_COOKIE_NAME:
        site.sessionCookieName = config.session_cookie.encode("ascii")
    if config.forwarded_allow:
        site.trusted_proxies = TrustedProxies(config.forwarded_allow)
    if config.root_path is not None:
        site.root_path = config.root_path
    return site


def path_resource(path: str, *, scripts: bool) -> Resource:
    """What ``--path`` serves: the directory's files, as ``twistd web --path`` does; with
    ``scripts``, its .rpy, .epy and .cgi files run (code from the served directory)."""
    from hive.static import File  # only a worker serving --path needs these

    root = File(path)
    if scripts:
        from hive import script, twcgi

        root.processors = {
            ".rpy": script.ResourceScript,
            ".epy": script.PythonScript,
            ".cgi": twcgi.CGIScript,
        }
    return root


async def _start_lifespans(channel: _Channel) -> list[asgi.Lifespan] | None:
    """Start the lifespan of every ASGI application; the ones that took part, or None if
    an order to stop (or the supervisor's going) came first.  LifespanError if one
    failed, once those started are shut down."""
    started: list[asgi.Lifespan] = []
    try:
        for lifespan in asgi.Lifespan.every():
            startup = asyncio.ensure_future(lifespan.startup())
            order = asyncio.ensure_future(channel.orders.get())
            await asyncio.wait({startup, order}, return_when=asyncio.FIRST_COMPLETED)
            if order.done():
                # Told to stop while starting: there is nothing to serve.
                startup.cancel()
                await asyncio.wait({startup})
                if startup.done() and not startup.cancelled() and startup.exception() is None:
                    started.append(lifespan)
                raise _Stopped
            order.cancel()
            startup.result()
            if lifespan.supported:
                started.append(lifespan)
    except (asgi.LifespanError, _Stopped) as exc:
        for done in reversed(started):
            await done.shutdown()
        if isinstance(exc, _Stopped):
            return None
        raise
    return started


class _Stopped(Exception):
    """An order to stop came while the worker was starting."""


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server TLS context, read from the files now (so a reload reads them again)."""
    if config.certfile is None or config.keyfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.certfile, config.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(f"cannot load the TLS certificate {config.certfile}: {exc}") from None
    return context


class TLSError(Exception):
    """The certificate or key cannot be loaded; one line."""


def new_event_loop(choice: str) -> asyncio.AbstractEventLoop:
    """An event loop: uvloop when chosen or, for "auto", when installed."""
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def worker_main(
    config: Config,
    channel: socket.socket,
    sockets: list[socket.socket],
    slot: int,
    generation: int,
) -> int:
    """Run a worker until it is told to stop; return its exit status."""
    # Ctrl-C reaches the whole process group; the supervisor decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Until the logs are open there is nothing to reopen; SIGUSR1 must not end the worker.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    loop = new_event_loop(config.loop)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_run(config, channel, sockets, slot, generation))
    finally:
        loop.close()


def reopen_logs(access_log: AccessLog | None) -> None:
    """SIGUSR1: reopen the log files (after logrotate moved them)."""
    if access_log is not None:
        try:
            access_log.reopen()
        except AccessLogError as exc:
            log.error("%s", exc)
    reopen_log_files()


class _Channel(asyncio.Protocol):
    """The worker's end of the supervisor channel."""

    def __init__(self) -> None:
        self.decoder = ipc.Decoder()
        self.transport: asyncio.Transport | None = None
        self.orders: asyncio.Queue[ipc.Drain | ipc.Stop | None] = asyncio.Queue()
        #: The relay's bus, when the supervisor carries it.
        self.bus: RelayBus | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        for message in self.decoder.feed(data):
            if isinstance(message, ipc.Published | ipc.Subscribed):
                if self.bus is not None:
                    self.bus.received(message)
            elif isinstance(message, ipc.Drain | ipc.Stop):
                self.orders.put_nowait(message)
            else:
                log.warning("unexpected message from the supervisor: %r", message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.orders.put_nowait(None)

    def send(self, message: ipc.Message) -> None:
        if self.transport is not None:
            self.transport.write(ipc.encode(message))


async def _run(
    config: Config,
    channel_socket: socket.socket,
    sockets: list[socket.socket],
    slot: int,
    generation: int,
) -> int:
    loop = asyncio.get_running_loop()
    _transport, channel = await loop.connect_accepted_socket(_Channel, channel_socket)
    channel.send(ipc.Hello(ipc.PROTOCOL_VERSION, slot, generation, os.getpid()))
    # Before the application: its first import of Twisted's reactor gets one on this loop.
    reactor.install_hook(loop)
    bus = make_bus(config, channel, loop)
    pubsub.set_bus(bus)
    try:
        access_log = AccessLog.open(config.access_log)
        site = load_site(config, access_log)
        if site.access_log is not access_log:
            # The application's own (Site(logPath=...)) wins over --access-log.
            if access_log is not None:
                access_log.close()
            access_log = site.access_log
        tls = tls_context(config)
    except (LoadError, AccessLogError, TLSError) as exc:
        channel.send(ipc.Failed(str(exc)))
        await asyncio.sleep(0)  # let the message go out before the exit
        return BOOT_FAILED
    try:
        started = await _start_lifespans(channel)
    except asgi.LifespanError as exc:
        channel.send(ipc.Failed(str(exc)))
        await asyncio.sleep(0)  # let the message go out before the exit
        return BOOT_FAILED
    if started is None:
        return 0
    stats = WorkerStats()
    site.stats = stats
    server: Server | None = None

    def every_second() -> None:
        if access_log is not None:
            access_log.flush()
        reactor.tick()
        channel.send(ipc.Heartbeat(time.time()))
        if server is not None:
            idle = sum(1 for c in server.connections if c.idle)
            snapshot = stats.snapshot(
                accepted=server.accepted,
                active=len(server.connections) - idle,
                idle=idle,
                bus=bus,
            )
            channel.send(snapshot)

    server = Server(site, config, on_sweep=every_second)
    await server.start(sockets, tls=tls)
    channel.send(ipc.Ready(generation))
    every_second()
    loop.add_signal_handler(
        signal.SIGTERM, channel.orders.put_nowait, ipc.Drain(config.graceful_timeout)
    )
    loop.add_signal_handler(signal.SIGUSR1, reopen_logs, access_log)
    order = await channel.orders.get()
    if order is None:
        log.warning("the supervisor is gone; finishing requests in flight")
        timeout: float = config.graceful_timeout
    elif isinstance(order, ipc.Drain):
        timeout = order.timeout
    else:
        timeout = 0.0
    drain_started = loop.time()
    # Subscriptions end first: event streams finish, and their clients reconnect to the
    # workers that replace this one, asking for what they missed.
    bus.close()
    shutdown: Any = asyncio.ensure_future(server.shutdown(timeout))
    # A Stop while draining cuts the drain short.
    stopped = timeout == 0.0
    while not shutdown.done():
        getter = asyncio.ensure_future(channel.orders.get())
        await asyncio.wait({shutdown, getter}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done() and isinstance(getter.result(), ipc.Stop):
            server.abort_all()
            stopped = True
        getter.cancel()
    if not stopped:
        # The supervisor's SIGKILL comes 5 s after the graceful timeout: end before it.
        left = max(timeout - (loop.time() - drain_started), 0.0) + 3.0
        for lifespan in reversed(started):
            await lifespan.shutdown(left)
    # Twisted's shutdown triggers (its thread pool, its client connections), if it ran.
    await reactor.shutdown(min(max(timeout, 1.0), 5.0))
    if access_log is not None:
        access_log.close()
    await bus.aclose()
    return 0


def make_bus(config: Config, channel: _Channel, loop: asyncio.AbstractEventLoop) -> pubsub.Bus:
    """The worker's bus: Redis's with ``--pubsub redis://...``, else the supervisor's relay."""
    if config.pubsub:
        from hive.pubsub.redisbus import RedisBus  # only a worker that uses Redis needs it

        return RedisBus(config.pubsub, loop)
    bus = RelayBus(channel.send, loop)
    channel.bus = bus
    return bus
