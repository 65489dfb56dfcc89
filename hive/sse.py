"""Server-Sent Events (the WHATWG HTML standard's ``text/event-stream``).

Two levels:

- `EventSourceResource(channel="news")` serves a `hive.pubsub` channel to browsers'
  ``EventSource``: each message becomes an event whose id is the bus's (the same in every
  worker and, through Redis, on every host), and a client that reconnects with
  ``Last-Event-ID`` first gets what it missed that the backlog still holds. When the
  worker drains (a reload) its streams end and the clients reconnect to the new workers,
  missing nothing the backlog holds. A client that falls `QUEUE_LIMIT` events behind is
  dropped in the same way, and comes back for the rest.
- `EventStream(request)` sends events from your own code: ``send(data, event=, id=,
  retry=)``, ``comment()``, ``await drain()`` for backpressure, ``close()``; heartbeat
  comments keep proxies from closing a quiet stream.

Every event is written when it is sent (no buffering), and a stream is never compressed:
`EncodingResourceWrapper` leaves ``text/event-stream`` alone (see hive._encoding).
`format_event` and `format_comment` are the encoder, pure functions.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from typing import Any, Final

from hive.iweb import IRequest
from hive.pubsub import QUEUE_LIMIT, Bus, Message, Subscription, get_bus
from hive.resource import NOT_DONE_YET, NoResource, Resource

__all__ = [
    "CONTENT_TYPE",
    "HEARTBEAT",
    "EventSourceResource",
    "EventStream",
    "format_comment",
    "format_event",
]

CONTENT_TYPE: Final = b"text/event-stream"
#: Seconds of silence after which a stream gets a comment line: proxies and load
#: balancers close idle connections after 60 s or so (nginx's proxy_read_timeout), and
#: the write also tells the server of a client that is gone.
HEARTBEAT: Final = 15.0

_LINE_END = re.compile(r"\r\n|\r|\n")


def format_event(
    data: str | None = None,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """One event, ready to write: ``data`` may have several lines (CR, LF or CRLF).

    ``event`` and ``id`` are single lines (ValueError otherwise; an id may not hold NUL,
    which browsers ignore); ``id=""`` resets the client's last event id. ``retry`` is the
    reconnection delay in milliseconds. A browser dispatches an event only if it has data.
    """
    parts: list[str] = []
    if event is not None:
        _check_line("event", event)
        parts.append(f"event: {event}\n")
    if id is not None:
        _check_line("id", id)
        if "\0" in id:
            raise ValueError("an event id may not hold NUL")
        parts.append(f"id: {id}\n")
    if retry is not None:
        if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
            raise ValueError(f"retry: milliseconds, a non-negative int, got {retry!r}")
        parts.append(f"retry: {retry}\n")
    if data is not None:
        if not isinstance(data, str):
            raise TypeError(f"event data is a str, not {type(data).__name__}")
        if "\n" in data or "\r" in data:
            parts.extend(f"data: {line}\n" for line in _LINE_END.split(data))
        else:
            parts.append(f"data: {data}\n")
    if not parts:
        raise ValueError("an event needs data, an event name, an id or a retry")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def format_comment(text: str = "") -> bytes:
    """Comment lines, which clients ignore: a heartbeat, or a note for a person."""
    return "".join(f":{line}\n" for line in _LINE_END.split(text)).encode("utf-8")


def _check_line(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name}: a str, not {type(value).__name__}")
    if "\n" in value or "\r" in value:
        raise ValueError(f"{name}: one line, without CR or LF")


_HEARTBEAT_BYTES: Final = b":\n\n"


class EventStream:
    """Server-Sent Events over one request: the response stays open until `close`.

    ::

        async def render_GET(self, request):
            stream = EventStream(request)
            for n in range(10):
                stream.send(f"tick {n}", event="tick", id=str(n))
                await stream.drain()   # wait while the client is not reading
                await asyncio.sleep(1)
            stream.close()
            return NOT_DONE_YET

    The head goes out at `start` (at once unless ``start=False``), with Cache-Control
    no-cache and X-Accel-Buffering no (nginx passes the stream on unbuffered).
    ``lastEventId`` is the Last-Event-ID the client sent, or None. A comment is written
    after ``heartbeat`` seconds without a write (None: never). Sending after the client
    went away does nothing; `closed` says so.
    """

    def __init__(
        self,
        request: IRequest,
        *,
        retry: int | None = None,
        heartbeat: float | None = HEARTBEAT,
        start: bool = True,
    ) -> None:
        if heartbeat is not None and heartbeat <= 0:
            raise ValueError(f"heartbeat: seconds, positive, got {heartbeat}")
        self.request = request
        self.retry = retry
        self.heartbeat = heartbeat
        last = request.getHeader(b"last-event-id")
        #: The id of the last event the client saw, from its Last-Event-ID header.
        self.lastEventId: str | None = last.decode("utf-8", "replace") if last else None
        self.started = False
        #: The stream is over: closed here, or the client went away.
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._last_write = 0.0
        self._close_callbacks: list[Any] = []
        request.notifyFinish().add_done_callback(self._ended)
        if start:
            self.start()

    def start(self) -> None:
        """Send the status and headers (and ``retry``), so the client's EventSource opens."""
        if self.started or self.closed:
            return
        self.started = True
        request = self.request
        request.setResponseCode(200)
        request.setHeader(b"content-type", CONTENT_TYPE)
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"x-accel-buffering", b"no")
        request.write(format_event(retry=self.retry) if self.retry is not None else b"")
        self._last_write = self._loop.time()
        if self.heartbeat is not None:
            self._timer = self._loop.call_at(self._last_write + self.heartbeat, self._beat)

    def send(
        self,
        data: str | None = None,
        *,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
    ) -> None:
        """Write one event now (see `format_event`)."""
        self.write(format_event(data, event=event, id=id, retry=retry))

    def comment(self, text: str = "") -> None:
        self.write(format_comment(text))

    def write(self, event: bytes) -> None:
        """Write bytes already formatted as events (`format_event`)."""
        if self.closed:
            return
        if not self.started:
            self.start()
        self.request.write(event)
        self._last_write = self._loop.time()

    @property
    def paused(self) -> bool:
        """The client is not reading what was written: `drain` would wait."""
        return bool(getattr(self.request.channel, "write_paused", False))

    async def drain(self) -> None:
        """Wait until the client reads; ConnectionError if it went away."""
        await self.request.drain()

    def close(self) -> None:
        """End the stream (the response)."""
        if self.closed:
            return
        if not self.started:
            self.start()
        self._stop()
        self.request.finish()

    def notifyClose(self, callback: Any) -> None:
        """Call ``callback()`` when the stream ends, whichever side ends it."""
        if self.closed:
            callback()
        else:
            self._close_callbacks.append(callback)

    def _beat(self) -> None:
        self._timer = None
        if self.closed or self.heartbeat is None:
            return
        due = self._last_write + self.heartbeat
        if self._loop.time() >= due - 0.001:
            self.write(_HEARTBEAT_BYTES)
            due = self._last_write + self.heartbeat
        self._timer = self._loop.call_at(due, self._beat)

    def _ended(self, _future: asyncio.Future[None]) -> None:
        if not _future.cancelled():
            _future.exception()  # a client gone is the usual end, not an error to log
        self._stop()

    def _stop(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            callback()


class EventSourceResource(Resource):
    """Serves a `hive.pubsub` channel as Server-Sent Events.

    Each message is one event: its data the message's text, its id the bus's id, its
    event name ``event`` (None: the default "message"). Override `channelFor` to choose
    the channel per request (None answers 404), and `eventFor` to shape the event.
    ``retry`` (ms) tells clients how soon to reconnect; ``heartbeat`` as in `EventStream`;
    ``limit``: events a client may fall behind before it is dropped (it reconnects and
    gets the rest from the backlog). ``bus``: the process's bus by default.
    """

    isLeaf = True

    def __init__(
        self,
        channel: str | None = None,
        *,
        event: str | None = None,
        retry: int | None = None,
        heartbeat: float | None = HEARTBEAT,
        limit: int = QUEUE_LIMIT,
        bus: Bus | None = None,
    ) -> None:
        super().__init__()
        self.channel = channel
        self.event = event
        self.retry = retry
        self.heartbeat = heartbeat
        self.limit = limit
        self.bus = bus
        # Every stream of this resource gets the same message in turn: format it once.
        self._last: tuple[Message | None, bytes] = (None, b"")

    def channelFor(self, request: IRequest) -> str | None:
        """The channel ``request`` is served; None answers 404."""
        return self.channel

    def eventFor(self, message: Message) -> bytes:
        """The event that carries ``message``, formatted (`format_event`)."""
        return format_event(message.text, event=self.event, id=message.id)

    def render_GET(self, request: IRequest) -> Any:
        channel = self.channelFor(request)
        if channel is None:
            return NoResource().render(request)
        if request.method == b"HEAD":
            request.setHeader(b"content-type", CONTENT_TYPE)
            request.setHeader(b"cache-control", b"no-cache")
            return b""
        stream = EventStream(request, retry=self.retry, heartbeat=self.heartbeat, start=False)
        bus = self.bus if self.bus is not None else get_bus()
        feed = _Feed(self, stream)
        subscription = bus.listen(
            channel,
            feed.message,
            last_id=stream.lastEventId,
            on_close=feed.ended,
            limit=self.limit,
        )
        feed.subscription = subscription
        # The head goes out once the bus has the subscription: a client whose stream is
        # open gets every message published after that.
        subscription.when_ready(stream.start)
        stream.notifyClose(subscription.close)
        return NOT_DONE_YET

    def _event(self, message: Message) -> bytes:
        last, formatted = self._last
        if last is not message:
            formatted = self.eventFor(message)
            self._last = (message, formatted)
        return formatted


class _Feed:
    """One client's stream fed by its subscription: written at once while the client
    reads, queued (up to the resource's limit) while it does not."""

    __slots__ = ("pending", "resource", "stream", "subscription", "task")

    def __init__(self, resource: EventSourceResource, stream: EventStream) -> None:
        self.resource = resource
        self.stream = stream
        self.subscription: Subscription | None = None
        self.pending: deque[Message] | None = None
        self.task: asyncio.Task[None] | None = None

    def message(self, message: Message) -> None:
        stream = self.stream
        if stream.closed:
            return
        pending = self.pending
        if pending is not None:
            if len(pending) >= self.resource.limit:
                if self.subscription is not None:
                    self.subscription.overflowed()
                return
            pending.append(message)
            return
        stream.write(self.resource._event(message))
        if stream.paused:
            self.pending = deque()
            self.task = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        stream = self.stream
        pending = self.pending
        assert pending is not None
        try:
            while True:
                await stream.drain()
                while pending and not stream.paused and not stream.closed:
                    stream.write(self.resource._event(pending.popleft()))
                if stream.closed or (not pending and not stream.paused):
                    break
        except ConnectionError:
            return
        finally:
            self.pending = None
            self.task = None

    def ended(self, error: BaseException | None) -> None:
        # Events still queued are not written: the client's Last-Event-ID is the last it
        # got, and the backlog has the rest when it comes back.
        self.stream.close()
