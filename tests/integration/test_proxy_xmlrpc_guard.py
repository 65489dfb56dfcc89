"""The standard resources in real ``hive run`` processes: XML-RPC and HTTP authentication
(examples/standard.py), and the reverse proxy in front of a second hive and of a scripted,
sometimes hostile, upstream running in this test process."""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.conftest import HiveProcess
from tests.upstream import Upstream, UpstreamRequest


def start_hive(*args: str) -> HiveProcess:
    process = HiveProcess([*args, "--bind", "127.0.0.1:0"])
    process.wait_listening()
    return process


def worker_pids(server: HiveProcess) -> set[int]:
    return {child.pid for child in psutil.Process(server.pid).children()}


def connect(server: HiveProcess, timeout: float = 10.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)


def get(
    server: HiveProcess, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[http.client.HTTPResponse, bytes]:
    conn = connect(server)
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


# -- XML-RPC and HTTP authentication: examples/standard.py ------------------------------------


@pytest.fixture(scope="module")
def standard() -> Iterator[HiveProcess]:
    server = start_hive("examples.standard:root")
    yield server
    server.stop()


def rpc(server: HiveProcess) -> Any:
    """The standard library's client (its results are typed as any XML-RPC value)."""
    return xmlrpc.client.ServerProxy(f"{server.url}/RPC2", allow_none=True, use_datetime=True)


def test_xmlrpc_calls_with_the_standard_client(standard: HiveProcess) -> None:
    with rpc(standard) as proxy:
        assert proxy.add(2, 3) == 5
        assert proxy.subtract(2.5, 1) == 1.5
        assert proxy.multiply(4, 5) == 20
        assert proxy.slow_add(1, 2, 0.05) == 3  # async def
        assert proxy.text.upper("hive") == "HIVE"  # a sub-handler
        assert proxy.maybe(None) is None and proxy.maybe({"a": [1]}) == {"a": [1]}
        now = proxy.now()
        assert isinstance(now, datetime.datetime)
        utc = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        assert abs((now - utc).total_seconds()) < 60
        assert proxy.client() == "127.0.0.1"  # withRequest


def test_xmlrpc_faults(standard: HiveProcess) -> None:
    with rpc(standard) as proxy:
        with pytest.raises(xmlrpc.client.Fault) as caught:
            proxy.divide(1, 0)
        assert (caught.value.faultCode, caught.value.faultString) == (1, "division by zero")
        with pytest.raises(xmlrpc.client.Fault) as caught:
            proxy.no_such_method()
        assert caught.value.faultCode == 8001
        with pytest.raises(xmlrpc.client.Fault) as caught:
            proxy.add("a", 1)  # TypeError in the method: fault 8002, the details only logged
        assert (caught.value.faultCode, caught.value.faultString) == (8002, "error")
        assert proxy.add(1, 1) == 2  # and the worker goes on


def test_xmlrpc_introspection(standard: HiveProcess) -> None:
    with rpc(standard) as proxy:
        methods = proxy.system.listMethods()
        for name in [
            "add",
            "divide",
            "slow_add",
            "text.upper",
            "text.reverse",
            "system.methodHelp",
        ]:
            assert name in methods
        assert proxy.system.methodHelp("divide") == "Return a / b; fault 1 when b is zero."
        assert proxy.system.methodSignature("add") == [["double", "double", "double"]]
        assert proxy.system.methodSignature("system.listMethods") == [["array"]]


def test_xmlrpc_async_methods_do_not_block_the_worker(standard: HiveProcess) -> None:
    results: list[float] = []

    def slow() -> None:
        with rpc(standard) as proxy:
            results.append(proxy.slow_add(1, 1, 1.0))

    started = time.monotonic()
    threads = [threading.Thread(target=slow) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert results == [2] * 5
    assert time.monotonic() - started < 4  # five one-second calls overlapped on one worker


def test_xmlrpc_refuses_other_methods_and_bad_bodies(standard: HiveProcess) -> None:
    response, _ = get(standard, "/RPC2")
    assert response.status == 405 and response.getheader("Allow") == "POST"
    conn = connect(standard)
    conn.request("POST", "/RPC2", body=b"<!DOCTYPE x [<!ENTITY a 'b'>]><methodCall/>")
    answer = conn.getresponse()
    assert answer.status == 200
    with pytest.raises(xmlrpc.client.Fault) as caught:
        xmlrpc.client.loads(answer.read())
    assert caught.value.faultCode == 8002
    conn.request("POST", "/RPC2", body=b"x" * (5 * 1024 * 1024))
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 413
    conn.close()


def curl(*args: str) -> tuple[int, str]:
    """Run curl; the status code and the response headers."""
    with tempfile.NamedTemporaryFile() as headers:
        result = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-D", headers.name, "-w", "%{http_code}", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return int(result.stdout), Path(headers.name).read_text()


def test_guard_with_curl(standard: HiveProcess) -> None:
    url = f"{standard.url}/private"
    status, headers = curl(url)
    assert status == 401
    assert 'WWW-Authenticate: Basic realm="hive example", charset=UTF-8' in headers
    assert 'WWW-Authenticate: Digest realm="hive example", qop="auth", algorithm=SHA-256' in headers
    assert curl("-u", "admin:wrong", url)[0] == 401
    assert curl("-u", "nobody:hive", url)[0] == 401
    assert curl("-u", "admin:hive", url)[0] == 200
    assert curl("-u", "admin:hive", "-I", url)[0] == 200
    assert curl("--digest", "-u", "admin:hive", url)[0] == 200
    assert curl("--digest", "-u", "admin:wrong", url)[0] == 401


def test_guard_with_http_client(standard: HiveProcess) -> None:
    def auth(user: str, password: str) -> dict[str, str]:
        import base64

        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    conn = connect(standard)
    # Wrong passwords of every length, unknown users, and the right one, on one connection:
    # each wrong answer is a 401 that leaves the connection usable.
    for user, password in [
        ("admin", ""),
        ("admin", "h"),
        ("admin", "hivf"),
        ("admin", "hive" * 1000),
        ("nobody", "hive"),
        ("", ""),
    ]:
        conn.request("GET", "/private", headers=auth(user, password))
        response = conn.getresponse()
        assert response.status == 401, (user, password)
        challenges = response.headers.get_all("WWW-Authenticate") or []
        assert 'Basic realm="hive example", charset=UTF-8' in challenges
        assert response.read() == b"Unauthorized"
    conn.request("GET", "/private", headers=auth("admin", "hive"))
    response = conn.getresponse()
    assert response.status == 200
    assert b"Hello, admin." in response.read()  # the realm's page for the user
    conn.close()


# -- the reverse proxy ---------------------------------------------------------------------


BIG = 1024 * 1024 * 1024  # more than the worker could ever buffer unnoticed
sent_big = [0]


def respond(request: UpstreamRequest, sock: socket.socket) -> bool:
    """The scripted upstream: what it does depends on the path."""
    path = request.target.split(b"?")[0]
    if path == b"/ok":
        body = json.dumps(
            {name.decode(): value.decode("latin-1") for name, value in request.headers}
        ).encode()
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        return True
    if path == b"/hop":
        sock.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Private\r\nX-Private: 1\r\n"
            b"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nX-Public: 1\r\n\r\nok"
        )
        return True
    if path == b"/chunked":
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in [b"one ", b"two ", b"three"]:
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            time.sleep(0.05)
        sock.sendall(b"0\r\n\r\n")
        return True
    if path == b"/close-delimited":
        sock.sendall(b"HTTP/1.0 200 OK\r\n\r\nthe end is the end")
        return False
    if path == b"/garbage":
        sock.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        return False
    if path == b"/hang":
        sock.settimeout(10)
        with contextlib.suppress(OSError):
            sock.recv(1)  # until the proxy lets go
        return False
    if path == b"/midbody":
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"m" * 1000)
        time.sleep(0.1)
        return False
    if path == b"/huge-headers":
        sock.sendall(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * 200_000 + b"\r\n\r\n")
        return False
    if path == b"/big":
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
        block = b"b" * (1024 * 1024)
        sent_big[0] = 0
        while sent_big[0] < BIG:
            sock.sendall(block)
            sent_big[0] += len(block)
        return True
    sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    return True


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream(respond) as up:
        yield up


