"""WebSockets under ``hive run`` with 2 workers: the websockets client library and raw frames.

RFC 6455 over real sockets: handshake errors, fragmentation, control frames inside
fragmented messages, ping/pong, the close handshake and its codes, invalid UTF-8 (1007),
reserved bits and unmasked frames (1002), oversize (1009), 10,000 messages in order,
origins, subprotocols, and a real ``hive reload`` closing open WebSockets with 1001.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.integration.conftest import HiveProcess

APP = """
import asyncio, os
from hive.resource import Resource
from hive.websocket import WebSocketResource


class Echo:
    def negotiationStarted(self, transport):
        self.transport = transport

    def negotiationFinished(self):
        pass

    def textMessageReceived(self, message):
        if message == "pid":
            self.transport.sendTextMessage(str(os.getpid()))
        elif message == "subprotocol":
            self.transport.sendTextMessage(str(self.transport.subprotocol))
        else:
            self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data):
        self.transport.sendBytesMessage(data)

    def pongReceived(self, payload):
        self.transport.sendTextMessage("pong " + payload.decode())

    def connectionLost(self, reason):
        pass


class AsyncEcho(Echo):
    async def textMessageReceived(self, message):
        await asyncio.sleep(0)
        self.transport.sendTextMessage(message)
        await self.transport.drain()


class Factory:
    def __init__(self, kind):
        self.kind = kind

    def buildProtocol(self, request):
        return self.kind()


root = Resource()
root.putChild(b"echo", WebSocketResource(Factory(Echo), maxMessageSize=65536))
root.putChild(b"async", WebSocketResource(Factory(AsyncEcho)))
root.putChild(b"deflate", WebSocketResource(Factory(Echo), compression=True, maxMessageSize=65536))
root.putChild(b"chat", WebSocketResource(Factory(Echo), subprotocols=["chat.v2", "chat"]))
root.putChild(
    b"partner", WebSocketResource(Factory(Echo), allowedOrigins=["https://partner.example"])
)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    app_dir: Path = tmp_path_factory.mktemp("ws")
    (app_dir / "wsapp.py").write_text(textwrap.dedent(APP))
    process = HiveProcess(
        [
            "wsapp:root",
            "--bind",
            "127.0.0.1:0",
            "--app-dir",
            str(app_dir),
            "--workers",
            "2",
            "--no-access-log",
            "--websocket-drain-timeout",
            "1",
        ]
    )
    try:
        process.wait_listening()
        yield process
    finally:
        process.stop()


def url(server: HiveProcess, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def ws_run(coro: Any, timeout: float = 60.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


# -- with the websockets client library ------------------------------------------------------


def test_echo_text_and_bytes(server: HiveProcess) -> None:
    async def go() -> None:
        async with websockets.connect(url(server, "/echo")) as ws:
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
            # The library fragments an iterable into one message.
            await ws.send(["frag", "mented"])
            assert await ws.recv() == "fragmented"
            pong = await ws.ping(b"abc")
            await asyncio.wait_for(pong, 10)

    ws_run(go())


def test_ten_thousand_small_messages_in_order(server: HiveProcess) -> None:
    async def go(path: str) -> None:
        async with websockets.connect(url(server, path)) as ws:

            async def send() -> None:
                for i in range(10_000):
                    await ws.send(f"m{i}")

            sender = asyncio.ensure_future(send())
            for i in range(10_000):
                assert await ws.recv() == f"m{i}"
            await sender

    ws_run(go("/echo"))
    ws_run(go("/async"))  # through an async def handler, with drain()


def test_subprotocol_negotiation(server: HiveProcess) -> None:
    async def go() -> None:
        async with websockets.connect(
            url(server, "/chat"),
            subprotocols=["chat", "chat.v2"],  # type: ignore[list-item]
        ) as ws:
            assert ws.subprotocol == "chat.v2"  # the server's preference
            await ws.send("subprotocol")
            assert await ws.recv() == "chat.v2"
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(url(server, "/chat"), subprotocols=["irc"]):  # type: ignore[list-item]
                pass
        assert refused.value.response.status_code == 400
        assert b"no common subprotocol" in refused.value.response.body

    ws_run(go())


def test_cross_site_origins_are_refused(server: HiveProcess) -> None:
    async def go() -> None:
        host = f"127.0.0.1:{server.port}"
        async with websockets.connect(url(server, "/echo"), origin=f"http://{host}") as ws:  # type: ignore[arg-type]
            await ws.send("same origin")
            assert await ws.recv() == "same origin"
        for path, origin in [("/echo", "http://evil.example"), ("/partner", f"http://{host}")]:
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(url(server, path), origin=origin):  # type: ignore[arg-type]
                    pass
            assert refused.value.response.status_code == 403
        async with websockets.connect(
            url(server, "/partner"),
            origin="https://partner.example",  # type: ignore[arg-type]
        ) as ws:
            await ws.send("partner")
            assert await ws.recv() == "partner"

    ws_run(go())


def test_permessage_deflate_when_turned_on(server: HiveProcess) -> None:
    async def go() -> None:
        async with websockets.connect(url(server, "/echo")) as plain:
            assert plain.protocol.extensions == []  # off by default, though offered
        async with websockets.connect(url(server, "/deflate"), max_size=None) as ws:
            (extension,) = ws.protocol.extensions
            assert extension.name == "permessage-deflate"
            text = "compressible " * 4000
            await ws.send(text)
            assert await ws.recv() == text
            # The limit is on the message as decompressed: 64 KiB of zeros compress to
            # almost nothing, and still close with 1009.
            await ws.send(b"\0" * 65537)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    ws_run(go())


def test_oversize_message_closes_with_1009(server: HiveProcess) -> None:
    async def go() -> None:
        async with websockets.connect(url(server, "/echo"), max_size=None) as ws:
            await ws.send(b"x" * 65537)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    ws_run(go())


# -- with raw frames over a socket ----------------------------------------------------------


class RawClient:
    """A WebSocket client written from RFC 6455, for frames no library sends."""

    def __init__(self, server: HiveProcess, path: str = "/echo", **headers: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        fields = {
            "Host": f"127.0.0.1:{server.port}",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        }
        lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items() if v)]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1]) if head else 0
        self.head = head

    def send(self, opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, mask: bool = True):  # type: ignore[no-untyped-def]
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        bit = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", first, bit | n)
        elif n < 65536:
            head = struct.pack("!BBH", first, bit | 126, n)
        else:
            head = struct.pack("!BBQ", first, bit | 127, n)
        if mask:
            key = os.urandom(4)
            payload = key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + payload)

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"closed with {self.buffer!r} read")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def frame(self) -> tuple[int, bool, bytes]:
        first, second = self._read(2)
        assert second & 0x80 == 0, "server frames are not masked"
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read(8))
        return first & 0x0F, bool(first & 0x80), self._read(n)

    def close_code(self) -> int:
        """Read frames until the close frame; return its code, and see the TCP close."""
        while True:
            opcode, _fin, payload = self.frame()
            if opcode == 0x8:
                code: int = struct.unpack("!H", payload[:2])[0]
                assert self.sock.recv(1) == b"", "the server closes TCP after its close"
                return code

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize(
    ("path", "headers", "status", "reason"),
    [
        ("/echo", {"Upgrade": ""}, 426, b"Upgrade: websocket"),
        ("/echo", {"Sec-WebSocket-Version": "8"}, 426, b"speaks 13"),
        ("/echo", {"Sec-WebSocket-Key": "c2hvcnQ="}, 400, b"16 bytes"),
        ("/echo", {"Connection": "keep-alive"}, 400, b"Connection: Upgrade"),
    ],
)
def test_handshake_errors(
    server: HiveProcess, path: str, headers: dict[str, str], status: int, reason: bytes
) -> None:
    client = RawClient(server, path, **headers)
    try:
        assert client.status == status
        if status == 426:
            assert b"Sec-WebSocket-Version: 13" in client.head
        body = client.buffer
        while reason not in body:
            chunk = client.sock.recv(65536)
            if not chunk:
                break
            body += chunk
        assert reason in body
    finally:
        client.close()


