"""Twisted's reactor on a worker's own event loop, for Twisted code inside hive.

A Twisted program reaches the reactor by importing it (``from twisted.internet import
reactor``, directly or through ``deferLater``, ``getProcessOutput``, ``twisted.web.client``,
treq...).  The worker puts an import hook (`install_hook`) on ``sys.meta_path`` before it
imports the application; the first import of ``twisted.internet.reactor``, whenever it
comes (at the application's import, in a render, in an .rpy script), installs Twisted's
asyncio reactor on the loop hive serves from, uvloop or asyncio, instead of Twisted's
default reactor, which would never run.  So nothing is to be turned on: a program that
uses the reactor gets it, and a worker whose application never imports it (or that runs
without Twisted installed) imports no Twisted at all.

The reactor is hive's guest, never the loop's owner:

- it is started (``reactor.running``, ``callWhenRunning``, startup triggers) without
  signal handlers: hive's worker keeps SIGTERM and SIGUSR1, uvloop keeps SIGCHLD.  Child
  processes (``spawnProcess``, ``getProcessOutput``) are reaped when they exit, through a
  pidfd per child read on the loop (and the worker's once-a-second tick, as a backstop);
- ``reactor.run()`` raises a clear error (hive runs the loop); ``reactor.stop()`` and the
  worker's own stop fire Twisted's shutdown triggers (thread pool, connection pools)
  without stopping the loop;
- Twisted's log events go to hive's error log (Python logging, logger ``twisted``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import threading
from types import ModuleType
from typing import Any, Final

__all__ = [
    "REACTOR_MODULE",
    "install_hook",
    "installed",
    "make_reactor",
    "shutdown",
    "tick",
    "uninstall_hook",
]

log = logging.getLogger("hive.worker")

REACTOR_MODULE: Final = "twisted.internet.reactor"
#: How long an import of the reactor off the loop's thread waits for the loop to install it.
_THREAD_INSTALL_WAIT: Final = 30.0

_reactor: Any = None


def installed() -> Any:
    """The reactor hive installed, or None."""
    return _reactor


class _ReactorFinder(importlib.abc.MetaPathFinder):
    """Answers the import of ``twisted.internet.reactor`` with hive's reactor."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != REACTOR_MODULE:
            return None
        return importlib.machinery.ModuleSpec(fullname, _ReactorLoader(self.loop))


class _ReactorLoader(importlib.abc.Loader):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        # As twisted/internet/reactor.py does: installReactor puts the reactor itself in
        # sys.modules, and the import returns what is there when this ends.
        del sys.modules[REACTOR_MODULE]
        install_on(self.loop)


def install_hook(loop: asyncio.AbstractEventLoop) -> None:
    """Have the first import of Twisted's reactor install it on ``loop``."""
    if not any(isinstance(finder, _ReactorFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ReactorFinder(loop))


def uninstall_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _ReactorFinder)]


def install_on(loop: asyncio.AbstractEventLoop) -> Any:
    """Install and start Twisted's asyncio reactor on ``loop`` (from any thread)."""
    global _reactor
    if _reactor is not None:
        return _reactor
    reactor_class = _reactor_class()  # imported here, in the importing thread
    if _on_loop_thread(loop):
        _reactor = _start(reactor_class, loop)
        return _reactor
    # An import from a thread (a WSGI application's): the reactor is the loop's, so it is
    # made and started there.
    done: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def start_there() -> None:
        try:
            done.set_result(_start(reactor_class, loop))
        except BaseException as exc:
            done.set_exception(exc)

    loop.call_soon_threadsafe(start_there)
    try:
        _reactor = done.result(_THREAD_INSTALL_WAIT)
    except concurrent.futures.TimeoutError:
        raise ImportError(
            "hive could not install Twisted's reactor: the event loop did not answer"
        ) from None
    return _reactor


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        # Not in a coroutine or callback: the loop's own thread only when it is not running
        # (a worker setting up).
        return not loop.is_running() and threading.current_thread() is threading.main_thread()


def make_reactor(loop: asyncio.AbstractEventLoop) -> Any:
    """A started reactor on ``loop``, not installed as Twisted's global one."""
    reactor = _reactor_class()(loop)
    reactor.startRunning(installSignalHandlers=False)
    return reactor


def _start(reactor_class: Any, loop: asyncio.AbstractEventLoop) -> Any:
    from twisted.internet.main import installReactor
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    reactor = reactor_class(loop)
    installReactor(reactor)  # type: ignore[no-untyped-call]
    globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="twisted")], redirectStandardIO=False)
    reactor.startRunning(installSignalHandlers=False)
    _watch_children(loop)
    log.info("Twisted's reactor runs on the worker's event loop")
    return reactor


def _watch_children(loop: asyncio.AbstractEventLoop) -> None:
    """Reap Twisted's child processes when they exit, without a SIGCHLD handler (uvloop
    keeps SIGCHLD for itself): a pidfd per child, read on the loop, as asyncio's own
    PidfdChildWatcher does.  Without pidfds (before Linux 5.3), `tick` reaps them."""
    from twisted.internet import process

    if not hasattr(os, "pidfd_open"):
        return
    register = process.registerReapProcessHandler

    def register_and_watch(pid: int, handler: Any) -> None:
        register(pid, handler)  # type: ignore[no-untyped-call]
        if pid not in process.reapProcessHandlers:
            return  # it had exited already and was reaped
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return  # gone in between: reaped by the tick

        def exited() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            if process.reapProcessHandlers.get(pid) is handler:  # not reaped since
                handler.reapProcess()  # type: ignore[union-attr]

        loop.add_reader(fd, exited)

    process.registerReapProcessHandler = register_and_watch


def _reactor_class() -> Any:
    from twisted.internet import base
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    class HiveReactor(AsyncioSelectorReactor):
        """Twisted's asyncio reactor on a loop that hive runs and stops."""

        def run(self, installSignalHandlers: bool = True) -> None:
            raise RuntimeError(
                "hive runs the event loop: remove reactor.run() (and listenTCP or "
                "endpoint.listen of the Site); hive run serves the Site"
            )

        def iterate(self, delay: float = 0) -> None:
            raise RuntimeError("hive runs the event loop: reactor.iterate() cannot run it")

        def crash(self) -> None:
            # Twisted's asyncio reactor stops the loop here, which is hive's to stop.
            base.ReactorBase.crash(self)

    return HiveReactor


def tick() -> None:
    """Once a second from the worker: reap children whose SIGCHLD went elsewhere."""
    if _reactor is not None and "twisted.internet.process" in sys.modules:
        from twisted.internet import process

        process.reapAllProcesses()


async def shutdown(timeout: float, reactor: Any = None) -> None:
    """Fire Twisted's shutdown triggers (its thread pool, its connections) and wait for
    them, at most ``timeout`` seconds; the loop goes on.  ``reactor``: the installed one."""
    if reactor is None:
        reactor = _reactor
    if reactor is None or reactor._stopped:
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def after_shutdown() -> None:
        if not done.done():
            done.set_result(None)

    reactor.addSystemEventTrigger("after", "shutdown", after_shutdown)
    reactor.stop()
    try:
        async with asyncio.timeout(timeout):
            await done
    except TimeoutError:
        log.warning("Twisted's shutdown triggers did not finish in %.1f s", timeout)
