"""One WebSocket connection, sans-IO: the handshake's rules, frames, deadlines, backpressure.

After a valid Upgrade and the 101 (`hive.worker.connection.Connection.switch_protocol`),
the HTTP connection hands its transport to a `WebSocketConnection`, and the driver
(hive.worker.serve) feeds that object instead.  Like the HTTP connection it never touches
a socket or the loop: it takes bytes and the time, writes through the `Transport`, and
tells its `WebSocketHandler` (hive.websocket's transport for Twisted-style protocols; an
ASGI ``websocket`` cycle) of messages, pongs, pauses and the end.

The frame codec is the sans-IO `Protocol` of the ``websockets`` library (uvicorn's): it
parses and checks frames (masking, reserved bits, opcodes, control frames inside
fragmented messages, close codes; 1002 for a broken frame, 1009 past the size limit),
answers pings and close frames, and frames what is sent (permessage-deflate when
negotiated).  Chosen by measurement against wsproto (Twisted's): 15.6 against 49.0 us of
CPU per 64-byte echo message, codec alone (``python -m loadtests.ws_codec``).  This
module adds what a server needs around it: messages reassembled and text decoded (invalid
UTF-8 is 1007), deadlines, backpressure, draining and counters.

Deadlines are numbers compared to ``now`` in `check_deadlines`, which the driver calls
about once a second:

    waiting for         deadline                              on expiry
    anything from the   ping_interval after the last bytes    send a ping
      client
    a pong (or any      ping_timeout after the ping           close 1011, then close
      bytes)
    the client's close  close_timeout after ours              abort
      frame
    the client to read  send_timeout after writing paused     abort
    a draining worker   websocket_drain_timeout after Drain   close 1001 ("going away")

While reading is paused (the application is behind) no ping is due: pongs could not be
seen.  Backpressure is two decisions: the transport's buffer full tells the handler
(`writing_paused`, which pauses producers and makes ``drain()`` wait); a handler that
falls behind asks for `pause_reading`, and TCP's window then slows the client.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.exceptions import InvalidHandshake, NegotiationError
from websockets.extensions.base import Extension, ServerExtensionFactory
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Opcode
from websockets.headers import build_extension, parse_extension, parse_subprotocol
from websockets.protocol import SEND_EOF, Side, State
from websockets.protocol import Protocol as FrameProtocol
from websockets.utils import accept_key

__all__ = [
    "CloseCode",
    "Handshake",
    "HandshakeError",
    "WebSocketConnection",
    "WebSocketHandler",
    "WebSocketLimits",
    "WebSocketStats",
    "check_handshake",
    "deflate_factory",
]

log = logging.getLogger("hive.websocket")
# The codec logs each close at INFO; a server with 10,000 connections does not want that.
_codec_log = logging.getLogger("hive.websocket.frames")
_codec_log.setLevel(logging.WARNING)


class CloseCode:
    """The close codes hive sends (RFC 6455, 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    NO_STATUS = 1005
    ABNORMAL = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011


@dataclass(frozen=True, slots=True)
class WebSocketLimits:
    """Limits and timeouts of one WebSocket; times in seconds, sizes in bytes."""

    #: Largest message, after decompression; larger closes with 1009 (websockets, uvicorn:
    #: 1 MiB; Twisted: none).
    max_message_size: int = 1024 * 1024
    #: A connection silent this long is pinged (uvicorn and websockets: 20 s).
    ping_interval: float = 20.0
    #: A ping unanswered (and nothing else received) this long closes with 1011 (20 s).
    ping_timeout: float = 20.0
    #: After hive's close frame, the client's is awaited this long (websockets: 10 s).
    close_timeout: float = 10.0
    #: A client that reads nothing of what is sent for this long is cut off (as HTTP).
    send_timeout: float = 60.0
    #: Draining: open WebSockets are closed with 1001 after this (--websocket-drain-timeout).
    drain_timeout: float = 5.0


class WebSocketHandler(Protocol):
    """What a WebSocket connection tells the application side."""

    def message_received(self, message: str | bytes) -> None:
        """A whole message: str for a text message, bytes for a binary one."""
        ...

    def pong_received(self, payload: bytes) -> None: ...

    def writing_paused(self) -> None:
        """The client is not reading: stop sending until `writing_resumed`."""
        ...

    def writing_resumed(self) -> None: ...

    def closed(self, code: int, reason: str) -> None:
        """The connection is over: ``code`` is the client's close code, else the one hive
        sent, else 1006 (the TCP connection ended without a close frame)."""
        ...


class WebSocketStats(Protocol):
    """Where WebSockets are counted (hive.worker.stats.WorkerStats)."""

    websocket_messages_in: int
    websocket_messages_out: int

    def websocket_opened(self) -> None: ...

    def websocket_closed(self, code: int) -> None: ...


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


# -- the opening handshake (RFC 6455, 4.2.1) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Handshake:
    """A valid opening handshake: what the 101 needs and what was offered."""

    key: str
    #: The client's Origin header, or None (non-browser clients send none).
    origin: str | None
    #: Subprotocols the client offered, in its order of preference.
    subprotocols: tuple[str, ...]
    #: The raw Sec-WebSocket-Extensions values.
    extensions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HandshakeError:
    """An opening handshake refused: the status to answer, a reason, extra headers."""

    status: int
    reason: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


#: The one version of the protocol there is (RFC 6455, 4.4); 426 names it to other ones.
VERSION = b"13"
_UPGRADE_REQUIRED = ((b"Upgrade", b"websocket"), (b"Sec-WebSocket-Version", VERSION))


def _tokens(values: list[bytes]) -> set[bytes]:
    return {token.strip().lower() for value in values for token in value.split(b",")}


def check_handshake(
    method: bytes, http_version: bytes, headers: Sequence[tuple[bytes, bytes]]
) -> Handshake | HandshakeError:
    """Whether a request (lowercased header names) opens a WebSocket, and if not, why.

    A request that is no upgrade at all gets 426 Upgrade Required (the resource speaks
    WebSocket only); a broken upgrade 400; another protocol version 426 with
    ``Sec-WebSocket-Version: 13``.
    """
    by_name: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        by_name.setdefault(name, []).append(value)
    if b"websocket" not in _tokens(by_name.get(b"upgrade", [])):
        return HandshakeError(
            426, "this resource speaks WebSocket: send Upgrade: websocket", _UPGRADE_REQUIRED
        )
    if method != b"GET":
        return HandshakeError(400, "a WebSocket handshake is a GET request")
    if http_version != b"1.1":
        return HandshakeError(400, "a WebSocket handshake needs HTTP/1.1")
    if b"upgrade" not in _tokens(by_name.get(b"connection", [])):
        return HandshakeError(400, "a WebSocket handshake needs Connection: Upgrade")
    versions = by_name.get(b"sec-websocket-version", [])
    if not versions:
        return HandshakeError(400, "missing Sec-WebSocket-Version")
    if versions != [VERSION]:
        return HandshakeError(
            426, "unsupported Sec-WebSocket-Version: this server speaks 13", _UPGRADE_REQUIRED
        )
    keys = by_name.get(b"sec-websocket-key", [])
    if len(keys) != 1:
        return HandshakeError(400, "a WebSocket handshake needs one Sec-WebSocket-Key")
    try:
        if len(base64.b64decode(keys[0], validate=True)) != 16:
            raise ValueError
    except (binascii.Error, ValueError):
        return HandshakeError(400, "Sec-WebSocket-Key is not 16 bytes in base64")
    origins = by_name.get(b"origin", [])
    if len(origins) > 1:
        return HandshakeError(400, "more than one Origin header")
    try:
        offered = tuple(
            str(protocol)
            for value in by_name.get(b"sec-websocket-protocol", [])
            for protocol in parse_subprotocol(value.decode("latin-1"))
        )
    except InvalidHandshake as exc:
        return HandshakeError(400, f"invalid Sec-WebSocket-Protocol: {exc}")
    return Handshake(
        key=keys[0].decode("ascii"),
        origin=origins[0].decode("latin-1") if origins else None,
        subprotocols=offered,
        extensions=tuple(v.decode("latin-1") for v in by_name.get(b"sec-websocket-extensions", [])),
    )


def deflate_factory() -> ServerPerMessageDeflateFactory:
    """permessage-deflate with bounded memory: 4 KiB windows (12 bits) both ways and zlib's
    memLevel 5, as websockets enables it; about 64 KiB per connection instead of 320 KiB."""
    return ServerPerMessageDeflateFactory(
        server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 5}
    )


