"""WebSockets in memory: the handshake, RFC 6455's rules, deadlines, backpressure, draining.

The real Site, Request, Connection and WebSocketConnection run over a list for a socket
(tests/unit/harness.py); the client is websockets' own sans-IO client Protocol, an
independent codec, or raw frames written here for what no good client sends.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from typing import Any

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Protocol, Side
from websockets.utils import accept_key

from hive.resource import Resource
from hive.server import Site
from hive.websocket import MAX_QUEUE, WebSocketClosed, WebSocketResource
from hive.worker.stats import WorkerStats
from hive.worker.websocket import (
    DRAIN_CLOSE_WAIT,
    Handshake,
    HandshakeError,
    WebSocketConnection,
    check_handshake,
)
from tests.unit.harness import Harness, run, settle

KEY = base64.b64encode(b"0123456789abcdef").decode()


class Recorder:
    """A Twisted-style protocol that records what it is told and echoes messages."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.events: list[Any] = []
        self.transport: Any = None

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("started")

    def negotiationFinished(self) -> None:
        self.events.append("finished")

    def textMessageReceived(self, message: str) -> None:
        self.events.append(message)
        if self.echo:
            self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        self.events.append(data)
        if self.echo:
            self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        self.events.append(("pong", payload))

    def connectionLost(self, reason: BaseException) -> None:
        self.events.append(reason)


class Factory:
    def __init__(self, protocol: Any = None) -> None:
        self.protocol = protocol if protocol is not None else Recorder()
        self.requests: list[Any] = []

    def buildProtocol(self, request: Any) -> Any:
        self.requests.append(request)
        return self.protocol


def handshake_bytes(path: str = "/ws", **extra: str) -> bytes:
    headers = {
        "Host": "example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
        **{k.replace("_", "-"): v for k, v in extra.items()},
    }
    lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items() if v)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Client:
    """A harness with a WebSocketResource at /ws and websockets' client codec."""

    def __init__(self, resource: WebSocketResource, site: Site | None = None) -> None:
        root = Resource()
        root.putChild(b"ws", resource)
        self.site = site if site is not None else Site(root)
        self.harness = Harness(self.site)
        self.codec = Protocol(Side.CLIENT)
        self._seen = 0

    def open(self, **headers: str) -> bytes:
        """Send the handshake; return the response head."""
        self.harness.send(handshake_bytes(**headers))
        data = bytes(self.harness.transport.data)
        head, _, rest = data.partition(b"\r\n\r\n")
        self._seen = len(head) + 4
        if rest:
            self.codec.receive_data(rest)
            self._seen = len(data)
        return head

    def send(self, frame: bytes, now: float | None = None) -> None:
        self.harness.send(frame, now)

    def send_text(self, text: str) -> None:
        self.codec.send_text(text.encode())
        for data in self.codec.data_to_send():
            self.send(data)

    def received(self) -> list[Frame]:
        data = bytes(self.harness.transport.data)
        fresh, self._seen = data[self._seen :], len(data)
        if fresh:
            self.codec.receive_data(fresh)
        return [event for event in self.codec.events_received() if isinstance(event, Frame)]

    @property
    def ws(self) -> WebSocketConnection:
        driven = self.harness.driven
        assert isinstance(driven, WebSocketConnection)
        return driven


