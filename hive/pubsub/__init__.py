"""Publish/subscribe: a message published in any worker reaches the subscribers of its
channel in every worker, and on every host through Redis.

::

    from hive import pubsub

    pubsub.publish("news", json.dumps({"title": "..."}))   # from the loop or any thread

    async with pubsub.subscribe("news") as subscription:
        async for message in subscription:
            ...  # message.channel, message.id, message.data

A message is ``str`` or ``bytes`` (JSON goes as the str ``json.dumps`` makes), at most
`MAX_MESSAGE_SIZE` bytes, and arrives as it was published, type included; a subscriber
of `hive.sse` wants text (bytes are read as UTF-8). Each message gets an id in one place
(the supervisor's relay under ``hive run``, Redis with ``--pubsub redis://...``), the same
in every worker, and is kept for a while in a bounded backlog
(`hive.pubsub.backlog`): a subscriber that names the last id it saw (``last_id``, an
EventSource's Last-Event-ID) first gets what it missed that the backlog still holds.

Delivery is at most once, in the order each publisher published (per worker and thread),
to subscribers that exist when the message arrives: ``await subscription.ready()`` says
from when a subscription sees every message. Each subscriber has a bounded queue
(``limit``); one that falls that far behind is dropped, as Redis drops a slow pub/sub
client: its iteration raises `SlowSubscriber` once what was queued is read, and a client
that comes back with its last id gets the rest from the backlog. When the worker drains
(a reload, a stop) every subscription ends, so that clients reconnect to the workers that
replace it. The counters (published, delivered, dropped, subscribers) are in /metrics.

Outside ``hive run`` (an embedded Server, a test) the bus is a `LocalBus`: one process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final

from hive.pubsub.backlog import Backlog, parse_id

__all__ = [
    "MAX_CHANNEL_LENGTH",
    "MAX_MESSAGE_SIZE",
    "QUEUE_LIMIT",
    "Bus",
    "LocalBus",
    "Message",
    "SlowSubscriber",
    "Subscription",
    "get_bus",
    "listen",
    "publish",
    "set_bus",
    "subscribe",
]

log = logging.getLogger("hive.pubsub")

#: The largest message, in bytes (UTF-8 for a str): a push to browsers is a notification,
#: not a file; the supervisor's channel bounds its messages at 1 MiB.
MAX_MESSAGE_SIZE: Final = 256 * 1024
#: The longest channel name, in characters.
MAX_CHANNEL_LENGTH: Final = 256
#: Messages a subscriber may have waiting before it is dropped as too slow.
QUEUE_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True)
class Message:
    """One message as a subscriber gets it: its channel, its id, and what was published."""

    channel: str
    id: str
    data: str | bytes
    #: The id as a comparable pair (hive.pubsub.backlog.parse_id).
    key: tuple[int, int] = field(compare=False, repr=False)

    @property
    def text(self) -> str:
        """The data as text: a str as it is, bytes read as UTF-8 (bad bytes replaced)."""
        data = self.data
        return data if isinstance(data, str) else data.decode("utf-8", "replace")


class SlowSubscriber(Exception):
    """The subscriber fell `QUEUE_LIMIT` (its ``limit``) messages behind and was dropped."""


def _message(channel: str, id: str, data: str | bytes) -> Message:
    return Message(channel, id, data, parse_id(id) or (0, 0))


class Subscription:
    """One subscriber of one channel: an async iterator of `Message`, or, made by
    `Bus.listen`, a callback called with each message on the loop.

    Close it when done (``async with`` does): until then the bus keeps queueing for it.
    """

    def __init__(
        self,
        bus: Bus,
        channel: str,
        last_id: str | None,
        limit: int,
        on_message: Callable[[Message], object] | None,
        on_close: Callable[[BaseException | None], object] | None,
    ) -> None:
        self.channel = channel
        #: The id asked for, as given (a client's Last-Event-ID), or None.
        self.last_id = last_id
        self.limit = limit
        self._bus = bus
        self._on_message = on_message
        self._on_close = on_close
        self._after = parse_id(last_id) if last_id else None
        self._queue: deque[Message] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ready: asyncio.Future[None] = bus._loop_now().create_future()
        # Live messages that came before the replay was over; None once it is.
        self._held: list[Message] | None = []
        self._token = 0  # the bus's name for its replay while one is awaited
        #: The subscription has ended (closed, dropped, or its bus closed).
        self.closed = False
        self._error: BaseException | None = None

    # -- for the subscriber ----------------------------------------------------------------

    async def ready(self) -> None:
        """Return once the subscription sees every message published from now on, and
        the replay of what came after ``last_id`` has been handed over."""
        await asyncio.shield(self._ready)

    def when_ready(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` on the loop once `ready` would return."""
        self._ready.add_done_callback(lambda _future: callback())

    def close(self, error: BaseException | None = None) -> None:
        """End the subscription; the bus forgets it. With ``error``, iteration raises it
        once what was queued is read."""
        if self.closed:
            return
        self.closed = True
        self._error = error
        self._held = None
        self._bus._remove(self)
        if not self._ready.done():
            self._ready.set_result(None)
        self._wake()
        if self._on_close is not None:
            self._on_close(error)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        if self._on_message is not None:
            raise TypeError("a listening subscription hands messages to its callback")
        while True:
            if self._queue:
                return self._queue.popleft()
            if self.closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            waiter = self._waiter = self._bus._loop_now().create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Subscription {self.channel!r} {state} queued={len(self._queue)}>"

    # -- from the bus ------------------------------------------------------------------------

    def _push(self, message: Message) -> None:
        """A live message."""
        held = self._held
        if held is not None:
            if len(held) >= self.limit:
                self.overflowed()
            else:
                held.append(message)
            return
        after = self._after
        if after is not None and message.key <= after:
            return  # replayed already
        self._after = message.key
        self._give(message)

    def _replayed(self, messages: list[Message], done: bool) -> None:
        for message in messages:
            if self.closed:
                return
            after = self._after
            if after is None or message.key > after:
                self._after = message.key
                self._give(message)
        if not done or self.closed:
            return
        held, self._held = self._held, None
        for message in held or ():
            self._push(message)
        if not self._ready.done():
            self._ready.set_result(None)

    def _give(self, message: Message) -> None:
        if self._on_message is not None:
            self._bus.delivered += 1
            self._on_message(message)
            return
        if len(self._queue) >= self.limit:
            self.overflowed()
            return
        self._bus.delivered += 1
        self._queue.append(message)
        self._wake()

    def overflowed(self) -> None:
        """The subscriber cannot keep up: drop it, counted as slow; iteration (and
        ``on_close``) gets `SlowSubscriber`. A listener calls this when it must."""
        if self.closed:
            return
        bus = self._bus
        bus.dropped += 1
        bus.slow += 1
        log.info("a subscriber of %r fell %d messages behind; dropped", self.channel, self.limit)
        self.close(SlowSubscriber(f"fell {self.limit} messages behind on {self.channel!r}"))

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Bus:
    """The subscribers of one process and the counters; a backend carries the messages.

    Subclasses implement `_send_publish` (hand a message to the place that gives ids),
    `_want` (ask for a channel's messages and a replay, answered through `_replayed`) and
    `_unwant`; they call `_deliver` with each message published on a wanted channel.
    Everything happens on the bus's event loop, except `publish`, which any thread calls.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._thread = threading.get_ident() if loop is not None else None
        self._channels: dict[str, dict[Subscription, None]] = {}
        self._replays: dict[int, Subscription] = {}
        self._next_token = 1
        self.closing = False
        #: Counters, cumulative: messages published here, handed to subscribers here, lost
        #: (slow subscribers, an unreachable bus), and subscribers dropped as too slow.
        self.published = 0
        self.delivered = 0
        self.dropped = 0
        self.slow = 0

    # -- the API ---------------------------------------------------------------------------

    def publish(self, channel: str, data: str | bytes) -> None:
        """Publish ``data`` on ``channel``: from the loop, or from any thread."""
        check_channel(channel)
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        if not isinstance(data, str | bytes):
            raise TypeError(f"a message is str or bytes, not {type(data).__name__}")
        if isinstance(data, str):
            try:
                size = len(data.encode("utf-8"))
            except UnicodeEncodeError:
                raise ValueError("a str message is text: no lone surrogates") from None
        else:
            size = len(data)
        if size > MAX_MESSAGE_SIZE:
            raise ValueError(f"a message is at most {MAX_MESSAGE_SIZE} bytes, got {size}")
        if threading.get_ident() == self._thread:
            self._publish(channel, data)
            return
        loop = self._loop
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise RuntimeError(
                    "the bus has no event loop yet: publish from a thread once it serves"
                ) from None
            self._bind(loop)
            self._publish(channel, data)
            return
        try:
            loop.call_soon_threadsafe(self._publish, channel, data)
        except RuntimeError:  # the loop is closed: the worker is gone
            self.dropped += 1

    def subscribe(
        self, channel: str, *, last_id: str | None = None, limit: int = QUEUE_LIMIT
    ) -> Subscription:
        """A new subscriber of ``channel`` (an async iterator), first given what the
        backlog holds after ``last_id``. Call it on the loop."""
        return self._add(channel, last_id, limit, None, None)

    def listen(
        self,
        channel: str,
        on_message: Callable[[Message], object],
        *,
        last_id: str | None = None,
        on_close: Callable[[BaseException | None], object] | None = None,
        limit: int = QUEUE_LIMIT,
    ) -> Subscription:
        """A new subscriber of ``channel`` that calls ``on_message(message)`` on the loop
        with each message, and ``on_close(error)`` when it ends (error None, or
        `SlowSubscriber` when it is closed with one): for code that writes each message
        at once, such as an event stream to thousands of clients, with no task each."""
        return self._add(channel, last_id, limit, on_message, on_close)

    def subscribers(self) -> int:
        return sum(len(subs) for subs in self._channels.values())

    def close(self) -> None:
        """End every subscription (the worker drains); publishing still works."""
        self.closing = True
        for subs in list(self._channels.values()):
            for subscription in list(subs):
                subscription.close()

    async def aclose(self) -> None:
        """Close, and let go of the backend's connections."""
        self.close()

    # -- for the backends ------------------------------------------------------------------

    def _deliver(self, channel: str, id: str, data: str | bytes) -> None:
        """A message published on ``channel``, with its id: to every subscriber here."""
        subs = self._channels.get(channel)
        if not subs:
            return
        message = _message(channel, id, data)
        for subscription in list(subs):
            subscription._push(message)

    def _deliver_all(self, channel: str, ids: list[str], data: list[str | bytes]) -> None:
        """Messages published on ``channel`` one after the other: `_deliver` each."""
        subs = self._channels.get(channel)
        if not subs:
            return
        targets = list(subs)
        for id, item in zip(ids, data, strict=True):
            message = _message(channel, id, item)
            for subscription in targets:
                if not subscription.closed:
                    subscription._push(message)

    def _replayed(self, token: int, ids: list[str], data: list[str | bytes], done: bool) -> None:
        """The answer to `_want` ``token``: messages to replay, and whether that is all."""
        subscription = self._replays.get(token)
        if subscription is None:
            return
        if done:
            del self._replays[token]
        channel = subscription.channel
        messages = [_message(channel, i, d) for i, d in zip(ids, data, strict=True)]
        subscription._replayed(messages, done)

    def _send_publish(self, channel: str, data: str | bytes) -> None:
        raise NotImplementedError

    def _want(self, channel: str, token: int, after: str) -> None:
        raise NotImplementedError

    def _unwant(self, channel: str) -> None:
        raise NotImplementedError

    # -- inside ----------------------------------------------------------------------------

    def _publish(self, channel: str, data: str | bytes) -> None:
        self.published += 1
        self._send_publish(channel, data)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.get_ident()

    def _loop_now(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = asyncio.get_running_loop()
            self._bind(loop)
        return loop

    def _add(
        self,
        channel: str,
        last_id: str | None,
        limit: int,
        on_message: Callable[[Message], object] | None,
        on_close: Callable[[BaseException | None], object] | None,
    ) -> Subscription:
        check_channel(channel)
        if limit < 1:
            raise ValueError(f"limit: at least 1, got {limit}")
        self._loop_now()
        subscription = Subscription(self, channel, last_id, limit, on_message, on_close)
        if self.closing:
            subscription.close()
            return subscription
        self._channels.setdefault(channel, {})[subscription] = None
        token = self._next_token
        self._next_token += 1
        self._replays[token] = subscription
        subscription._token = token
        self._want(channel, token, last_id or "")
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        subs = self._channels.get(subscription.channel)
        if subs is None or subscription not in subs:
            return
        del subs[subscription]
        self._replays.pop(subscription._token, None)
        if not subs:
            del self._channels[subscription.channel]
            self._unwant(subscription.channel)


def check_channel(channel: object) -> None:
    """Raise TypeError or ValueError unless ``channel`` is a channel name."""
    if not isinstance(channel, str):
        raise TypeError(f"a channel is a str, not {type(channel).__name__}")
    if not 0 < len(channel) <= MAX_CHANNEL_LENGTH:
        raise ValueError(f"a channel name has 1 to {MAX_CHANNEL_LENGTH} characters")


class LocalBus(Bus):
    """The bus of one process, with its own ids and backlog: outside ``hive run``."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(loop)
        self.backlog = Backlog(int(time.time() * 1000))

    def _send_publish(self, channel: str, data: str | bytes) -> None:
        entry = self.backlog.append(channel, data, time.monotonic())
        # Delivered from the loop, as a relay's message would be: a subscriber that
        # publishes from its callback does not see its message inside its own call.
        self._loop_now().call_soon(self._deliver, channel, entry.id, data)

    def _want(self, channel: str, token: int, after: str) -> None:
        entries = self.backlog.after(channel, parse_id(after), time.monotonic()) if after else []
        ids = [entry.id for entry in entries]
        data = [entry.data for entry in entries]
        self._loop_now().call_soon(self._replayed, token, ids, data, True)

    def _unwant(self, channel: str) -> None:
        pass


_bus: Bus | None = None
_bus_lock = threading.Lock()


def get_bus() -> Bus:
    """This process's bus: the one ``hive run`` set, else a `LocalBus` made now."""
    global _bus
    bus = _bus
    if bus is None:
        with _bus_lock:
            if _bus is None:
                _bus = LocalBus()
            bus = _bus
    return bus


def set_bus(bus: Bus | None) -> None:
    """Make ``bus`` this process's bus (a worker does, as it starts); None forgets it."""
    global _bus
    with _bus_lock:
        _bus = bus


def publish(channel: str, data: str | bytes) -> None:
    """Publish ``data`` (str or bytes) on ``channel``, from the loop or any thread."""
    get_bus().publish(channel, data)


def subscribe(
    channel: str, *, last_id: str | None = None, limit: int = QUEUE_LIMIT
) -> Subscription:
    """A new subscriber of ``channel``: ``async for message in subscribe("news")``."""
    return get_bus().subscribe(channel, last_id=last_id, limit=limit)


def listen(
    channel: str,
    on_message: Callable[[Message], object],
    *,
    last_id: str | None = None,
    on_close: Callable[[BaseException | None], object] | None = None,
    limit: int = QUEUE_LIMIT,
) -> Subscription:
    """A new subscriber of ``channel`` that calls ``on_message`` with each message."""
    return get_bus().listen(channel, on_message, last_id=last_id, on_close=on_close, limit=limit)
