"""WebSocket servers with the names of ``twisted.web.websocket`` (Twisted 26.10).

Put a `WebSocketResource` in the resource tree; its factory's ``buildProtocol(request)``
makes a protocol for each accepted connection::

    class Echo:
        def negotiationStarted(self, transport): self.transport = transport
        def negotiationFinished(self): pass
        def textMessageReceived(self, message): self.transport.sendTextMessage(message)
        def bytesMessageReceived(self, data): self.transport.sendBytesMessage(data)
        def pongReceived(self, payload): pass
        def connectionLost(self, reason): pass

    class EchoFactory:
        def buildProtocol(self, request): return Echo()

    root.putChild(b"echo", WebSocketResource(EchoFactory()))

A Twisted program ports by its import.  Beyond Twisted's:

- ``await transport.drain()`` waits while the client is not reading;
- the message handlers, ``negotiationFinished`` and ``buildProtocol`` may be ``async def``
  (or return a Deferred): messages are handed over one at a time, in order, and reading
  pauses while a handler is behind by `MAX_QUEUE` messages;
- ``allowedOrigins``: browsers' cross-site WebSocket hijacking is refused with 403 (by
  default, an Origin must name the request's own host; clients that send no Origin, which
  browsers always send, are let in);
- ``subprotocols``: the server's order of preference; none in common is a 400;
- a message size limit (1 MiB by default; larger closes with 1009), idle pings with a
  timeout (20 s and 20 s), permessage-deflate when ``compression=True`` (with 4 KiB
  windows, bounded memory);
- ``buildProtocol`` returning None refuses the connection with 403;
- draining (``hive reload``, recycling, stop) closes open WebSockets with 1001 after
  ``--websocket-drain-timeout``, so clients reconnect to the new workers;
- ``connectionLost`` gets a `WebSocketClosed` (its ``code`` and ``reason``), not a Failure;
- `ChannelFactory` serves a `hive.pubsub` channel: ``WebSocketResource(ChannelFactory("news"))``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from hive._deferred import is_deferred, to_future
from hive.iweb import IRequest
from hive.pubsub import QUEUE_LIMIT, Bus, Message, Subscription, get_bus
from hive.resource import NOT_DONE_YET, Resource, isawaitable
from hive.worker.connection import Driven
from hive.worker.websocket import (
    CloseCode,
    Handshake,
    HandshakeError,
    WebSocketConnection,
    WebSocketLimits,
    accept_headers,
    check_handshake,
    deflate_factory,
    negotiate_extensions,
    offered_subprotocol,
)

__all__ = [
    "MAX_QUEUE",
    "TRY_AGAIN_LATER",
    "ChannelFactory",
    "ChannelProtocol",
    "CloseCode",
    "WebSocketClosed",
    "WebSocketProtocol",
    "WebSocketResource",
    "WebSocketServerFactory",
    "WebSocketTransport",
]

log = logging.getLogger("hive.websocket")

#: Messages held for a protocol whose async handler is still busy; past this, reading
#: pauses (websockets' max_queue is 16 too).
MAX_QUEUE = 16
_DEFAULTS = WebSocketLimits()
# Tasks hive started for handlers, kept until done (the loop holds only weak references).
_RUNNING: set[asyncio.Future[Any]] = set()


def _keep(future: asyncio.Future[Any]) -> asyncio.Future[Any]:
    _RUNNING.add(future)
    future.add_done_callback(_RUNNING.discard)
    return future


class WebSocketTransport(Protocol):
    """What a protocol sends through (Twisted's names, and hive's `drain`)."""

    #: The subprotocol agreed in the handshake, or None.
    subprotocol: str | None

    def sendTextMessage(self, text: str) -> None: ...

    def sendBytesMessage(self, data: bytes) -> None: ...

    def ping(self, payload: bytes = b"") -> None:
        """Send a ping; pongs come to ``pongReceived`` (several pings may get one pong)."""
        ...

    def loseConnection(self, code: int = 1000, reason: str = "") -> None:
        """Close the WebSocket with ``code`` (the closing handshake, then TCP)."""
        ...

    def attachProducer(self, producer: Any) -> None:
        """An IPushProducer, paused and resumed with the client's reading."""
        ...

    def detachProducer(self) -> None: ...

    async def drain(self) -> None:
        """Return once the client reads again; ConnectionError if the WebSocket closed."""
        ...


class WebSocketProtocol(Protocol):
    """What receives a WebSocket's events (Twisted's names); handlers may be async."""

    def negotiationStarted(self, transport: WebSocketTransport) -> None: ...

    def negotiationFinished(self) -> Any: ...

    def textMessageReceived(self, message: str) -> Any: ...

    def bytesMessageReceived(self, data: bytes) -> Any: ...

    def pongReceived(self, payload: bytes) -> Any: ...

    def connectionLost(self, reason: BaseException) -> Any: ...


