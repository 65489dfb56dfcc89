"""Where live elements get channel messages: hive.pubsub when it is there, else this process.

`listen(channel, on_message)` and `publish(channel, data)` have the shape of
``hive.pubsub.listen`` and ``hive.pubsub.publish``: a message has ``channel``, ``id``,
``data`` and ``text``; a listener is closed with ``close()``. With hive.pubsub, a message
published in any worker (or, through Redis, any host) reaches the elements of every
worker; without it (and in an embedded program, which is one process) `LocalBus` carries
messages within the process, from the loop or from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["LocalBus", "Message", "bus", "listen", "publish"]

log = logging.getLogger("hive.live")


class Listener(Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Message:
    channel: str
    id: str
    data: str | bytes

    @property
    def text(self) -> str:
        data = self.data
        return data if isinstance(data, str) else data.decode("utf-8", "replace")


class _LocalListener:
    __slots__ = ("_bus", "callback", "channel")

    def __init__(self, bus: LocalBus, channel: str, callback: Callable[[Any], object]) -> None:
        self._bus = bus
        self.channel = channel
        self.callback = callback

    def close(self) -> None:
        self._bus._remove(self)


class LocalBus:
    """Channels within one process; messages are delivered on the loop, in order."""

    def __init__(self) -> None:
        self._listeners: dict[str, dict[_LocalListener, None]] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None

    def listen(self, channel: str, on_message: Callable[[Any], object]) -> Listener:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        listener = _LocalListener(self, channel, on_message)
        self._listeners.setdefault(channel, {})[listener] = None
        return listener

    def publish(self, channel: str, data: str | bytes) -> None:
        if not isinstance(channel, str) or not channel:
            raise ValueError("a channel is a non-empty str")
        if not isinstance(data, str | bytes):
            raise TypeError(f"a message is str or bytes, not {type(data).__name__}")
        loop = self._loop
        if loop is None:
            return  # nobody listens yet
        if threading.get_ident() == self._thread:
            # Delivered from the loop, as a relayed message would be: a handler that
            # publishes does not see its own message inside its call.
            loop.call_soon(self._deliver, channel, data)
        else:
            # A closed loop: nobody is listening any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._deliver, channel, data)

    def _deliver(self, channel: str, data: str | bytes) -> None:
        listeners = self._listeners.get(channel)
        if not listeners:
            return
        message = Message(channel, str(next(self._ids)), data)
        for listener in list(listeners):
            try:
                listener.callback(message)
            except Exception:
                log.exception("error in a handler of channel %r", channel)

    def _remove(self, listener: _LocalListener) -> None:
        listeners = self._listeners.get(listener.channel)
        if listeners is not None:
            listeners.pop(listener, None)
            if not listeners:
                del self._listeners[listener.channel]


_local = LocalBus()
_found: list[Any] = []  # the bus, once looked for


def bus() -> Any:
    """hive.pubsub (the bus every worker shares) if it is installed, else the `LocalBus`."""
    if not _found:
        try:
            _found.append(importlib.import_module("hive.pubsub"))
        except ImportError:
            _found.append(_local)
    return _found[0]


def listen(channel: str, on_message: Callable[[Any], object]) -> Listener:
    listener: Listener = bus().listen(channel, on_message)
    return listener


def publish(channel: str, data: str | bytes) -> None:
    """Publish ``data`` on ``channel``, to every live element subscribed to it."""
    bus().publish(channel, data)