def negotiate_extensions(
    offers: Sequence[str], available: Sequence[ServerExtensionFactory]
) -> tuple[str | None, list[Extension]] | HandshakeError:
    """The Sec-WebSocket-Extensions answer and the extensions accepted from ``offers``."""
    if not offers or not available:
        return None, []
    try:
        parsed = [item for value in offers for item in parse_extension(value)]
    except InvalidHandshake as exc:
        return HandshakeError(400, f"invalid Sec-WebSocket-Extensions: {exc}")
    answers: list[Any] = []
    accepted: list[Extension] = []
    for name, params in parsed:
        for factory in available:
            if factory.name != name:
                continue
            try:
                answer, extension = factory.process_request_params(params, accepted)
            except NegotiationError:
                continue
            answers.append((name, answer))
            accepted.append(extension)
            break
    return (build_extension(answers) if answers else None), accepted


def accept_headers(
    handshake: Handshake, subprotocol: str | None, extensions: str | None
) -> list[tuple[bytes, bytes]]:
    """The headers of the 101 that opens the WebSocket."""
    headers = [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", accept_key(handshake.key).encode("ascii")),
    ]
    if subprotocol is not None:
        headers.append((b"Sec-WebSocket-Protocol", subprotocol.encode("ascii")))
    if extensions is not None:
        headers.append((b"Sec-WebSocket-Extensions", extensions.encode("ascii")))
    return headers