class WebSocketServerFactory(Protocol):
    """Makes a protocol for a request; None (or an awaitable of None) refuses it."""

    def buildProtocol(self, request: Any) -> Any: ...


class WebSocketClosed(ConnectionError):
    """The WebSocket is over: ``code`` is the client's close code, else the one hive sent,
    else 1006 (the connection ended without a close frame)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class WebSocketResource(Resource):
    """A resource that accepts WebSockets and hands each to ``factory.buildProtocol``.

    ``allowedOrigins``: the Origin values let in (``"https://example.com"``), ``"*"`` for
    any; None (the default) lets in an Origin on the request's own host, and requests
    without Origin.  ``subprotocols`` in order of preference.  ``maxMessageSize`` in bytes;
    ``pingInterval``, ``pingTimeout`` and ``closeTimeout`` in seconds (0 for no pings).
    """

    isLeaf = True

    def __init__(
        self,
        factory: WebSocketServerFactory,
        *,
        allowedOrigins: Sequence[str] | None = None,
        subprotocols: Sequence[str] = (),
        maxMessageSize: int = _DEFAULTS.max_message_size,
        pingInterval: float = _DEFAULTS.ping_interval,
        pingTimeout: float = _DEFAULTS.ping_timeout,
        closeTimeout: float = _DEFAULTS.close_timeout,
        compression: bool = False,
    ) -> None:
        super().__init__()
        self.factory = factory
        self.allowedOrigins = None if allowedOrigins is None else list(allowedOrigins)
        self.subprotocols = list(subprotocols)
        self.compression = compression
        self._limits = WebSocketLimits(
            max_message_size=maxMessageSize,
            ping_interval=pingInterval if pingInterval > 0 else float("inf"),
            ping_timeout=pingTimeout,
            close_timeout=closeTimeout,
        )

    def render_GET(self, request: IRequest) -> Any:
        from hive.server import Request  # a container above the server, as hive.wsgi

        hive_request = cast(Request, request)
        head = hive_request._head
        handshake = check_handshake(head.method, head.http_version, head.headers)
        if isinstance(handshake, HandshakeError):
            return _refuse(request, handshake)
        if not self._origin_allowed(hive_request, handshake.origin):
            return _refuse(
                request,
                HandshakeError(403, f"Origin {handshake.origin} is not allowed here"),
            )
        subprotocol = offered_subprotocol(handshake.subprotocols, self.subprotocols)
        if isinstance(subprotocol, HandshakeError):
            return _refuse(request, subprotocol)
        available = [deflate_factory()] if self.compression else []
        negotiated = negotiate_extensions(handshake.extensions, available)
        if isinstance(negotiated, HandshakeError):
            return _refuse(request, negotiated)
        if not hive_request.channel.can_switch():
            return _refuse(request, HandshakeError(400, "bytes came before the 101"))
        built = self.factory.buildProtocol(request)
        if is_deferred(built):
            built = to_future(built)
        if isawaitable(built):

            async def later() -> None:
                try:
                    protocol = await built
                except Exception as exc:
                    hive_request.processingFailed(exc)
                    return
                self._accept(hive_request, protocol, handshake, subprotocol, negotiated)

            _keep(asyncio.get_running_loop().create_task(later()))
            return NOT_DONE_YET
        self._accept(hive_request, built, handshake, subprotocol, negotiated)
        return NOT_DONE_YET

    def _accept(
        self,
        request: Any,
        protocol: Any,
        handshake: Handshake,
        subprotocol: str | None,
        negotiated: tuple[str | None, list[Any]],
    ) -> None:
        if request._disconnected:
            return
        if protocol is None:
            request.write(_refuse(request, HandshakeError(403, "the application refused it")))
            request.finish()
            return
        if not request.channel.can_switch():  # bytes came while buildProtocol was awaited
            request.write(_refuse(request, HandshakeError(400, "bytes came before the 101")))
            request.finish()
            return
        answer, extensions = negotiated
        drain_timeout = request.channel.limits.websocket_drain_timeout
        limits = dataclasses.replace(self._limits, drain_timeout=drain_timeout)
        # The worker's WorkerStats counts WebSockets; a Site's own stats object may not.
        stats = request.site.stats
        clock = request.channel._clock
        channel: list[_Channel] = []

        def make(transport: Any, now: float) -> Driven:
            connection = WebSocketConnection(
                transport,
                limits,
                now,
                clock=clock,
                extensions=extensions,
                subprotocol=subprotocol,
                stats=stats if hasattr(stats, "websocket_opened") else None,
            )
            channel.append(_Channel(protocol, connection))
            return connection

        request.switch_protocol(accept_headers(handshake, subprotocol, answer), make)
        channel[0].start()

    def _origin_allowed(self, request: Any, origin: str | None) -> bool:
        allowed = self.allowedOrigins
        if allowed is not None and "*" in allowed:
            return True
        if origin is None:
            return True
        if allowed is not None:
            return origin in allowed
        # Same origin, as gorilla/websocket checks it: the Origin's host[:port] is the
        # Host the request was sent to (browsers leave out default ports in both).  The
        # scheme is not compared: behind a TLS proxy the request itself is plain HTTP.
        try:
            netloc = urlsplit(origin).netloc
        except ValueError:
            return False
        host = request.getHeader(b"host")
        return (
            bool(netloc) and host is not None and netloc.lower() == host.decode("latin-1").lower()
        )


def _refuse(request: IRequest, error: HandshakeError) -> bytes:
    request.setResponseCode(error.status)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    for name, value in error.headers:
        request.setHeader(name, value)
    log.info("WebSocket handshake refused (%d): %s", error.status, error.reason)
    return error.reason.encode("utf-8") + b"\n"


class _Channel:
    """A protocol's transport (Twisted's WebSocketTransport) and the connection's handler.

    Messages go to the protocol one at a time: while an async handler runs, later ones
    wait here, and past `MAX_QUEUE` of them the connection stops reading.
    """

    __slots__ = (
        "_busy",
        "_connection",
        "_lost",
        "_producer",
        "_protocol",
        "_queue",
        "_told",
        "_waiters",
        "subprotocol",
    )

    def __init__(self, protocol: Any, connection: WebSocketConnection) -> None:
        self._protocol = protocol
        self._connection = connection
        self.subprotocol = connection.subprotocol
        self._queue: deque[str | bytes] = deque()
        # Busy until `start`: bytes that came with the handshake wait for negotiationStarted.
        self._busy = True
        self._lost: WebSocketClosed | None = None
        self._told = False
        self._producer: Any = None
        self._waiters: list[asyncio.Future[None]] = []
        connection.handler = self

    def start(self) -> None:
        protocol = self._protocol
        try:
            protocol.negotiationStarted(self)
            result = protocol.negotiationFinished()
        except Exception:
            self._failed()
            return
        self._then(result)

    # -- WebSocketTransport -----------------------------------------------------------------

    def sendTextMessage(self, text: str) -> None:
        self._connection.send_text(text)

    def sendBytesMessage(self, data: bytes) -> None:
        self._connection.send_bytes(bytes(data))

    def ping(self, payload: bytes = b"") -> None:
        self._connection.ping(payload)

    def loseConnection(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        self._connection.close(code, reason)

    def attachProducer(self, producer: Any) -> None:
        if self._producer is not None:
            raise RuntimeError("a producer is already attached")
        self._producer = producer
        if self._connection.write_paused:
            producer.pauseProducing()

    def detachProducer(self) -> None:
        self._producer = None

    async def drain(self) -> None:
        if self._lost is not None or not self._connection.open:
            raise ConnectionError("the WebSocket is closed")
        if not self._connection.write_paused:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    # -- WebSocketHandler ---------------------------------------------------------------------

    def message_received(self, message: str | bytes) -> None:
        if self._busy:
            self._queue.append(message)
            if len(self._queue) >= MAX_QUEUE:
                self._connection.pause_reading()
            return
        self._handle(message)

    def pong_received(self, payload: bytes) -> None:
        try:
            self._protocol.pongReceived(payload)
        except Exception:
            self._failed()

    def writing_paused(self) -> None:
        if self._producer is not None:
            self._producer.pauseProducing()

    def writing_resumed(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self._producer is not None:
            self._producer.resumeProducing()

    def closed(self, code: int, reason: str) -> None:
        self._lost = lost = WebSocketClosed(code, reason)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionError(str(lost)))
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.stopProducing()
        if not self._busy:
            self._tell_lost()

    # -- inside ------------------------------------------------------------------------------

    def _handle(self, message: str | bytes) -> None:
        protocol = self._protocol
        try:
            if type(message) is str:
                result = protocol.textMessageReceived(message)
            else:
                result = protocol.bytesMessageReceived(message)
        except Exception:
            self._failed()
            return
        if result is not None:
            self._busy = True
            self._then(result)

    def _then(self, result: Any) -> None:
        """Go on with the queue once ``result`` (a handler's return value) is done."""
        if is_deferred(result):
            result = to_future(result)
        if not isawaitable(result):
            self._next()
            return
        future = _keep(asyncio.ensure_future(cast(Awaitable[Any], result)))
        future.add_done_callback(self._handler_done)

    def _handler_done(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.error("error in a WebSocket handler", exc_info=future.exception())
            self._connection.close(CloseCode.INTERNAL_ERROR, "")
        self._next()

    def _next(self) -> None:
        self._busy = False
        queue = self._queue
        while queue and not self._busy:
            if len(queue) == MAX_QUEUE // 2:
                self._connection.resume_reading()
            self._handle(queue.popleft())
        if not self._busy and self._lost is not None:
            self._tell_lost()

    def _tell_lost(self) -> None:
        lost = self._lost
        if lost is None or self._told:
            return
        self._told = True
        self._queue.clear()
        protocol = self._protocol
        try:
            result = protocol.connectionLost(lost)
        except Exception:
            log.exception("error in connectionLost")
            return
        if is_deferred(result):
            result = to_future(result)
        if isawaitable(result):
            _keep(asyncio.ensure_future(cast(Awaitable[Any], result))).add_done_callback(
                _log_failure
            )

    def _failed(self) -> None:
        log.exception("error in a WebSocket handler; closing it with 1011")
        self._connection.close(CloseCode.INTERNAL_ERROR, "")
        self._busy = False


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("error in connectionLost", exc_info=future.exception())


# -- a bus channel over WebSockets ------------------------------------------------------------

#: The close code of a client dropped for reading too slowly: "try again later" (RFC 6455's
#: registry), and it may come back for what it missed (``?last_id=``).
TRY_AGAIN_LATER = 1013


class ChannelFactory:
    """Serves a `hive.pubsub` channel: ``WebSocketResource(ChannelFactory("news"))``.

    Each message published on the channel goes to the client as it was published (a str as
    a text message, bytes as a binary one; override `ChannelProtocol.messageFor` to shape
    it); what the client sends is ignored. A ``last_id`` query argument replays what the
    backlog holds after that id. A client that falls ``limit`` messages behind is closed
    with 1013 (`TRY_AGAIN_LATER`); when the worker drains, with 1001, so that it reconnects
    to the new workers. Override `channelFor` to pick the channel per request (None: 403),
    and set ``protocol`` to a `ChannelProtocol` subclass to shape what is sent.
    """

    protocol: type[ChannelProtocol]

    def __init__(
        self, channel: str | None = None, *, limit: int = QUEUE_LIMIT, bus: Bus | None = None
    ) -> None:
        self.channel = channel
        self.limit = limit
        self.bus = bus

    def channelFor(self, request: Any) -> str | None:
        return self.channel

    def buildProtocol(self, request: Any) -> ChannelProtocol | None:
        channel = self.channelFor(request)
        if channel is None:
            return None
        last = request.args.get(b"last_id")
        return self.protocol(self, channel, last[0].decode("ascii", "replace") if last else None)


class ChannelProtocol:
    """One client of a `ChannelFactory`: its own producer, so it knows when to queue."""

    def __init__(self, factory: ChannelFactory, channel: str, last_id: str | None) -> None:
        self.factory = factory
        self.channel = channel
        self.last_id = last_id
        self.transport: WebSocketTransport | None = None
        self.subscription: Subscription | None = None
        self._paused = False
        self._pending: deque[Message] = deque()

    def messageFor(self, message: Message) -> str | bytes:
        """What the client is sent for a `hive.pubsub.Message`: its data, by default."""
        return message.data

    # -- the WebSocket protocol ---------------------------------------------------------------

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport
        transport.attachProducer(self)

    def negotiationFinished(self) -> None:
        bus = self.factory.bus if self.factory.bus is not None else get_bus()
        self.subscription = bus.listen(
            self.channel,
            self._message,
            last_id=self.last_id,
            on_close=self._ended,
            limit=self.factory.limit,
        )

    def textMessageReceived(self, message: str) -> None:
        pass

    def bytesMessageReceived(self, data: bytes) -> None:
        pass

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: BaseException) -> None:
        self.transport = None
        if self.subscription is not None:
            self.subscription.close()

    # -- the producer the transport pauses and resumes ----------------------------------------

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        while self._pending and not self._paused and self.transport is not None:
            self._send(self._pending.popleft())

    def stopProducing(self) -> None:
        self._pending.clear()

    # -- from the bus --------------------------------------------------------------------------

    def _message(self, message: Message) -> None:
        if self.transport is None:
            return
        if self._paused or self._pending:
            if len(self._pending) >= self.factory.limit:
                if self.subscription is not None:
                    self.subscription.overflowed()
                return
            self._pending.append(message)
            return
        self._send(message)

    def _send(self, message: Message) -> None:
        assert self.transport is not None
        data = self.messageFor(message)
        if isinstance(data, str):
            self.transport.sendTextMessage(data)
        else:
            self.transport.sendBytesMessage(data)

    def _ended(self, error: BaseException | None) -> None:
        transport = self.transport
        if transport is None:
            return
        if error is not None:
            transport.loseConnection(TRY_AGAIN_LATER, "too slow: come back with last_id")
        else:
            transport.loseConnection(CloseCode.GOING_AWAY, "server restarting")


ChannelFactory.protocol = ChannelProtocol
