"""XML-RPC both ways: Python's ``xmlrpc.client`` against a real ``hive run``
(tests/services.py), and ``hive.xmlrpc.Proxy`` against that hive, against Python's own
``xmlrpc.server`` in a thread, and against a scripted server that misbehaves."""

from __future__ import annotations

import asyncio
import base64
import datetime
import gzip
import socket
import socketserver
import ssl
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import pytest

from hive import _httpclient as httpclient
from hive.xmlrpc import (
    BadStatus,
    Binary,
    DateTime,
    Fault,
    Proxy,
    ResponseError,
    ResponseTooLarge,
)
from tests.integration.conftest import HiveProcess
from tests.upstream import Upstream, UpstreamRequest

WHEN = datetime.datetime(2024, 5, 6, 7, 8, 9)

#: Values every XML-RPC peer must carry unchanged, with Python's types on both sides.
VALUES: list[Any] = [
    0,
    -(2**31),
    2**31 - 1,
    True,
    False,
    1.5,
    -0.0,
    1e300,
    float("inf"),
    "",
    "héllo ☃ <&> ]]>",
    [],
    [1, "a", [2.5, [True]]],
    {},
    {"a": 1, "nested": {"b": [False, "c"]}, "": "empty key"},
]


@pytest.fixture(scope="module")
def services() -> Iterator[HiveProcess]:
    server = HiveProcess(["tests.services:root", "--bind", "127.0.0.1:0"])
    server.wait_listening()
    yield server
    server.stop()