def raw(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True) -> bytes:
    """One frame as a client (or, unmasked, a broken client) writes it."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", first, (0x80 if mask else 0) | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, length)
    else:
        head = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_of(frames: list[Frame]) -> Close:
    (close,) = [f for f in frames if f.opcode is Opcode.CLOSE]
    return Close.parse(close.data)


# -- the handshake ------------------------------------------------------------------------


def headers_of(**extra: bytes) -> list[tuple[bytes, bytes]]:
    base = {
        b"host": b"example.com",
        b"upgrade": b"websocket",
        b"connection": b"keep-alive, Upgrade",
        b"sec-websocket-key": KEY.encode(),
        b"sec-websocket-version": b"13",
    }
    base.update({k.replace("_", "-").encode(): v for k, v in extra.items()})
    return [(k, v) for k, v in base.items() if v]


@pytest.mark.parametrize(
    ("method", "version", "headers", "status", "reason"),
    [
        (b"GET", b"1.1", headers_of(upgrade=b""), 426, "Upgrade: websocket"),
        (b"POST", b"1.1", headers_of(), 400, "GET"),
        (b"GET", b"1.0", headers_of(), 400, "HTTP/1.1"),
        (b"GET", b"1.1", headers_of(connection=b"keep-alive"), 400, "Connection: Upgrade"),
        (b"GET", b"1.1", headers_of(sec_websocket_version=b""), 400, "Sec-WebSocket-Version"),
        (b"GET", b"1.1", headers_of(sec_websocket_version=b"8"), 426, "speaks 13"),
        (b"GET", b"1.1", headers_of(sec_websocket_key=b""), 400, "Sec-WebSocket-Key"),
        (b"GET", b"1.1", headers_of(sec_websocket_key=b"c2hvcnQ="), 400, "16 bytes"),
        (b"GET", b"1.1", headers_of(sec_websocket_key=b"not base64!"), 400, "16 bytes"),
    ],
)
def test_invalid_handshakes_are_refused_with_a_reason(
    method: bytes, version: bytes, headers: list[tuple[bytes, bytes]], status: int, reason: str
) -> None:
    error = check_handshake(method, version, headers)
    assert isinstance(error, HandshakeError)
    assert error.status == status and reason in error.reason
    if status == 426:
        assert (b"Sec-WebSocket-Version", b"13") in error.headers


def test_valid_handshake() -> None:
    offered = headers_of(sec_websocket_protocol=b"chat.v2, chat", origin=b"https://example.com")
    handshake = check_handshake(b"GET", b"1.1", offered)
    assert handshake == Handshake(KEY, "https://example.com", ("chat.v2", "chat"), ())


def test_upgrade_answers_101_and_hands_the_connection_over() -> None:
    factory = Factory()
    client = Client(WebSocketResource(factory))
    head = client.open()
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nUpgrade: websocket" in head and b"\r\nConnection: Upgrade" in head
    assert f"Sec-WebSocket-Accept: {accept_key(KEY)}".encode() in head
    assert factory.protocol.events == ["started", "finished"]
    assert isinstance(client.harness.driven, WebSocketConnection)
    client.send_text("hello")
    assert [f.data for f in client.received()] == [b"hello"]
    assert factory.requests[0].uri == b"/ws"


def test_a_plain_get_gets_426_through_the_resource() -> None:
    client = Client(WebSocketResource(Factory()))
    response = client.harness.get("/ws")
    assert response.status == 426
    assert response.header("Sec-WebSocket-Version") == "13"
    assert b"WebSocket" in response.body
    assert client.harness.driven is client.harness.connection  # not switched


@pytest.mark.parametrize(
    ("allowed", "origin", "accepted"),
    [
        (None, "", True),  # no Origin: not a browser
        (None, "http://example.com", True),
        (None, "https://example.com", True),  # TLS ended at a proxy
        (None, "http://evil.example", False),
        (None, "http://example.com:8443", False),
        (None, "null", False),
        (["https://app.example"], "https://app.example", True),
        (["https://app.example"], "http://example.com", False),
        (["*"], "http://evil.example", True),
    ],
)
def test_origins(allowed: list[str] | None, origin: str, accepted: bool) -> None:
    client = Client(WebSocketResource(Factory(), allowedOrigins=allowed))
    head = client.open(Origin=origin)
    status = int(head.split(b" ", 2)[1])
    assert status == (101 if accepted else 403)


@pytest.mark.parametrize(
    ("served", "offered", "status", "chosen"),
    [
        (["chat.v2", "chat"], "chat, chat.v2", 101, b"chat.v2"),  # the server's preference
        (["chat"], "", 101, None),
        ([], "chat", 101, None),
        (["chat.v2"], "chat.v1", 400, None),
    ],
)
def test_subprotocols(served: list[str], offered: str, status: int, chosen: bytes | None) -> None:
    factory = Factory()
    client = Client(WebSocketResource(factory, subprotocols=served))
    head = client.open(Sec_WebSocket_Protocol=offered)
    assert int(head.split(b" ", 2)[1]) == status
    if chosen is not None:
        assert b"Sec-WebSocket-Protocol: " + chosen in head
        assert factory.protocol.transport.subprotocol == chosen.decode()
    else:
        assert b"Sec-WebSocket-Protocol" not in head


def test_a_factory_returning_none_refuses_with_403() -> None:
    class Refuses:
        def buildProtocol(self, request: Any) -> None:
            return None

    client = Client(WebSocketResource(Refuses()))
    assert client.open().startswith(b"HTTP/1.1 403 ")


def test_compression_is_off_by_default_and_bounded_when_on() -> None:
    offer = "permessage-deflate; client_max_window_bits"
    plain = Client(WebSocketResource(Factory()))
    assert b"Sec-WebSocket-Extensions" not in plain.open(Sec_WebSocket_Extensions=offer)
    deflating = Client(WebSocketResource(Factory(), compression=True))
    head = deflating.open(Sec_WebSocket_Extensions=offer)
    assert b"Sec-WebSocket-Extensions: permessage-deflate" in head
    assert b"server_max_window_bits=12" in head and b"client_max_window_bits=12" in head


# -- RFC 6455 framing -----------------------------------------------------------------------


def opened(protocol: Any = None, **options: Any) -> tuple[Client, Recorder]:
    factory = Factory(protocol)
    client = Client(WebSocketResource(factory, **options))
    client.open()
    return client, factory.protocol


def test_fragmented_message_with_control_frames_between_fragments() -> None:
    client, protocol = opened()
    client.send(raw(0x1, "hé".encode()[:2], fin=False))
    client.send(raw(0x9, b"ping!"))  # a control frame inside a fragmented message
    client.send(raw(0x0, "hé".encode()[2:], fin=False))
    client.send(raw(0xA, b"unsolicited"))
    client.send(raw(0x0, b" there"))
    frames = client.received()
    assert [(f.opcode, f.data) for f in frames] == [
        (Opcode.PONG, b"ping!"),
        (Opcode.TEXT, "hé there".encode()),
    ]
    assert protocol.events[2:] == [("pong", b"unsolicited"), "hé there"]


def test_binary_fragments() -> None:
    client, protocol = opened()
    client.send(raw(0x2, b"\x00\x01", fin=False) + raw(0x0, b"\xff"))
    assert protocol.events[2:] == [b"\x00\x01\xff"]


def test_close_handshake_echoes_the_code_and_tells_the_protocol() -> None:
    client, protocol = opened()
    client.send(raw(0x8, Close(1000, "bye").serialize()))
    assert close_of(client.received()) == Close(1000, "bye")
    assert client.harness.transport.closed
    client.ws.connection_lost(None)
    lost = protocol.events[-1]
    assert isinstance(lost, WebSocketClosed) and (lost.code, lost.reason) == (1000, "bye")


def test_server_close_waits_for_the_client_then_gives_up() -> None:
    client, protocol = opened(closeTimeout=3)
    client.harness.now = 10.0
    protocol.transport.loseConnection(4000, "done")
    assert close_of(client.received()) == Close(4000, "done")
    assert not client.harness.transport.closed
    client.ws.check_deadlines(12.9)
    assert not client.harness.transport.closed
    client.ws.check_deadlines(13.0)
    assert client.harness.transport.aborted


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        pytest.param(raw(0x1, b"\xff\xfe"), 1007, id="invalid UTF-8"),
        pytest.param(
            raw(0x1, b"ok", fin=False) + raw(0x0, b"\xc3"), 1007, id="cut in the last fragment"
        ),
        pytest.param(raw(0x1, b"\xed\xa0\x80", fin=False), 1007, id="a surrogate: bad at once"),
        pytest.param(raw(0x1, b"hi", rsv=0b100), 1002, id="a reserved bit"),
        pytest.param(raw(0x1, b"hi", mask=False), 1002, id="an unmasked client frame"),
        pytest.param(raw(0x3, b"hi"), 1002, id="a reserved opcode"),
        pytest.param(raw(0x0, b"hi"), 1002, id="a continuation with nothing to continue"),
        pytest.param(raw(0x9, b"p", fin=False), 1002, id="a fragmented control frame"),
        pytest.param(raw(0x9, b"x" * 126), 1002, id="a control frame over 125 bytes"),
        pytest.param(
            raw(0x8, struct.pack("!H", 1005)), 1002, id="a close code no endpoint may send"
        ),
        pytest.param(
            raw(0x1, b"a", fin=False) + raw(0x1, b"b"), 1002, id="a new message inside one"
        ),
    ],
)
def test_broken_frames_close_with_the_rfcs_code(frame: bytes, code: int) -> None:
    client, protocol = opened()
    client.send(frame)
    assert close_of(client.received()).code == code
    assert client.harness.transport.closed
    client.ws.connection_lost(None)
    assert protocol.events[-1].code == code


def test_oversize_message_closes_with_1009_single_or_fragmented() -> None:
    client, _ = opened(maxMessageSize=1000)
    client.send(raw(0x2, b"x" * 1000))
    assert client.received()[0].data == b"x" * 1000  # at the limit: fine
    client.send(raw(0x2, b"x" * 600, fin=False) + raw(0x0, b"x" * 401))
    assert close_of(client.received()).code == 1009


def test_ten_thousand_small_messages_arrive_in_order() -> None:
    client, protocol = opened(Recorder(echo=False))
    frames = b"".join(raw(0x1, f"message {i}".encode()) for i in range(10_000))
    for start in range(0, len(frames), 4096):  # split anywhere
        client.send(frames[start : start + 4096])
    assert protocol.events[2:] == [f"message {i}" for i in range(10_000)]


def test_messages_before_a_close_frame_in_the_same_read_are_delivered() -> None:
    client, protocol = opened(Recorder(echo=False))
    client.send(raw(0x1, b"last words") + raw(0x8, Close(1000, "").serialize()))
    assert protocol.events[2:] == ["last words"]


# -- deadlines ------------------------------------------------------------------------------


def test_idle_connection_is_pinged_and_closed_without_a_pong() -> None:
    client, _ = opened(pingInterval=20, pingTimeout=5)
    ws = client.ws
    ws.check_deadlines(19.9)
    assert client.received() == []
    ws.check_deadlines(20.0)
    (ping,) = client.received()
    assert ping.opcode is Opcode.PING and len(ping.data) == 4
    ws.check_deadlines(24.9)
    assert client.received() == []
    ws.check_deadlines(25.0)
    assert close_of(client.received()).code == 1011
    assert client.harness.transport.closed


def test_any_bytes_from_the_client_count_as_alive() -> None:
    client, _ = opened(Recorder(echo=False), pingInterval=20, pingTimeout=5)
    client.ws.check_deadlines(20.0)
    client.received()
    client.send(raw(0xA, b"late pong"), now=24.0)
    client.ws.check_deadlines(30.0)
    assert client.received() == [] and not client.harness.transport.closed
    assert client.ws.deadline == 44.0  # the next ping: 20 s after the last bytes


def test_drain_closes_with_1001_after_the_grace_and_never_waits_long() -> None:
    client, _ = opened(pingInterval=0)
    ws = client.ws
    assert ws.limits.drain_timeout == 5.0  # ConnectionLimits.websocket_drain_timeout
    ws.drain(100.0)
    ws.check_deadlines(104.9)
    assert client.received() == []
    ws.check_deadlines(105.0)
    assert close_of(client.received()).code == 1001
    ws.check_deadlines(105.0 + DRAIN_CLOSE_WAIT)
    assert client.harness.transport.aborted


# -- backpressure and async handlers --------------------------------------------------------


def test_a_client_that_does_not_read_pauses_producers_and_drain() -> None:
    async def scenario() -> None:
        client, protocol = opened(Recorder(echo=False))
        calls: list[str] = []

        class Producer:
            def pauseProducing(self) -> None:
                calls.append("pause")

            def resumeProducing(self) -> None:
                calls.append("resume")

            def stopProducing(self) -> None:
                calls.append("stop")

        transport = protocol.transport
        transport.attachProducer(Producer())
        await transport.drain()  # not paused: at once
        client.ws.pause_writing(0.0)
        assert calls == ["pause"]
        waiting = asyncio.ensure_future(transport.drain())
        await settle()
        assert not waiting.done()
        client.ws.resume_writing()
        await settle()
        assert waiting.done() and calls == ["pause", "resume"]
        client.ws.pause_writing(1.0)
        client.ws.check_deadlines(61.0)  # send_timeout: the client is gone
        assert client.harness.transport.aborted
        client.ws.connection_lost(None)
        assert calls[-1] == "stop"
        with pytest.raises(ConnectionError):
            await transport.drain()

    run(scenario())


def test_async_handlers_see_messages_in_order_and_a_slow_one_pauses_reading() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        seen: list[str] = []

        class Slow(Recorder):
            async def textMessageReceived(self, message: str) -> None:  # type: ignore[override]
                seen.append(message)
                await gate.wait()

        client, protocol = opened(Slow())
        for i in range(MAX_QUEUE + 1):
            client.send(raw(0x1, b"%d" % i))
        await settle()
        assert seen == ["0"]
        assert not client.harness.transport.reading  # MAX_QUEUE waiting: stop reading
        gate.set()
        await settle(3 * MAX_QUEUE)
        assert seen == [str(i) for i in range(MAX_QUEUE + 1)]
        assert client.harness.transport.reading
        client.send(raw(0x8, Close(1000, "").serialize()))
        client.ws.connection_lost(None)
        assert isinstance(protocol.events[-1], WebSocketClosed)

    run(scenario())


def test_an_error_in_a_handler_closes_with_1011() -> None:
    class Fails(Recorder):
        def textMessageReceived(self, message: str) -> None:
            raise RuntimeError("boom")

    client, _ = opened(Fails())
    client.send(raw(0x1, b"hi"))
    assert close_of(client.received()).code == 1011


def test_async_build_protocol_accepts_later() -> None:
    async def scenario() -> None:
        class Later:
            async def buildProtocol(self, request: Any) -> Recorder:
                await asyncio.sleep(0)
                return protocol

        protocol = Recorder()
        client = Client(WebSocketResource(Later()))
        client.harness.send(handshake_bytes())
        assert client.harness.transport.data == b""
        await settle()
        assert client.harness.transport.data.startswith(b"HTTP/1.1 101 ")
        assert protocol.events == ["started", "finished"]

    run(scenario())


# -- counters ---------------------------------------------------------------------------------


def test_stats_count_websockets_messages_and_closes() -> None:
    root = Resource()
    root.putChild(b"ws", WebSocketResource(Factory()))
    site = Site(root)
    site.stats = stats = WorkerStats()
    client = Client(WebSocketResource(Factory()), site=site)
    client.open()
    client.send_text("one")
    client.send_text("two")
    client.send(raw(0x8, Close(1000, "").serialize()))
    client.ws.connection_lost(None)
    snapshot = stats.snapshot(accepted=1, active=0, idle=0)
    assert snapshot.websocket_messages_in == 2 and snapshot.websocket_messages_out == 2
    assert snapshot.websocket_closes == {"1000": 1} and snapshot.websockets_open == 0
    assert snapshot.responses == {"GET 101": 1}


def test_a_frame_sent_before_an_async_accept_reaches_the_protocol_after_it_starts() -> None:
    async def scenario() -> None:
        protocol = Recorder(echo=False)

        class Later:
            async def buildProtocol(self, request: Any) -> Recorder:
                await asyncio.sleep(0)
                return protocol

        client = Client(WebSocketResource(Later()))
        client.harness.send(handshake_bytes())
        client.harness.send(raw(0x1, b"eager"))  # before the 101: kept for the WebSocket
        await settle()
        assert protocol.events == ["started", "finished", "eager"]

    run(scenario())


# -- Twisted's API, by its own definition --------------------------------------------------------


@pytest.mark.parametrize("ours", ["WebSocketTransport", "WebSocketProtocol"])
def test_the_names_and_parameters_are_twisteds(ours: str) -> None:
    """Every method of Twisted 26.10's typing.Protocols is here, with its parameters first
    (hive's own ones after them have defaults: loseConnection's reason)."""
    import inspect

    twisted_websocket = pytest.importorskip("twisted.web.websocket")
    import hive.websocket

    twisted_class = getattr(twisted_websocket, ours)
    hive_class = getattr(hive.websocket, ours)
    methods = [n for n, v in vars(twisted_class).items() if inspect.isfunction(v) and n[0] != "_"]
    assert methods, "Twisted's protocol lists its methods"
    for name in methods:
        expected = list(inspect.signature(getattr(twisted_class, name)).parameters)
        parameters = inspect.signature(getattr(hive_class, name)).parameters
        assert list(parameters)[: len(expected)] == expected, name
        extra = list(parameters.values())[len(expected) :]
        assert all(p.default is not inspect.Parameter.empty for p in extra), name
    factory = twisted_websocket.WebSocketServerFactory.buildProtocol
    assert list(inspect.signature(factory).parameters) == ["self", "request"]
    assert list(inspect.signature(WebSocketResource.__init__).parameters)[:2] == [
        "self",
        "factory",
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.loseConnection(1006), "not a close code"),
        (lambda t: t.loseConnection(5000), "not a close code"),
        (lambda t: t.loseConnection(1000, "x" * 124), "123 bytes"),
        (lambda t: t.ping(b"x" * 126), "125 bytes"),
    ],
)
def test_what_no_endpoint_may_send_is_a_value_error(call: Any, message: str) -> None:
    client, protocol = opened()
    with pytest.raises(ValueError, match=message):
        call(protocol.transport)
    client.send_text("still open")
    assert client.received()[0].data == b"still open"
