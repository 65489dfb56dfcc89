"""A worker: load the application, serve it on the given sockets until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket

from hive.accesslog import AccessLog
from hive.config import Config
from hive.engine import available_engines
from hive.loader import load_target, resolve_site
from hive.resource import Resource
from hive.server import Site
from hive.supervisor.listeners import url_for
from hive.worker.serve import Server

__all__ = ["load_site", "run_worker"]

log = logging.getLogger("hive.worker")


def load_site(config: Config, access_log: AccessLog | None) -> Site:
    """Import the application named by ``config.app`` and set it up as a Site."""
    target = load_target(config.app, app_dir=config.app_dir)
    site: Site = resolve_site(
        target, site_type=Site, resource_type=Resource, make_site=Site, spec=config.app
    )
    site.displayTracebacks = site.displayTracebacks or config.display_tracebacks
    site.server_header = config.server_header.encode("latin-1")
    site.access_log = access_log
    return site


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


def run_worker(config: Config, sockets: list[socket.socket], site: Site) -> None:
    """Serve ``site`` on ``sockets`` until SIGTERM or SIGINT; a second signal stops at once."""
    loop = new_event_loop(config.loop)
    try:
        loop.run_until_complete(_serve(config, sockets, site))
    finally:
        loop.close()


async def _serve(config: Config, sockets: list[socket.socket], site: Site) -> None:
    loop = asyncio.get_running_loop()
    access_log = site.access_log
    server = Server(site, config, on_sweep=access_log.flush if access_log else None)
    await server.start(sockets)
    engine = config.http if config.http != "auto" else available_engines()[0]
    loop_name = type(loop).__module__.split(".")[0]
    for sock in sockets:
        log.info("listening on %s (engine %s, loop %s)", url_for(sock), engine, loop_name)
    stop = asyncio.Event()
    signals_seen: list[int] = []

    def on_signal(signum: int) -> None:
        signals_seen.append(signum)
        if len(signals_seen) > 1:
            log.info("second signal: stopping now")
            for connection in list(server.connections):
                connection.transport.abort()
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await stop.wait()
        log.info(
            "%s: finishing requests in flight (up to %.0f s)",
            signal.Signals(signals_seen[0]).name,
            config.graceful_timeout,
        )
        # A second signal aborts every connection, which ends this wait early.
        await server.shutdown(config.graceful_timeout)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("stopped")