def run(test: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``test`` on a fresh loop; close the connections its pools keep."""

    async def main() -> Any:
        try:
            return await test()
        finally:
            for pool in list(httpclient._pools.values()):
                pool.close()
            await asyncio.sleep(0)

    return asyncio.run(main())


def pool_of(proxy: Proxy) -> httpclient.Pool:
    return httpclient._pools[proxy.host, proxy.port, proxy.ssl_context]


# -- xmlrpc.client against hive ----------------------------------------------------------------


def client(server: HiveProcess, path: str = "/RPC2", **options: Any) -> Any:
    return xmlrpc.client.ServerProxy(f"{server.url}{path}", **options)


def test_every_type_round_trips_with_xmlrpc_client(services: HiveProcess) -> None:
    with client(services, allow_none=True, use_builtin_types=True) as rpc:
        for value in [*VALUES, b"", b"\x00\xff" * 100, None, WHEN, [WHEN, b"b", None]]:
            assert rpc.echo(value) == value, value
        assert rpc.echo(float("nan")) != rpc.echo(float("nan"))  # NaN stays NaN
    with client(services) as rpc:
        # Without builtin types the client sees Binary and DateTime, as it sent them.
        assert rpc.echo(Binary(b"\x01")) == Binary(b"\x01")
        assert rpc.echo(DateTime(WHEN)) == DateTime(WHEN)
        assert rpc.echo(WHEN).value == "20240506T07:08:09"


def test_the_server_parses_what_xmlrpc_client_sends_to_python_types(
    services: HiveProcess,
) -> None:
    values = (1, True, 1.5, "s", b"x", [1], {"a": 1}, None, WHEN)
    expected = ["int", "bool", "float", "str", "Binary", "list", "dict", "NoneType"]
    with client(services, allow_none=True) as rpc:
        assert rpc.types(*values) == [*expected, "datetime"]  # useDateTime=True
    with client(services, "/plain", allow_none=True) as rpc:
        assert rpc.types(*values) == [*expected, "DateTime"]  # the default


def test_nil_needs_allow_none_on_the_server(services: HiveProcess) -> None:
    with client(services, "/plain", allow_none=True) as rpc:
        with pytest.raises(Fault) as caught:
            rpc.nothing()
        assert caught.value.faultCode == 8002 and "Can't serialize" in caught.value.faultString
        assert rpc.types(None) == ["NoneType"]  # nil is always understood coming in
    with client(services, allow_none=True) as rpc:
        assert rpc.nothing() is None
    with client(services) as rpc, pytest.raises(TypeError):
        rpc.echo(None)  # the client refuses to send it without allow_none


def test_values_xmlrpc_cannot_carry_are_faults_not_broken_answers(services: HiveProcess) -> None:
    with client(services, allow_none=True) as rpc:
        with pytest.raises(OverflowError):
            rpc.echo(2**31)  # refused by the client itself
        with pytest.raises(Fault) as caught:
            rpc.huge()  # 2**40: a fault from the server, not a broken answer
        assert "Can't serialize output" in caught.value.faultString
        assert rpc.echo({"k": [1]}) == {"k": [1]}


def test_faults_with_xmlrpc_client(services: HiveProcess) -> None:
    with client(services) as rpc:
        with pytest.raises(Fault) as caught:
            rpc.fault(42, "the answer")
        assert (caught.value.faultCode, caught.value.faultString) == (42, "the answer")
        with pytest.raises(Fault) as caught:
            rpc.fail()
        assert (caught.value.faultCode, caught.value.faultString) == (8002, "error")
        with pytest.raises(Fault) as caught:
            rpc.no_such_method()
        assert caught.value.faultCode == 8001
        assert rpc.echo(1) == 1  # and the worker goes on
    assert "a secret detail" in services.wait_for_output("a secret detail")


def test_introspection_with_xmlrpc_client(services: HiveProcess) -> None:
    with client(services) as rpc:
        methods = rpc.system.listMethods()
        for name in ["echo", "types", "system.listMethods", "system.multicall"]:
            assert name in methods
        assert rpc.system.methodHelp("echo") == "Return the value given."
        assert rpc.system.methodSignature("echo") == [["string", "string"]]
        assert rpc.system.methodSignature("fail") == ""


def test_multicall_with_xmlrpc_client(services: HiveProcess) -> None:
    with client(services, allow_none=True) as rpc:
        calls = xmlrpc.client.MultiCall(rpc)
        calls.echo(1)
        calls.fault(3, "three")
        calls.later("async", 0.01)
        calls.nothing()
        calls.no_such_method()
        results = calls()
        assert results[0] == 1
        with pytest.raises(Fault) as caught:
            results[1]
        assert (caught.value.faultCode, caught.value.faultString) == (3, "three")
        assert results[2] == "async"
        assert results[3] is None
        with pytest.raises(Fault):
            results[4]


def test_gzip_request_bodies_from_xmlrpc_client(services: HiveProcess) -> None:
    class GzipTransport(xmlrpc.client.Transport):
        encode_threshold = 0  # every request body gzipped

    with client(services, transport=GzipTransport()) as rpc:
        text = "compressible " * 10_000
        assert rpc.echo(text) == text
        headers = rpc.headers()
        assert headers["content-encoding"] == "gzip"


# -- hive.xmlrpc.Proxy against hive ------------------------------------------------------------


def test_proxy_carries_every_type_to_hive(services: HiveProcess) -> None:
    async def test() -> None:
        proxy = Proxy(f"{services.url}/RPC2", allowNone=True, useDateTime=True)
        for value in [*VALUES, None, WHEN, [WHEN, None]]:
            assert await proxy.callRemote("echo", value) == value, value
        assert await proxy.callRemote("echo", b"\x00\xff") == Binary(b"\x00\xff")
        assert await proxy.callRemote("later", "awaited", 0.01) == "awaited"
        plain = Proxy(f"{services.url}/plain".encode())  # bytes, as Twisted takes
        assert await plain.callRemote("echo", WHEN) == DateTime(WHEN)
        assert await plain.callRemote("types", WHEN) == ["DateTime"]
        with pytest.raises(TypeError):
            plain.callRemote("echo", None)  # not allowNone: refused before anything is sent

    run(test)


def test_proxy_calls_chain_as_deferreds(services: HiveProcess) -> None:
    """Twisted code's ``callRemote(...).addCallback(...).addErrback(...)``, unchanged."""
    from twisted.python.failure import Failure

    async def test() -> None:
        loop = asyncio.get_running_loop()
        proxy = Proxy(f"{services.url}/RPC2")
        call = proxy.callRemote("echo", 21)
        doubled = call.addCallback(lambda value: value * 2)
        assert await call == 21  # still a task to await
        assert await doubled.asFuture(loop) == 42

        def fault_code(failure: Failure) -> int:
            assert isinstance(failure.value, Fault)
            return int(failure.value.faultCode)

        caught = proxy.callRemote("fault", 7, "seven").addErrback(fault_code)
        assert await caught.asFuture(loop) == 7
        both = proxy.callRemote("later", "late", 0.01).addBoth(lambda result: [result])
        assert await both.asFuture(loop) == ["late"]

    run(test)


def test_proxy_faults_and_bad_status(services: HiveProcess) -> None:
    async def test() -> None:
        proxy = Proxy(f"{services.url}/RPC2")
        with pytest.raises(Fault) as caught:
            await proxy.callRemote("fault", 7, "seven")
        assert (caught.value.faultCode, caught.value.faultString) == (7, "seven")
        with pytest.raises(Fault) as caught:
            await proxy.callRemote("fail")
        assert caught.value.faultCode == 8002
        with pytest.raises(BadStatus) as status:
            await Proxy(f"{services.url}/nowhere").callRemote("echo", 1)
        assert status.value.status == 404 and status.value.args == (b"404", b"Not Found")
        assert isinstance(status.value, ValueError)  # what Twisted raises
        multi = await proxy.callRemote(
            "system.multicall",
            [{"methodName": "echo", "params": [5]}, {"methodName": "system.multicall"}],
        )
        assert multi[0] == [5] and "recursive" in multi[1]["faultString"]

    run(test)


def test_proxy_keeps_its_connection_alive(services: HiveProcess) -> None:
    async def test() -> None:
        proxy = Proxy(f"{services.url}/RPC2", pool_size=2)
        for i in range(20):
            assert await proxy.callRemote("echo", i) == i
        assert pool_of(proxy).opened == 1
        other = Proxy(f"{services.url}/plain")  # the same origin shares the pool
        assert await other.callRemote("echo", 1) == 1
        assert pool_of(proxy).opened == 1
        # Concurrent calls take connections of their own; the pool keeps pool_size.
        results = await asyncio.gather(*(proxy.callRemote("later", i, 0.05) for i in range(5)))
        assert results == list(range(5))
        assert pool_of(proxy).opened == 5 and len(pool_of(proxy).idle) == 2

    run(test)


def test_proxy_sends_authorization_and_extra_headers(services: HiveProcess) -> None:
    async def test() -> None:
        url = f"http://ada:se%3Acret@127.0.0.1:{services.port}/RPC2"
        proxy = Proxy(url, headers={"X-Token": "t0k"})
        headers = await proxy.callRemote("headers")
        assert headers["authorization"] == "Basic " + base64.b64encode(b"ada:se:cret").decode()
        assert headers["x-token"] == "t0k"
        assert headers["content-type"] == "text/xml; charset=utf-8"
        assert headers["host"] == f"127.0.0.1:{services.port}"
        override = Proxy(url, user="bob", password="pw")
        headers = await override.callRemote("headers")
        assert headers["authorization"] == "Basic " + base64.b64encode(b"bob:pw").decode()

    run(test)


def test_proxy_response_timeout(services: HiveProcess) -> None:
    async def test() -> None:
        proxy = Proxy(f"{services.url}/RPC2", timeout=0.3)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="no answer"):
            await proxy.callRemote("later", 1, 5.0)
        assert time.monotonic() - started < 3
        assert await proxy.callRemote("later", 2, 0.0) == 2  # the next call is fine

    run(test)


