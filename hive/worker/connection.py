"""One HTTP/1.1 connection, sans-IO: keep-alive, pipelining, deadlines, limits, backpressure.

The driver (hive.worker.serve) hands this object the bytes it reads and the time (and a
clock, read when the application finishes a response later); the object parses them with
an engine, collects each request's body, hands complete requests to a handler, and writes
responses through a `Transport` (an asyncio transport, or a list in tests).  It never
touches a socket or the event loop.  A handler may instead take a request at its head
and be given its body as it arrives (`RequestHandler.body_stream`): the exchange then
runs while the body comes, reading paused while the body's reader is behind.

One exchange at a time: a pipelined request waits until the response before it is
finished, so responses leave in the order requests came.  The responses to pipelined
requests answered on the spot go out in one write (`_gather`): sixteen small sends for
sixteen pipelined requests cost as many system calls, and wrk (the benchmark's client)
answered them with one-second stalls on a share of its connections.  While an exchange is under way,
reading stops once `max_pipeline_bytes` more have arrived, and while the client does not
read, the exchange is told to pause (`writing_paused`): memory per connection stays bounded.

Deadlines are plain numbers compared to `now` in `check_deadlines`, which the driver calls
about once a second for every connection:

    waiting for      deadline                       on expiry
    a request        keep_alive_timeout after idle  close quietly
    the rest of a    head_timeout after its first   408, close
      request head     byte
    body bytes       body_timeout after the last    408, close
    the client to    send_timeout after writing     abort
      read             paused
    an answer, once  HALF_CLOSE_GRACE after the      the exchange is abandoned
      the client       client's FIN                    (connectionLost), close
      closed its side

The client's FIN (end of input) while an exchange is under way.  A browser that leaves,
a proxy that gives up, a client that times out: each closes its socket, and a server
sees the same FIN as from a client that only shut down its sending side and still
reads.  Twisted (HTTPChannel is not half-closeable), uvicorn (no ``eof_received``: the
transport closes) and nginx (``ngx_http_test_reading``: 499) all take the FIN for the
client being gone.  hive does too, so a long poll or a stream is told at once
(``notifyFinish()`` fails, the producer is stopped, the access log says 499), with one
allowance for HTTP/1.0-style clients that send a request, ``shutdown(SHUT_WR)`` and wait:

- a response being streamed (its head is out, its end is not) is abandoned at once:
  a stream's client going away is the usual reason for its FIN;
- a request whose answer has not begun (and requests pipelined behind it) is answered if
  the answer is complete within `HALF_CLOSE_GRACE`; what is still under way then is
  abandoned.  Every ordinary render (synchronous, or a quick await) is done by then; a
  long poll is not, and is told within the grace;
- whatever was already written is flushed before the close (``transport.close()``).

Upgrade.  Once an exchange has answered 101 (`switch_protocol`), the connection hands its
transport to the new protocol's sans-IO object (hive.worker.websocket); the driver is told
through ``on_switch`` and feeds that object from then on.
"""

from __future__ import annotations

import io
import logging
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, BinaryIO, Protocol, cast

from mypy_extensions import mypyc_attr

from hive.engine import (
    BodyData,
    EndOfMessage,
    Engine,
    Event,
    ProtocolError,
    RequestHead,
    ResponsePlan,
    header_lines,
    plan_response,
    status_line,
    usual_framing,
)
from hive.http import RESPONSES


def _asks_upgrade(head: RequestHead) -> bool:
    return any(name == b"upgrade" for name, _value in head.headers)


__all__ = [
    "Connection",
    "ConnectionLimits",
    "Driven",
    "Exchange",
    "RequestHandler",
    "Transport",
]