# -- the connection -----------------------------------------------------------------------

_NEVER = float("inf")
_TEXT, _BINARY, _CONT, _PONG, _CLOSE = (
    Opcode.TEXT,
    Opcode.BINARY,
    Opcode.CONT,
    Opcode.PONG,
    Opcode.CLOSE,
)
#: Close codes below 3000 an endpoint may send (RFC 6455, 7.4.1; 1012-1014 registered later).
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})
#: After 1001 while draining, the client's close frame is awaited at most this long.
DRAIN_CLOSE_WAIT = 1.0


class WebSocketConnection:
    """The server side of one open WebSocket."""

    __slots__ = (
        "_batching",
        "_clock",
        "_close_at",
        "_closed",
        "_decoder",
        "_drain_at",
        "_fragments",
        "_frames",
        "_last_in",
        "_paused_at",
        "_ping_due",
        "_pong_due",
        "_reading",
        "_stats",
        "_write_paused",
        "handler",
        "limits",
        "subprotocol",
        "transport",
    )

    def __init__(
        self,
        transport: Transport,
        limits: WebSocketLimits,
        now: float,
        *,
        clock: Callable[[], float],
        extensions: Sequence[Extension] = (),
        subprotocol: str | None = None,
        stats: WebSocketStats | None = None,
    ) -> None:
        self.transport = transport
        self.limits = limits
        self._clock = clock
        #: Set by whoever serves the WebSocket, before bytes arrive.
        self.handler: WebSocketHandler | None = None
        #: The subprotocol agreed in the handshake, or None.
        self.subprotocol = subprotocol
        frames = FrameProtocol(
            Side.SERVER, state=State.OPEN, max_size=limits.max_message_size, logger=_codec_log
        )
        frames.extensions = list(extensions)
        self._frames = frames
        self._stats = stats
        # A fragmented message being reassembled: its pieces, and the text decoder.
        self._fragments: list[bytes] | None = None
        self._decoder: Any = None
        self._last_in = now
        self._ping_due = now + limits.ping_interval
        self._pong_due = _NEVER
        self._close_at = _NEVER  # the client's close frame is due by then
        self._drain_at = _NEVER
        self._paused_at = _NEVER
        self._reading = True
        self._write_paused = False
        self._closed = False
        self._batching = False
        if stats is not None:
            stats.websocket_opened()

    # -- from the driver -------------------------------------------------------------------

    def data_received(self, data: bytes, now: float) -> None:
        """Bytes arrived from the client."""
        self._last_in = now
        self._pong_due = _NEVER
        self._ping_due = now + self.limits.ping_interval
        frames = self._frames
        frames.receive_data(data)
        events = frames.events_received()
        if events:
            # What the handlers send meanwhile leaves in one write after them.
            self._batching = True
            try:
                self._deliver(events)
            finally:
                self._batching = False
        self._flush()

    def eof_received(self, now: float) -> bool:
        """The client closed its side: that ends a WebSocket (1006 without a close frame)."""
        self._frames.receive_eof()
        self._flush()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        """The transport is closed."""
        if self._closed:
            return
        self._closed = True
        frames = self._frames
        if frames.close_rcvd is not None:
            code, reason = frames.close_rcvd.code, frames.close_rcvd.reason
        elif frames.close_sent is not None:
            code, reason = frames.close_sent.code, frames.close_sent.reason
        else:
            code, reason = CloseCode.ABNORMAL, ""
        if self._stats is not None:
            self._stats.websocket_closed(code)
        handler = self.handler
        if handler is not None:
            handler.closed(code, reason)

    def pause_writing(self, now: float) -> None:
        self._write_paused = True
        self._paused_at = now
        if self.handler is not None:
            self.handler.writing_paused()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._paused_at = _NEVER
        if self.handler is not None:
            self.handler.writing_resumed()

    @property
    def deadline(self) -> float:
        """When `check_deadlines` next has something to do."""
        ping = min(self._ping_due, self._pong_due) if self._reading else _NEVER
        return min(
            ping,
            self._close_at,
            self._drain_at,
            self._paused_at + self.limits.send_timeout,
        )

    def check_deadlines(self, now: float) -> None:
        """Act on an expired deadline."""
        if self._closed:
            return
        if now >= self._close_at or now >= self._paused_at + self.limits.send_timeout:
            # The client answers no close frame, or reads nothing: it is gone.
            self._closed_transport(abort=True)
            return
        if now >= self._drain_at:
            self._drain_at = _NEVER
            self.close(CloseCode.GOING_AWAY, "server restarting")
            self._close_at = min(self._close_at, now + DRAIN_CLOSE_WAIT)
            return
        if not self._reading or self._frames.state is not State.OPEN:
            return
        if now >= self._pong_due:
            log.info("no pong for %.0f s; closing", self.limits.ping_timeout)
            self._frames.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            self._flush()
        elif now >= self._ping_due:
            self._ping_due = _NEVER
            self._pong_due = now + self.limits.ping_timeout
            self.ping(os.urandom(4))

    def drain(self, now: float) -> None:
        """The worker is draining: close with 1001 once `drain_timeout` has passed."""
        self._drain_at = min(self._drain_at, now + self.limits.drain_timeout)

    @property
    def idle(self) -> bool:
        """An open WebSocket is never idle in the HTTP sense: draining must close it."""
        return False

    # -- from the application ----------------------------------------------------------------

    @property
    def open(self) -> bool:
        """Messages may be sent: no close frame was sent or received."""
        return self._frames.state is State.OPEN and not self._closed

    @property
    def write_paused(self) -> bool:
        return self._write_paused

    def send_text(self, text: str) -> None:
        """Send a text message; nothing once the connection is closing."""
        if self.open:
            self._frames.send_text(text.encode("utf-8"))
            self._sent()

    def send_bytes(self, data: bytes) -> None:
        """Send a binary message; nothing once the connection is closing."""
        if self.open:
            self._frames.send_binary(data)
            self._sent()

    def ping(self, payload: bytes = b"") -> None:
        """Send a ping (at most 125 bytes of payload)."""
        if len(payload) > 125:
            raise ValueError(f"a ping carries at most 125 bytes, not {len(payload)}")
        frames = self._frames
        if not self._closed and (frames.state is State.OPEN or frames.state is State.CLOSING):
            frames.send_ping(payload)
            self._flush()

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the closing handshake; the client's close frame is awaited `close_timeout`.

        ``code`` must be one an endpoint may send (1000-1003, 1007-1014, 3000-4999);
        ``reason`` at most 123 bytes of UTF-8.
        """
        if not (code in _SENDABLE or 3000 <= code <= 4999):
            raise ValueError(f"{code} is not a close code an endpoint may send")
        if len(reason.encode("utf-8")) > 123:
            raise ValueError("a close reason is at most 123 bytes of UTF-8")
        frames = self._frames
        if self._closed or frames.state is not State.OPEN:
            return
        frames.send_close(code, reason)
        self._close_at = self._clock() + self.limits.close_timeout
        self._flush()

    def pause_reading(self) -> None:
        """The application is behind: stop reading until `resume_reading`."""
        if self._reading and not self._closed:
            self._reading = False
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self._reading and not self._closed:
            self._reading = True
            self._ping_due = max(self._ping_due, self._clock() + self.limits.ping_interval)
            self.transport.resume_reading()

    # -- inside ---------------------------------------------------------------------------------

    def _sent(self) -> None:
        stats = self._stats
        if stats is not None:
            stats.websocket_messages_out += 1
        if not self._batching:
            self._flush()

    def _flush(self) -> None:
        writes = self._frames.data_to_send()
        if not writes:
            return
        if len(writes) > 1 and SEND_EOF not in writes:
            # One write (one send() call) for every frame a read's handlers sent.
            self.transport.write(b"".join(writes))
            return
        for data in writes:
            if data == SEND_EOF:
                self._closed_transport()
            else:
                self.transport.write(data)

    def _closed_transport(self, abort: bool = False) -> None:
        self._close_at = self._drain_at = self._ping_due = self._pong_due = _NEVER
        self._paused_at = _NEVER
        if abort:
            self.transport.abort()
        else:
            self.transport.close()

    def _deliver(self, events: list[Any]) -> None:
        handler = self.handler
        stats = self._stats
        for frame in events:
            opcode = frame.opcode
            if opcode is _TEXT or opcode is _BINARY:
                if not frame.fin:
                    self._fragments = [frame.data]
                    self._decoder = (
                        codecs.getincrementaldecoder("utf-8")() if opcode is _TEXT else None
                    )
                    if self._decoder is not None and not self._decode(frame.data, False):
                        return
                    continue
                message: str | bytes
                if opcode is _TEXT:
                    try:
                        message = frame.data.decode("utf-8")
                    except UnicodeDecodeError:
                        self._invalid_text()
                        return
                else:
                    message = bytes(frame.data)
            elif opcode is _CONT:
                fragments = self._fragments
                assert fragments is not None  # the codec refuses a stray continuation
                fragments.append(frame.data)
                decoder = self._decoder
                if decoder is not None and not self._decode(frame.data, frame.fin):
                    return
                if not frame.fin:
                    continue
                joined = b"".join(fragments)
                self._fragments = self._decoder = None
                message = joined.decode("utf-8") if decoder is not None else joined
            elif opcode is _PONG:
                if handler is not None:
                    handler.pong_received(bytes(frame.data))
                continue
            else:
                # Ping (answered by the codec) and close (echoed by it; the TCP close follows).
                continue
            if stats is not None:
                stats.websocket_messages_in += 1
            # Messages before a close frame in the same read count (the codec drops
            # anything after it).
            if handler is not None:
                handler.message_received(message)

    def _decode(self, data: bytes, final: bool) -> bool:
        """Check a text fragment as it comes, so bad UTF-8 fails at once (RFC 6455, 8.1)."""
        try:
            self._decoder.decode(data, final)
        except UnicodeDecodeError:
            self._invalid_text()
            return False
        return True

    def _invalid_text(self) -> None:
        self._fragments = self._decoder = None
        self._frames.fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")


def offered_subprotocol(
    offered: Sequence[str], served: Sequence[str]
) -> str | HandshakeError | None:
    """The subprotocol to answer: the server's first choice among those offered.

    None if the client offered none, or the server serves none (the client then decides);
    a 400 if both have some and none is common.
    """
    if not offered or not served:
        return None
    for choice in served:
        if choice in offered:
            return choice
    return HandshakeError(
        400,
        f"no common subprotocol: offered {', '.join(offered)}; served {', '.join(served)}",
    )


MakeConnection = Callable[[Transport, float], WebSocketConnection]