def test_proxy_connect_timeout() -> None:
    """A listening socket whose accept queue is full drops further SYNs: connect hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.1)

        async def test() -> None:
            proxy = Proxy(f"http://127.0.0.1:{port}/", connectTimeout=0.3)
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="no connection"):
                await proxy.callRemote("echo", 1)
            assert time.monotonic() - started < 3

        run(test)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_proxy_response_size_limit(services: HiveProcess) -> None:
    async def test() -> None:
        proxy = Proxy(f"{services.url}/RPC2", max_response_size=10_000)
        assert len(await proxy.callRemote("big", 5_000)) == 5_000
        with pytest.raises(ResponseTooLarge):
            await proxy.callRemote("big", 20_000)
        assert len(await proxy.callRemote("big", 10)) == 10

    run(test)


def test_cancelling_a_call_drops_its_connection(services: HiveProcess) -> None:
    async def test() -> None:
        proxy = Proxy(f"{services.url}/RPC2")
        call = proxy.callRemote("later", 1, 5.0)
        await asyncio.sleep(0.2)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert not pool_of(proxy).idle
        assert await proxy.callRemote("echo", 3) == 3

    run(test)


def test_proxy_over_https(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    tls = ["--certfile", str(cert), "--keyfile", str(key)]
    server = HiveProcess(["tests.services:root", "--bind", "127.0.0.1:0", *tls])
    try:
        server.wait_listening()
        url = f"https://127.0.0.1:{server.port}/RPC2"

        async def test() -> None:
            context = ssl.create_default_context(cafile=str(cert))
            proxy = Proxy(url, ssl_context=context)
            assert proxy.secure
            for i in range(3):
                assert await proxy.callRemote("echo", i) == i
            assert pool_of(proxy).opened == 1
            with pytest.raises(ssl.SSLCertVerificationError):
                await Proxy(url).callRemote("echo", 1)  # self-signed: not trusted by default

        run(test)
    finally:
        server.stop()


# -- hive.xmlrpc.Proxy against Python's xmlrpc.server ------------------------------------------


class PythonServer(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
    """Python's own XML-RPC server, counting the connections it accepts."""

    daemon_threads = True
    accepted = 0

    def get_request(self) -> tuple[socket.socket, Any]:
        self.accepted += 1
        return super().get_request()