log = logging.getLogger("hive.connection")


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Limits and timeouts for one connection; times in seconds."""

    #: Largest request body; a larger Content-Length gets 413 before the body is read.
    #: 64 MiB: nginx's 1 MiB default is too small for an application server, gunicorn has none.
    max_body_size: int = 64 * 1024 * 1024
    #: Bodies up to this size stay in memory; larger ones spool to a temporary file.
    spool_threshold: int = 1024 * 1024
    #: Bytes of further pipelined requests read ahead while a response is under way.
    max_pipeline_bytes: int = 64 * 1024
    #: From the first byte of a request head to its end (nginx: client_header_timeout 60 s).
    head_timeout: float = 10.0
    #: Between two reads of a request body (nginx: client_body_timeout 60 s).
    body_timeout: float = 30.0
    #: An idle keep-alive connection is closed after this (nginx 75 s, gunicorn 2 s).
    keep_alive_timeout: float = 15.0
    #: A client that reads nothing of a paused response for this long is cut off (nginx 60 s).
    send_timeout: float = 60.0
    #: Draining, an open WebSocket is closed with 1001 ("going away") after this long, so
    #: that its client reconnects to a new worker (--websocket-drain-timeout).
    websocket_drain_timeout: float = 5.0


class Transport(Protocol):
    """What a connection writes through: the subset of asyncio.Transport it uses."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class Exchange(Protocol):
    """A request being answered, as the connection sees it (hive.server.Request)."""

    def connectionLost(self, reason: BaseException) -> None:
        """The client went away before the response was finished."""
        ...

    def writing_paused(self) -> None:
        """The client is not reading; stop writing until `writing_resumed`."""
        ...

    def writing_resumed(self) -> None: ...


class BodySink(Protocol):
    """Where a streamed request body goes as it arrives (hive.worker.body.RequestBody)."""

    def feed(self, data: bytes) -> None: ...
    def end(self) -> None: ...
    def fail(self, error: BaseException) -> None: ...


class RequestHandler(Protocol):
    """Starts answering requests (hive.server.Site)."""

    def __call__(
        self, head: RequestHead, body: BinaryIO | BodySink, channel: Connection
    ) -> Exchange:
        """Start answering ``head``; ``body`` is the whole body, or the sink from
        `body_stream` that receives it while the exchange is under way."""
        ...

    def body_stream(self, head: RequestHead, channel: Connection) -> BodySink | None:
        """A sink for the body of ``head`` (which has a Content-Length) if the request is to
        be answered while its body arrives, or None to receive the body whole first."""
        ...


class Driven(Protocol):
    """What the driver feeds: a `Connection`, or the protocol one switched to (a
    hive.worker.websocket.WebSocketConnection after a 101)."""

    transport: Any

    def data_received(self, data: bytes, now: float) -> None: ...
    def eof_received(self, now: float) -> bool: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...
    def pause_writing(self, now: float) -> None: ...
    def resume_writing(self) -> None: ...
    def check_deadlines(self, now: float) -> None: ...
    def drain(self, now: float) -> None: ...

    @property
    def deadline(self) -> float: ...

    @property
    def idle(self) -> bool: ...


class _Wait(Enum):
    IDLE = "idle"
    HEAD = "head"
    BODY = "body"
    EXCHANGE = "exchange"
    CLOSED = "closed"


@mypyc_attr(native_class=False)  # compiled (hive._compiled): a builtin base
class ConnectionLost(ConnectionError):
    """The client closed the connection before the response was finished."""


_NO_DEADLINE = float("inf")
#: After the client's FIN, an answer not yet begun has this long to be complete (above).
HALF_CLOSE_GRACE = 0.5
#: How long an idle connection may still bring a request once its worker drains.
DRAIN_IDLE_GRACE = 1.0
#: Bodies up to this size are joined with the head into one write; larger ones are not copied.
_JOIN_LIMIT = 64 * 1024
#: A response that finishes before its streamed request body keeps the connection if at most
#: this much of the body is still to come (read and dropped); otherwise it closes it.
DISCARD_LIMIT = 1024 * 1024
_IDLE_HEAD = RequestHead(b"GET", b"/", b"1.1", [], False, False, 0)