def test_fragments_with_control_frames_between_them(server: HiveProcess) -> None:
    client = RawClient(server)
    try:
        assert client.status == 101
        client.send(0x1, b"one ", fin=False)
        client.send(0x9, b"ping inside")
        client.send(0x0, b"two ", fin=False)
        client.send(0xA, b"unsolicited")
        client.send(0x0, b"three")
        assert client.frame() == (0xA, True, b"ping inside")
        assert client.frame() == (0x1, True, b"pong unsolicited")
        assert client.frame() == (0x1, True, b"one two three")
        client.send(0x8, struct.pack("!H", 1000) + b"bye")
        opcode, _fin, payload = client.frame()
        assert opcode == 0x8 and payload == struct.pack("!H", 1000) + b"bye"
        assert client.sock.recv(1) == b""
    finally:
        client.close()


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        pytest.param([(0x1, b"\xff\xfe", True, 0, True)], 1007, id="invalid UTF-8"),
        pytest.param([(0x1, b"hi", True, 0b010, True)], 1002, id="reserved bit"),
        pytest.param([(0x1, b"hi", True, 0, False)], 1002, id="unmasked"),
        pytest.param([(0x9, b"p", False, 0, True)], 1002, id="fragmented ping"),
        pytest.param(
            [(0x1, b"a" * 40000, False, 0, True), (0x0, b"a" * 30000, True, 0, True)],
            1009,
            id="oversize in fragments",
        ),
    ],
)
def test_broken_frames_get_the_rfcs_close_code(
    server: HiveProcess, frames: list[tuple[int, bytes, bool, int, bool]], code: int
) -> None:
    client = RawClient(server)
    try:
        assert client.status == 101
        for opcode, payload, fin, rsv, mask in frames:
            client.send(opcode, payload, fin=fin, rsv=rsv, mask=mask)
        assert client.close_code() == code
    finally:
        client.close()


# -- draining across a real reload --------------------------------------------------------------


def test_reload_closes_open_websockets_with_1001_and_they_reconnect(server: HiveProcess) -> None:
    async def go() -> None:
        clients = [await websockets.connect(url(server, "/echo")) for _ in range(8)]
        before = set()
        for ws in clients:
            await ws.send("pid")
            before.add(await ws.recv())
        assert len(before) == 2, "both workers serve WebSockets"
        started = time.monotonic()
        reload = asyncio.get_running_loop().run_in_executor(None, server.ctl, "reload")
        for ws in clients:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        result = await reload
        assert result.returncode == 0, result.stderr
        # The drain grace is 1 s: nothing held the reload near its 30 s graceful timeout.
        assert time.monotonic() - started < 15
        async with websockets.connect(url(server, "/echo")) as ws:
            await ws.send("pid")
            assert await ws.recv() not in before  # a worker of the new generation

    ws_run(go(), timeout=90)
