"""hive.listen: a Site served on the test's own asyncio loop (and uvloop's), over real sockets.

What a library owes the program it lives in is checked too: no signal handlers, no
logging configuration, nothing left listening after stopListening.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import signal
import socket
import ssl
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

import hive
from hive.address import IPv4Address, IPv6Address, UNIXAddress
from hive.resource import Resource
from hive.server import NOT_DONE_YET
from hive.supervisor.listeners import ListenerError
from hive.websocket import WebSocketResource, WebSocketTransport

LOOPS = ["asyncio", "uvloop"]


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        return b"hello from the program's loop"


class Slow(Resource):
    """Answers after ``delay`` seconds: a request in flight when the port stops."""

    isLeaf = True

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.started = asyncio.Event()

    def render_GET(self, request: Any) -> object:
        async def later() -> None:
            await asyncio.sleep(self.delay)
            request.write(b"finished")
            request.finish()

        self.started.set()
        asyncio.get_running_loop().create_task(later())
        return NOT_DONE_YET


class Echo:
    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def textMessageReceived(self, message: str) -> None:
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        pass

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: BaseException) -> None:
        pass


class EchoFactory:
    def buildProtocol(self, request: Any) -> Echo:
        return Echo()


def tree(slow: Slow | None = None) -> Resource:
    root = Resource()
    root.putChild(b"", Hello())
    root.putChild(b"slow", slow or Slow(0.5))
    root.putChild(b"ws", WebSocketResource(EchoFactory()))
    return root


def on_loop(kind: str, test: Callable[[], Coroutine[Any, Any, None]], timeout: float = 30) -> None:
    if kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    else:
        runner = asyncio.Runner()
    with runner:
        runner.run(asyncio.wait_for(test(), timeout))


def get(port: int, path: str = "/", host: str = "127.0.0.1") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("kind", LOOPS)
def test_tcp_serves_on_the_running_loop(kind: str) -> None:
    async def test() -> None:
        handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        root_handlers = list(logging.getLogger().handlers)
        port = await hive.listen(tree(), "127.0.0.1:0")
        host = port.getHost()
        assert isinstance(host, IPv4Address) and host.host == "127.0.0.1" and host.port > 0
        assert await asyncio.to_thread(get, host.port) == (200, b"hello from the program's loop")
        # A library: no signal handlers, no logging set up.
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
        assert logging.getLogger().handlers == root_handlers
        await port.stopListening()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", host.port), timeout=5).close()

    on_loop(kind, test)


def test_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")

    async def test() -> None:
        try:
            port = await hive.listen(tree(), "[::1]:0")
        except ListenerError as exc:
            pytest.skip(f"no IPv6 loopback: {exc}")
        host = port.getHost()
        assert isinstance(host, IPv6Address) and host.host == "::1"
        assert (await asyncio.to_thread(get, host.port, "/", "::1"))[0] == 200
        await port.stopListening()

    on_loop("asyncio", test)


@pytest.mark.parametrize("kind", LOOPS)
def test_unix_socket(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "app.sock"

    def over_unix() -> bytes:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return b"".join(iter(lambda: sock.recv(65536), b""))

    async def test() -> None:
        port = await hive.listen(tree(), f"unix:{path}")
        host = port.getHost()
        assert isinstance(host, UNIXAddress) and host.name == bytes(path)
        answer = await asyncio.to_thread(over_unix)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"program's loop")
        await port.stopListening()
        assert not path.exists()

    on_loop(kind, test)


def test_tls_from_files_and_from_a_context(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    client = ssl.create_default_context(cafile=str(cert))

    def get_tls(number: int) -> tuple[int, bytes]:
        connection = http.client.HTTPSConnection("127.0.0.1", number, timeout=10, context=client)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    async def test() -> None:
        port = await hive.listen(tree(), "127.0.0.1:0", certfile=str(cert), keyfile=str(key))
        host = port.getHost()
        assert isinstance(host, IPv4Address)
        assert (await asyncio.to_thread(get_tls, host.port))[0] == 200
        await port.stopListening()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))
        port = await hive.listen(tree(), "127.0.0.1:0", ssl=context)
        host = port.getHost()
        assert isinstance(host, IPv4Address)
        assert (await asyncio.to_thread(get_tls, host.port))[0] == 200
        await port.stopListening()

    on_loop("asyncio", test)


def test_bad_addresses_are_one_line_errors() -> None:
    async def test() -> None:
        with pytest.raises(ListenerError, match="invalid listen address"):
            await hive.listen(tree(), "127.0.0.1:notaport")
        port = await hive.listen(tree(), "127.0.0.1:0")
        host = port.getHost()
        assert isinstance(host, IPv4Address)
        with pytest.raises(ListenerError, match="address already in use"):
            await hive.listen(tree(), f"127.0.0.1:{host.port}")
        await port.stopListening()
        with pytest.raises(ValueError, match="both certfile and keyfile"):
            await hive.listen(tree(), "127.0.0.1:0", certfile="x.pem")

    on_loop("asyncio", test)


@pytest.mark.parametrize("kind", LOOPS)
def test_stop_listening_lets_requests_in_flight_finish(kind: str) -> None:
    async def test() -> None:
        slow = Slow(0.5)
        port = await hive.listen(tree(slow), "127.0.0.1:0")
        host = port.getHost()
        assert isinstance(host, IPv4Address)
        answer = asyncio.ensure_future(asyncio.to_thread(get, host.port, "/slow"))
        await asyncio.wait_for(slow.started.wait(), 10)
        stopping = asyncio.ensure_future(port.stopListening())
        await asyncio.sleep(0.1)
        # No new connections while the old request finishes.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", host.port), timeout=5).close()
        assert await answer == (200, b"finished")
        await stopping

    on_loop(kind, test)


def test_stop_listening_closes_websockets_with_1001_after_the_grace() -> None:
    async def test() -> None:
        port = await hive.listen(tree(), "127.0.0.1:0", websocket_grace=0.3)
        host = port.getHost()
        assert isinstance(host, IPv4Address)
        async with websockets.connect(f"ws://127.0.0.1:{host.port}/ws") as ws:
            await ws.send("still here")
            assert await ws.recv() == "still here"
            loop = asyncio.get_running_loop()
            started = loop.time()
            stopping = asyncio.ensure_future(port.stopListening())
            await ws.send("during the grace")
            assert await ws.recv() == "during the grace"
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            assert loop.time() - started >= 0.25
            await stopping
            assert port.connections == 0

    on_loop("asyncio", test)