class Connection:
    """The server side of one HTTP/1.1 connection."""

    def __init__(
        self,
        engine: Engine,
        handler: RequestHandler,
        transport: Transport,
        limits: ConnectionLimits,
        now: float,
        *,
        clock: Callable[[], float],
        peer: Any = None,
        host: Any = None,
        secure: bool = False,
        on_switch: Callable[[Any], None] | None = None,
    ) -> None:
        #: The client's and the server's address (hive.address objects).
        self.peer = peer
        self.host = host
        #: The connection came over TLS.
        self.secure = secure
        self.engine = engine
        self.handler = handler
        self.transport = transport
        self.limits = limits
        self._clock = clock
        # Whether the engine may keep requests back until next_cycle (h11 does).
        self._holds_back: bool = getattr(engine, "holds_back", True)
        self._pending: deque[Event] = deque()
        # Every attribute is set here: with class defaults instead, set on the instance
        # later, the hot path measured 1-1.5 us slower per request (CPython 3.11).
        self._wait = _Wait.IDLE
        self._deadline = now + limits.keep_alive_timeout
        self._head: RequestHead | None = None
        self._body: BinaryIO | None = None
        self._body_size = 0
        # A body streamed to the exchange while it is under way, or being dropped after it.
        self._sink: BodySink | None = None
        self._discarding = False
        self._continue_due = False
        self._exchange: Exchange | None = None
        self._plan: ResponsePlan | None = None
        self._remaining: int | None = None
        self._read_ahead = 0
        self._reading = True
        self._write_paused = False
        self._closing = False
        self._peer_eof = False
        # When what is under way is given up after the client's FIN; inf before one.
        self._gone_at = _NO_DEADLINE
        self._processing = False
        # Raw bytes that came after an upgrade request, for the protocol switched to.
        self._upgrade_bytes: bytearray | None = None
        # While pipelined requests are answered on the spot: their responses' bytes.
        self._gather: list[bytes] | None = None
        self._on_switch = on_switch
        #: Requests answered on this connection.
        self.requests = 0

    # -- from the driver ---------------------------------------------------------------

    def data_received(self, data: bytes, now: float) -> None:
        """Bytes arrived from the client."""
        wait = self._wait
        if wait is _Wait.IDLE and not self._pending:
            events = self.engine.feed(data)
            if (
                len(events) == 2
                and type(events[0]) is RequestHead
                and events[0].content_length == 0
            ):
                # The usual case, a whole request without a body in one read: straight on.
                self._head = head = events[0]
                self._begin_exchange(head, io.BytesIO())
                return
            self._wait = _Wait.HEAD
            self._deadline = now + self.limits.head_timeout
            self._pending.extend(events)
            self._process(now)
            return
        if wait is _Wait.CLOSED:
            return
        if wait is _Wait.IDLE:
            self._wait = _Wait.HEAD
            self._deadline = now + self.limits.head_timeout
        elif wait is _Wait.BODY:
            self._deadline = now + self.limits.body_timeout
        elif wait is _Wait.EXCHANGE:
            if self._sink is not None:
                if not self._write_paused:
                    self._deadline = now + self.limits.body_timeout
            else:
                self._read_ahead += len(data)
                if self._read_ahead > self.limits.max_pipeline_bytes:
                    self._pause_reading()
                upgrading = self._head
                if upgrading is not None and _asks_upgrade(upgrading):
                    # The new protocol's first bytes, if the exchange switches to it.
                    if self._upgrade_bytes is None:
                        self._upgrade_bytes = bytearray()
                    self._upgrade_bytes += data
                    return
        self._pending.extend(self.engine.feed(data))
        self._process(now)

    def eof_received(self, now: float) -> bool:
        """The client closed its side; return True to keep ours open for an answer.

        See the module docstring: a stream under way is abandoned, an answer not begun
        has `HALF_CLOSE_GRACE` (the `deadline`) to be complete.
        """
        self._peer_eof = True
        self._fail_body("the client closed the connection before the whole body")
        if self._wait is _Wait.EXCHANGE and self._plan is not None:
            self._abandon("the client closed the connection during the response")
            return False
        if self._wait is _Wait.EXCHANGE or self._pending or self.engine.holds_input():
            self._gone_at = now + HALF_CLOSE_GRACE
            self._deadline = min(self._deadline, self._gone_at)
            return True
        self._close()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        """The transport is closed; whatever was under way is abandoned."""
        self._wait = _Wait.CLOSED
        self._deadline = _NO_DEADLINE
        self._pending.clear()
        self._drop_body()
        exchange, self._exchange = self._exchange, None
        self._fail_body("connection closed by client")
        if exchange is not None:
            exchange.connectionLost(exc or ConnectionLost("connection closed by client"))

    def pause_writing(self, now: float) -> None:
        """The transport's buffer is full."""
        self._write_paused = True
        if self._wait is _Wait.EXCHANGE:
            self._deadline = min(now + self.limits.send_timeout, self._gone_at)
            if self._exchange is not None:
                self._exchange.writing_paused()

    def resume_writing(self) -> None:
        """The transport's buffer drained."""
        self._write_paused = False
        if self._wait is _Wait.EXCHANGE:
            self._deadline = self._exchange_deadline(self._clock())
            if self._exchange is not None:
                self._exchange.writing_resumed()

    def check_deadlines(self, now: float) -> None:
        """Act on an expired deadline."""
        if now < self._deadline:
            return
        wait = self._wait
        if wait is _Wait.IDLE or (wait is _Wait.BODY and self._discarding):
            self._close()
        elif wait is _Wait.HEAD or wait is _Wait.BODY:
            self._send_error(408)
        elif wait is _Wait.EXCHANGE and now >= self._gone_at:
            self._abandon("the client closed the connection before the answer")
        elif wait is _Wait.EXCHANGE and self._sink is not None and not self._write_paused:
            log.info("no request body bytes for %.0f s; closing", self.limits.body_timeout)
            self._fail_body("the client stopped sending the body")
            self.abort_response()
        elif wait is _Wait.EXCHANGE:
            log.info("client read nothing for %.0f s; closing", self.limits.send_timeout)
            self._wait = _Wait.CLOSED
            self._deadline = _NO_DEADLINE
            self._flush()
            self.transport.abort()

    def drain(self, now: float) -> None:
        """Finish what is under way and close; an idle connection is closed shortly.

        Closing an idle keep-alive connection at once races with a request the client may
        be sending on it right now, which the client would see fail.  So an idle connection
        gets `DRAIN_IDLE_GRACE` seconds in which a request is still answered (with
        ``Connection: close``), and is closed after that.
        """
        self._closing = True
        if self._wait is _Wait.IDLE and not self._pending:
            self._deadline = min(self._deadline, now + DRAIN_IDLE_GRACE)

    @property
    def deadline(self) -> float:
        """When `check_deadlines` next has something to do (inf for never); a driver that
        sweeps once a second may call it sooner for a deadline due within the second."""
        return self._deadline

    @property
    def idle(self) -> bool:
        """No request is being received or answered."""
        return self._wait is _Wait.IDLE

    @property
    def write_paused(self) -> bool:
        return self._write_paused

    @property
    def body_remaining(self) -> int | None:
        """Body bytes still due under the declared Content-Length; None without one."""
        return self._remaining

    def can_sendfile(self) -> bool:
        """Whether body bytes may go to the socket around this object (``os.sendfile``):
        plain TCP, a body of declared length under way, the connection open, and no
        gathered bytes to go before them."""
        plan = self._plan
        return (
            not self.secure
            and not self._gather
            and self._wait is _Wait.EXCHANGE
            and plan is not None
            and plan.body_allowed
            and not plan.chunked
            and bool(self._remaining)
        )

    def body_sent_elsewhere(self, count: int) -> None:
        """``count`` body bytes went to the socket without this object (sendfile)."""
        remaining = self._remaining
        if remaining is not None:
            if count > remaining:
                log.error("sendfile went past the Content-Length")
            self._remaining = max(remaining - count, 0)

    def pause_body(self) -> None:
        """The streamed body's reader is behind: stop reading until `resume_body`."""
        if self._sink is not None:
            self._pause_reading()
            if not self._write_paused:
                self._deadline = _NO_DEADLINE

    def resume_body(self) -> None:
        """The streamed body's reader caught up."""
        if self._sink is not None and not self._reading:
            self._reading = True
            self.transport.resume_reading()
            if not self._write_paused:
                self._deadline = self._clock() + self.limits.body_timeout

    def continue_body(self) -> None:
        """The streamed body is being read: a client waiting for 100 Continue gets it."""
        if self._continue_due and self._sink is not None and self._wait is _Wait.EXCHANGE:
            self._continue_due = False
            self._write(self.engine.informational(100, b"Continue"))

    # -- parsing -------------------------------------------------------------------------

    def _process(self, now: float) -> None:
        if self._processing:
            return
        self._processing = True
        # Pipelined requests answered on the spot: their responses go out in one write.
        gathering = self._gather is None
        if gathering:
            self._gather = []
        try:
            pending = self._pending
            while pending:
                wait = self._wait
                if wait is _Wait.EXCHANGE:
                    # Only the rest of a streamed body goes on while an exchange is under way.
                    if self._sink is None or type(pending[0]) is RequestHead:
                        break
                elif wait is _Wait.CLOSED:
                    break
                event = pending.popleft()
                if type(event) is RequestHead:
                    self._start_request(event, now)
                elif type(event) is BodyData:
                    self._receive_body(event.data)
                elif type(event) is EndOfMessage:
                    self._end_body(now)
                elif type(event) is ProtocolError and self._sink is not None:
                    # Not for a Content-Length body, the only kind streamed; kept safe anyway.
                    self._fail_body(f"bad request body: {event.reason}")
                    self._closing = True
                elif type(event) is ProtocolError:
                    log.debug("protocol error: %s", event.reason)
                    self._send_error(event.status)
        finally:
            self._processing = False
            if gathering:
                self._flush()

    def _start_request(self, head: RequestHead, now: float) -> None:
        self._head = head
        length = head.content_length
        if length is not None and length > self.limits.max_body_size:
            self._send_error(413)
            return
        self._body_size = 0
        if length == 0:
            self._body = io.BytesIO()
            return
        if length is not None:
            sink = self.handler.body_stream(head, self)
            if sink is not None:
                self._sink = sink
                self._continue_due = head.expect_continue and not self._pending
                self._begin_exchange(head, sink)
                if self._sink is not None and self._wait is _Wait.EXCHANGE:
                    self._deadline = self._exchange_deadline(now)
                return
        if length is not None and length <= self.limits.spool_threshold:
            self._body = io.BytesIO()
        else:
            spooled = tempfile.SpooledTemporaryFile(max_size=self.limits.spool_threshold)  # noqa: SIM115
            self._body = cast(BinaryIO, spooled)
        self._wait = _Wait.BODY
        self._deadline = now + self.limits.body_timeout
        if head.expect_continue and not self._pending:
            self._write(self.engine.informational(100, b"Continue"))

    def _receive_body(self, data: bytes) -> None:
        sink = self._sink
        if sink is not None:
            self._body_size += len(data)
            sink.feed(data)
            return
        if self._discarding:
            return
        self._body_size += len(data)
        if self._body_size > self.limits.max_body_size:
            self._send_error(413)
            return
        assert self._body is not None
        self._body.write(data)

    def _end_body(self, now: float) -> None:
        sink = self._sink
        if sink is not None:
            self._sink = None
            self._continue_due = False
            sink.end()
        elif self._discarding:
            self._discarding = False
            self._next_request(now)
        else:
            head, body = self._head, self._body
            assert head is not None and body is not None
            self._body = None
            body.seek(0)
            self._begin_exchange(head, body)

    def _begin_exchange(self, head: RequestHead, body: BinaryIO | BodySink) -> None:
        self._wait = _Wait.EXCHANGE
        self._deadline = self._gone_at
        self._read_ahead = 0
        self.requests += 1
        exchange = self.handler(head, body, self)
        if self._wait is _Wait.EXCHANGE and self._head is head:
            self._exchange = exchange
            if self._write_paused:
                exchange.writing_paused()

    # -- responding (called by the exchange) ----------------------------------------------

    def send_head(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        content_length: int | None,
        close: bool = False,
    ) -> bool:
        """Send the status line and headers; return whether a body may follow.

        ``headers`` must not carry Content-Length, Transfer-Encoding or Connection:
        framing is decided here from ``content_length`` and ``close``.
        """
        plan = self._plan_response(status, reason, headers, content_length, close)
        self._remaining = plan.content_length if plan.body_allowed else None
        if self._wait is not _Wait.CLOSED:
            self._write(self.engine.start_response(plan))
        return plan.body_allowed

    def _plan_response(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        content_length: int | None,
        close: bool,
    ) -> ResponsePlan:
        head = self._head
        assert head is not None and self._plan is None
        closing = close or self._server_closes()
        if self._sink is not None:
            # Answered before the body is in: drop a short rest, or close rather than read
            # a long one (or one the client still waits for 100 Continue to send).
            left = (head.content_length or 0) - self._body_size
            closing = closing or self._continue_due or left > DISCARD_LIMIT
            self._continue_due = False
        plan = plan_response(head, status, reason, headers, content_length, closing=closing)
        self._plan = plan
        return plan

    def send_body(self, data: bytes) -> None:
        """Send a piece of the body; past a declared Content-Length, the rest is dropped."""
        plan = self._plan
        assert plan is not None
        if not plan.body_allowed or not data or self._wait is _Wait.CLOSED:
            return
        remaining = self._remaining
        if remaining is not None:
            if len(data) > remaining:
                log.error("response body longer than its Content-Length; extra bytes dropped")
                data = data[:remaining]
                if not data:
                    return
            self._remaining = remaining - len(data)
        self._write(self.engine.body(data))

    def respond(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        close: bool = False,
    ) -> None:
        """Send a whole response at once: one write for head, body and end."""
        plan = self._plan_response(status, reason, headers, len(body), close)
        if self._wait is _Wait.CLOSED:
            self._plan = None
            self._exchange = None
            return
        engine = self.engine
        head = engine.start_response(plan)
        if not plan.body_allowed or not body:
            self._write(head + engine.end_response())
        elif len(body) <= _JOIN_LIMIT:
            self._write(head + engine.body(body) + engine.end_response())
        else:
            self._write(head)
            self._write(engine.body(body))
            self._write(engine.end_response())
        self._after_response(plan.keep_alive, self._clock())

    def respond_whole(self, status: int, head: bytes, body: bytes) -> bool:
        """Send a whole response in the usual framing, if it applies; else return False.

        ``head`` is the status line and the headers, each line ending in CRLF, with no
        Content-Length, Transfer-Encoding or Connection.  The usual framing, which
        `plan_response` would choose too: a keep-alive HTTP/1.1 exchange the server does
        not close, not HEAD, a status with a body: Content-Length, one write.  Anything
        else is the caller's to send with `respond`.
        """
        request = self._head
        if (
            request is None
            or self._wait is not _Wait.EXCHANGE
            or self._plan is not None
            or self._sink is not None
            or not usual_framing(request, status, self._server_closes())
        ):
            return False
        if len(body) <= _JOIN_LIMIT:
            self._write(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body))
        else:
            self._write(b"%sContent-Length: %d\r\n\r\n" % (head, len(body)))
            self._write(body)
        self._after_response(True, self._clock())
        return True

    def finish_response(self) -> None:
        """The response is complete: go on with the next request or close."""
        plan = self._plan
        assert plan is not None
        if self._wait is _Wait.CLOSED:
            self._plan = None
            self._exchange = None
            return
        if self._remaining:
            # Fewer bytes than declared: the client cannot find the next response's start.
            log.error("response body shorter than its Content-Length; closing the connection")
            self._plan = None
            self._exchange = None
            self._close()
            return
        self._write(self.engine.end_response())
        self._after_response(plan.keep_alive, self._clock())

    def _after_response(self, keep_alive: bool, now: float) -> None:
        self._plan = None
        self._exchange = None
        if not keep_alive:
            self._close()
            return
        if self._fail_body("the response was complete before the body"):
            # The rest of the body is read and dropped before the next request.
            self._discarding = True
            self._wait = _Wait.BODY
            self._deadline = now + self.limits.body_timeout
            if not self._reading:
                self._reading = True
                self.transport.resume_reading()
            self._process(now)
            return
        self._next_request(now)

    def _next_request(self, now: float) -> None:
        self._head = None
        if self._holds_back:
            self._pending.extend(self.engine.next_cycle())
        kept, self._upgrade_bytes = self._upgrade_bytes, None
        if kept:
            # An Upgrade the resource did not take (curl's h2c, say): HTTP goes on.
            self._pending.extend(self.engine.feed(bytes(kept)))
        if self._peer_eof and not self._pending:
            self._close()
            return
        self._wait = _Wait.IDLE
        self._deadline = now + self.limits.keep_alive_timeout
        if not self._reading:
            self._reading = True
            self.transport.resume_reading()
        if self._closing and not self._pending:
            # Draining: responses already said Connection: close.
            self._close()
            return
        if self._pending:
            self._process(now)

    def switch_protocol(
        self, headers: list[tuple[bytes, bytes]], make: Callable[[Any, float], Driven]
    ) -> Driven:
        """Answer the exchange with 101 and ``headers``, and hand the transport over.

        ``make(transport, now)`` builds the sans-IO object of the new protocol; the driver
        is told (``on_switch``) and feeds it from then on.  Bytes the client sent after the
        upgrade request are its first input.  This connection is done with the transport.
        """
        head = self._head
        assert self._wait is _Wait.EXCHANGE and self._plan is None and head is not None
        if self._pending:
            raise ValueError("the client sent more after the upgrade request")
        now = self._clock()
        self._flush()  # the responses before it, then the 101, then the new protocol's
        self._write(status_line(101, b"Switching Protocols") + header_lines(headers) + b"\r\n")
        early, self._upgrade_bytes = self._upgrade_bytes, None
        self._wait = _Wait.CLOSED
        self._deadline = _NO_DEADLINE
        self._exchange = None
        switched = make(self.transport, now)
        if self._on_switch is not None:
            self._on_switch(switched)
        if not self._reading:
            self._reading = True
            self.transport.resume_reading()
        if early:
            switched.data_received(bytes(early), now)
        if self._peer_eof and not switched.eof_received(now):
            self.transport.close()
        return switched

    def abort_response(self) -> None:
        """The response cannot be completed (an error after the head was sent): cut it off."""
        self._plan = None
        self._exchange = None
        if self._wait is not _Wait.CLOSED:
            self._wait = _Wait.CLOSED
            self._deadline = _NO_DEADLINE
            self._flush()
            self.transport.abort()

    # -- helpers ---------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        gather = self._gather
        if gather is None:
            self.transport.write(data)
        else:
            gather.append(data)

    def _flush(self) -> None:
        """Write what `_gather` holds, in one write; writes go straight out again."""
        gather, self._gather = self._gather, None
        if gather:
            self.transport.write(gather[0] if len(gather) == 1 else b"".join(gather))

    def can_switch(self) -> bool:
        """Whether the exchange under way may still answer 101 (`switch_protocol`)."""
        return self._wait is _Wait.EXCHANGE and self._plan is None and not self._pending

    def _send_error(self, status: int) -> None:
        """Answer ``status`` with a short page and close: the connection's own errors."""
        self._drop_body()
        self._pending.clear()
        reason = RESPONSES.get(status, b"Error")
        page = b"<html><head><title>%d %s</title></head><body><h1>%d %s</h1></body></html>\n" % (
            status,
            reason,
            status,
            reason,
        )
        headers = [(b"Content-Type", b"text/html; charset=utf-8")]
        head = self._head if self._head is not None else _IDLE_HEAD
        plan = plan_response(head, status, reason, headers, len(page), closing=True)
        data = self.engine.start_response(plan)
        if plan.body_allowed:
            data += self.engine.body(page)
        self._write(data)
        self._close()

    def _fail_body(self, reason: str) -> bool:
        """A streamed body will not be read to its end; return whether there was one."""
        sink, self._sink = self._sink, None
        if sink is None:
            return False
        sink.fail(ConnectionLost(reason))
        return True

    def _server_closes(self) -> bool:
        """Whether this connection ends after the response under way, whatever it says:
        draining, or the client closed its side and sent nothing more."""
        return self._closing or (
            self._peer_eof and not self._pending and not self.engine.holds_input()
        )

    def _exchange_deadline(self, now: float) -> float:
        """While an exchange is under way: body bytes are due if a streamed body is read;
        after the client's FIN, the answer is due by `_gone_at`."""
        if self._sink is not None and self._reading:
            return min(now + self.limits.body_timeout, self._gone_at)
        return self._gone_at

    def _abandon(self, reason: str) -> None:
        """The client is gone: the exchange is told, what was written is flushed, close."""
        self._pending.clear()
        self._plan = None
        exchange, self._exchange = self._exchange, None
        self._close()
        if exchange is not None:
            exchange.connectionLost(ConnectionLost(reason))

    def _pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self.transport.pause_reading()

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def _close(self) -> None:
        if self._wait is not _Wait.CLOSED:
            self._wait = _Wait.CLOSED
            self._deadline = _NO_DEADLINE
            self._drop_body()
            self._flush()
            self.transport.close()