class KeepAliveHandler(SimpleXMLRPCRequestHandler):
    protocol_version = "HTTP/1.1"
    encodings_sent: list[str] = []  # noqa: RUF012

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "content-encoding":
            self.encodings_sent.append(value)
        super().send_header(keyword, value)


@pytest.fixture(params=["HTTP/1.0", "HTTP/1.1"])
def python_server(request: pytest.FixtureRequest) -> Iterator[PythonServer]:
    handler = KeepAliveHandler if request.param == "HTTP/1.1" else SimpleXMLRPCRequestHandler
    server = PythonServer(
        ("127.0.0.1", 0),
        requestHandler=handler,
        allow_none=True,
        use_builtin_types=True,
        logRequests=False,
    )
    server.register_function(lambda value: value, "echo")
    server.register_function(lambda size: "x" * size, "big")

    def fault() -> None:
        raise Fault(9, "nine")

    server.register_function(fault, "fault")
    server.register_function(lambda: 1 / 0, "fail")
    server.register_introspection_functions()
    server.register_multicall_functions()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def python_url(server: PythonServer) -> str:
    return "http://127.0.0.1:%d/RPC2" % server.server_address[1]


def test_proxy_against_python_xmlrpc_server(python_server: PythonServer) -> None:
    async def test() -> None:
        proxy = Proxy(python_url(python_server), allowNone=True, useDateTime=True)
        for value in [*VALUES, None, WHEN]:
            assert await proxy.callRemote("echo", value) == value, value
        assert await proxy.callRemote("echo", Binary(b"\x00")) == Binary(b"\x00")
        with pytest.raises(Fault) as caught:
            await proxy.callRemote("fault")
        assert (caught.value.faultCode, caught.value.faultString) == (9, "nine")
        with pytest.raises(Fault) as caught:
            await proxy.callRemote("fail")
        assert "ZeroDivisionError" in caught.value.faultString
        assert "echo" in await proxy.callRemote("system.listMethods")
        multi = await proxy.callRemote(
            "system.multicall",
            [{"methodName": "echo", "params": [1]}, {"methodName": "fault", "params": []}],
        )
        assert multi == [[1], {"faultCode": 9, "faultString": "nine"}]

    run(test)