@pytest.fixture(scope="module")
def site_hive() -> Iterator[HiveProcess]:
    server = start_hive("examples.site:root")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy_hive(upstream: Upstream, site_hive: HiveProcess) -> Iterator[HiveProcess]:
    app_dir = Path(tempfile.mkdtemp(prefix="hive-proxy-app-"))
    (app_dir / "proxy_app.py").write_text(
        textwrap.dedent(
            f"""
            from hive.proxy import ReverseProxyResource
            from hive.resource import Resource

            root = Resource()
            root.putChild(
                b"up", ReverseProxyResource("127.0.0.1", {upstream.port}, b"", read_timeout=1.0)
            )
            root.putChild(b"site", ReverseProxyResource("127.0.0.1", {site_hive.port}, b""))
            """
        )
    )
    server = start_hive("proxy_app:root", "--app-dir", str(app_dir))
    yield server
    server.stop()


def test_proxy_to_a_second_hive(proxy_hive: HiveProcess) -> None:
    conn = connect(proxy_hive)
    conn.request("GET", "/site/hello")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"Hello, world!")
    conn.request("HEAD", "/site/hello")
    response = conn.getresponse()
    assert response.getheader("Content-Length") == "13" and response.read() == b""
    conn.request("GET", "/site/countdown?from=2")  # streamed by the upstream: chunked
    response = conn.getresponse()
    assert response.read() == b"2...\n1...\nliftoff!\n"
    conn.request(
        "POST",
        "/site/guestbook",
        body="name=Proxy&text=via+hive",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = conn.getresponse()
    response.read()
    assert response.status == 302 and response.getheader("Location") == "/guestbook"
    conn.request("GET", "/site/nowhere")
    response = conn.getresponse()
    response.read()
    assert response.status == 404
    conn.close()


def test_forwarded_headers_and_hop_by_hop_removal(
    proxy_hive: HiveProcess, upstream: Upstream
) -> None:
    response, body = get(
        proxy_hive,
        "/up/ok?a=1",
        headers={
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "secret",
            "Keep-Alive": "timeout=1",
            "Proxy-Authorization": "Basic eDp5",
            "TE": "trailers",
            "Upgrade": "websocket",
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-End-To-End": "kept",
        },
    )
    seen = json.loads(body)
    assert response.status == 200
    for hop in ["x-hop", "keep-alive", "proxy-authorization", "te", "upgrade", "connection"]:
        assert hop not in seen, hop
    assert seen["x-end-to-end"] == "kept"
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == f"127.0.0.1:{proxy_hive.port}"
    assert seen["host"] == f"127.0.0.1:{upstream.port}"

    response, body = get(proxy_hive, "/up/hop")
    assert body == b"ok" and response.getheader("X-Public") == "1"
    for hop in ["X-Private", "Keep-Alive", "Proxy-Authenticate"]:
        assert response.getheader(hop) is None, hop


def test_upstream_connections_are_kept_alive(proxy_hive: HiveProcess, upstream: Upstream) -> None:
    get(proxy_hive, "/up/ok")  # an idle connection in the (one) worker's pool
    before = upstream.accepts
    for _ in range(10):
        conn = connect(proxy_hive)  # a new client connection each time
        conn.request("GET", "/up/ok")
        assert conn.getresponse().read()
        conn.close()
    assert upstream.accepts == before


def test_chunked_and_close_delimited_upstream_responses(proxy_hive: HiveProcess) -> None:
    conn = connect(proxy_hive)
    conn.request("GET", "/up/chunked")
    assert conn.getresponse().read() == b"one two three"
    conn.request("GET", "/up/close-delimited")
    response = conn.getresponse()
    assert response.read() == b"the end is the end"
    conn.request("GET", "/up/chunked")  # the client's connection survives either
    assert conn.getresponse().read() == b"one two three"
    conn.close()


def test_garbage_and_huge_headers_from_upstream_are_502(proxy_hive: HiveProcess) -> None:
    for path in ["/up/garbage", "/up/huge-headers"]:
        response, body = get(proxy_hive, path)
        assert response.status == 502 and b"Bad Gateway" in body, path


def test_unreachable_upstream_is_502() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    app_dir = Path(tempfile.mkdtemp(prefix="hive-proxy-app-"))
    (app_dir / "closed_app.py").write_text(
        "from hive.proxy import ReverseProxyResource\n"
        f"root = ReverseProxyResource('127.0.0.1', {closed}, b'')\n"
    )
    server = start_hive("closed_app:root", "--app-dir", str(app_dir))
    try:
        response, _ = get(server, "/anything")
        assert response.status == 502
    finally:
        server.stop()


def test_hanging_upstream_is_504_within_the_read_timeout(proxy_hive: HiveProcess) -> None:
    started = time.monotonic()
    response, _ = get(proxy_hive, "/up/hang")
    elapsed = time.monotonic() - started
    assert response.status == 504
    assert 0.9 < elapsed < 5


def test_upstream_closing_mid_body_aborts_the_client_only(proxy_hive: HiveProcess) -> None:
    workers = worker_pids(proxy_hive)
    conn = connect(proxy_hive)
    conn.request("GET", "/up/midbody")
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Length") == "100000"
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    conn.close()
    response, _ = get(proxy_hive, "/up/ok")
    assert response.status == 200
    assert worker_pids(proxy_hive) == workers  # the same worker goes on serving


def test_huge_request_headers_stop_at_hive(proxy_hive: HiveProcess, upstream: Upstream) -> None:
    before = len(upstream.requests)
    response, _ = get(proxy_hive, "/up/ok", headers={"X-Big": "x" * 40_000})
    assert response.status == 431
    assert len(upstream.requests) == before


def test_slow_client_big_response_memory_stays_bounded(proxy_hive: HiveProcess) -> None:
    (worker,) = [psutil.Process(pid) for pid in worker_pids(proxy_hive)]
    baseline = worker.memory_info().rss
    sock = socket.create_connection(("127.0.0.1", proxy_hive.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.sendall(b"GET /up/big HTTP/1.1\r\nHost: x\r\n\r\n")
    received = 0
    while received < 4 * 1024 * 1024:
        received += len(sock.recv(65536))
    # Stop reading: the proxy must stop reading the upstream, not buffer the gigabyte.
    time.sleep(2.0)
    grown = worker.memory_info().rss - baseline
    sent = sent_big[0]
    assert grown < 48 * 1024 * 1024, f"worker grew {grown >> 20} MiB"
    assert sent < 256 * 1024 * 1024, f"upstream sent {sent >> 20} MiB to a stalled client"
    # Some more reading goes on at the pace of the client.
    more = 0
    while more < 8 * 1024 * 1024:
        more += len(sock.recv(65536))
    sock.close()
    response, _ = get(proxy_hive, "/up/ok")
    assert response.status == 200