def test_proxy_reuses_connections_only_where_the_server_keeps_them(
    python_server: PythonServer,
) -> None:
    async def test() -> None:
        proxy = Proxy(python_url(python_server))
        for i in range(5):
            assert await proxy.callRemote("echo", i) == i

    run(test)
    keeps_alive = python_server.RequestHandlerClass is KeepAliveHandler
    assert python_server.accepted == (1 if keeps_alive else 5)


def test_proxy_reads_gzip_answers_within_the_size_limit(python_server: PythonServer) -> None:
    KeepAliveHandler.encodings_sent.clear()

    async def test() -> None:
        proxy = Proxy(python_url(python_server))
        assert await proxy.callRemote("big", 100_000) == "x" * 100_000
        small = Proxy(python_url(python_server), max_response_size=50_000)
        with pytest.raises(ResponseTooLarge):
            await small.callRemote("big", 100_000)  # a few hundred bytes on the wire

    run(test)
    if python_server.RequestHandlerClass is KeepAliveHandler:
        assert KeepAliveHandler.encodings_sent == ["gzip", "gzip"]


# -- hive.xmlrpc.Proxy against a server that misbehaves ----------------------------------------


RESPONSE = xmlrpc.client.dumps(("fine",), methodresponse=True).encode()


def answer(sock: socket.socket, body: bytes = RESPONSE, extra: bytes = b"") -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body))


raced: list[int] = []


def misbehaving(request: UpstreamRequest, sock: socket.socket) -> bool:
    path = request.target
    if path == b"/close":
        return False  # closes without a word
    if path == b"/midbody":
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<?xml")
        return False
    if path == b"/garbage":
        sock.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        return False
    if path == b"/html":
        answer(sock, b"<html><body>not XML-RPC</body></html>")
        return True
    if path == b"/doctype":
        answer(sock, b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]>' + RESPONSE[21:])
        return True
    if path == b"/gzip":
        answer(sock, gzip.compress(RESPONSE), b"Content-Encoding: gzip\r\n")
        return True
    if path == b"/br":
        answer(sock, b"??", b"Content-Encoding: br\r\n")
        return True
    if path == b"/race" and b"second" in request.body and not raced:
        raced.append(request.connection)
        return False  # the keep-alive race: closed just as the second call came
    answer(sock)
    return True


def test_proxy_against_a_server_that_misbehaves() -> None:
    with Upstream(misbehaving) as up:
        base = f"http://127.0.0.1:{up.port}"

        async def test() -> None:
            with pytest.raises(ConnectionError):
                await Proxy(base + "/close").callRemote("x")
            for path in ["/midbody", "/garbage"]:
                with pytest.raises(ResponseError, match="malformed HTTP"):
                    await Proxy(base + path).callRemote("x")
            with pytest.raises(ResponseError, match="not an XML-RPC response"):
                await Proxy(base + "/html").callRemote("x")
            with pytest.raises(ResponseError, match="document type"):
                await Proxy(base + "/doctype").callRemote("x")
            assert await Proxy(base + "/gzip").callRemote("x") == "fine"
            with pytest.raises(ResponseError, match="not supported"):
                await Proxy(base + "/br").callRemote("x")
            race = Proxy(base + "/race")
            assert await race.callRemote("first") == "fine"
            assert await race.callRemote("second") == "fine"  # sent again, on a new connection

        run(test)
        first, *rest = [r.connection for r in up.requests if r.target == b"/race"]
        assert rest == [first, first + 1]
