"""``hive run`` as a user runs it: a real process, real clients, real sockets."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ROOT, HiveProcess, raw_exchange

EXAMPLE = "examples.site:root"


def connect(server: HiveProcess, timeout: float = 10.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)


@pytest.fixture
def example(engine: str, hive_run: Any) -> HiveProcess:
    """The example site on a free port, with each engine."""
    return hive_run(EXAMPLE, "--bind", "127.0.0.1:0", "--http", engine)  # type: ignore[no-any-return]


def test_example_site_pages(example: HiveProcess) -> None:
    conn = connect(example)
    for path, expected in [
        ("/", b"hive example site"),
        ("/about", b"resource model"),
        ("/hello", b"Hello, world!"),
        ("/clock", b"It is"),
    ]:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200, path
        assert expected in response.read(), path
    conn.close()


def test_keep_alive_reuses_one_connection(example: HiveProcess) -> None:
    conn = connect(example)
    ports = set()
    for _ in range(20):
        conn.request("GET", "/hello")
        response = conn.getresponse()
        assert response.read() == b"Hello, world!"
        assert conn.sock is not None
        ports.add(conn.sock.getsockname()[1])
    assert len(ports) == 1
    conn.close()


def test_form_post_redirects_and_shows_entry(example: HiveProcess) -> None:
    conn = connect(example)
    conn.request(
        "POST",
        "/guestbook",
        body="name=Ada&text=%3Cb%3Ehi%3C%2Fb%3E",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = conn.getresponse()
    response.read()
    assert response.status == 302 and response.getheader("Location") == "/guestbook"
    conn.request("GET", "/guestbook")
    page = conn.getresponse().read()
    assert b"<b>Ada</b>: &lt;b&gt;hi&lt;/b&gt;" in page
    conn.close()


def test_async_resource(example: HiveProcess) -> None:
    conn = connect(example)
    conn.request("GET", "/weather?city=Oslo")
    response = conn.getresponse()
    assert json.loads(response.read()) == {"forecast": "sunny", "city": "Oslo"}
    conn.close()


def test_streaming_resource_is_chunked(example: HiveProcess) -> None:
    conn = connect(example)
    conn.request("GET", "/countdown?from=3")
    response = conn.getresponse()
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.read() == b"3...\n2...\n1...\nliftoff!\n"
    conn.close()


def test_websocket_echo_page(example: HiveProcess) -> None:
    import asyncio

    import websockets

    conn = connect(example)
    conn.request("GET", "/echo")
    assert b"new WebSocket" in conn.getresponse().read()
    conn.close()

    async def talk() -> list[str | bytes]:
        async with websockets.connect(f"ws://127.0.0.1:{example.port}/echo/ws") as ws:
            await ws.send("hi")
            return [await ws.recv(), await ws.recv()]

    assert asyncio.run(asyncio.wait_for(talk(), 30)) == ["hello from hive", "1: hi"]


def test_head_and_405(example: HiveProcess) -> None:
    conn = connect(example)
    conn.request("HEAD", "/hello")
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Length") == "13"
    assert response.read() == b""
    conn.request("DELETE", "/hello")
    response = conn.getresponse()
    response.read()
    assert response.status == 405 and response.getheader("Allow") == "GET, HEAD"
    conn.close()


def test_pipelined_requests_over_a_raw_socket(example: HiveProcess) -> None:
    request = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /about HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    data = raw_exchange(example.port, request * 5 + last)
    assert data.count(b"HTTP/1.1 200 OK") == 6
    assert data.count(b"Hello, world!") == 5
    assert data.rstrip().endswith(b"</html>")


def test_malformed_request_gets_400_and_the_server_keeps_serving(example: HiveProcess) -> None:
    data = raw_exchange(example.port, b"THIS IS NOT HTTP\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    conn = connect(example)
    conn.request("GET", "/hello")
    assert conn.getresponse().read() == b"Hello, world!"
    conn.close()


def test_expect_continue(example: HiveProcess) -> None:
    with socket.create_connection(("127.0.0.1", example.port), timeout=10) as sock:
        sock.sendall(
            b"POST /guestbook HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"name=a&text=b")
        assert sock.recv(100).startswith(b"HTTP/1.1 302 Found\r\n")


def test_http10_client(example: HiveProcess) -> None:
    data = raw_exchange(example.port, b"GET /hello HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b"\r\n\r\nHello, world!")


def test_limits_answer_with_a_status(hive_run: Any) -> None:
    server = hive_run(
        EXAMPLE,
        "--bind",
        "127.0.0.1:0",
        "--max-request-line",
        "200",
        "--max-head-size",
        "2000",
        "--max-body-size",
        "100",
    )
    long_line = b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert raw_exchange(server.port, long_line).startswith(b"HTTP/1.1 414 ")
    big_head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 3000 + b"\r\n\r\n"
    assert raw_exchange(server.port, big_head).startswith(b"HTTP/1.1 431 ")
    big_body = b"POST /guestbook HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n"
    assert raw_exchange(server.port, big_body).startswith(b"HTTP/1.1 413 ")


def test_slow_head_is_cut_off(hive_run: Any) -> None:
    server = hive_run(EXAMPLE, "--bind", "127.0.0.1:0", "--head-timeout", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        answer = b""
        for byte in b"Host: drip\r\nX: " + b"y" * 40:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.1)
            if time.monotonic() - started > 5:
                break
        answer = sock.recv(1000)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 5


def test_idle_keep_alive_connection_is_closed(hive_run: Any) -> None:
    server = hive_run(EXAMPLE, "--bind", "127.0.0.1:0", "--keep-alive-timeout", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"Hello, world!" in sock.recv(1000)
        started = time.monotonic()
        assert sock.recv(1000) == b""
        assert 0.5 < time.monotonic() - started < 5


def test_access_log_to_file_and_off(hive_run: Any, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = hive_run(EXAMPLE, "--bind", "127.0.0.1:0", "--access-log", str(log))
    conn = connect(server)
    conn.request("GET", "/hello?x=1", headers={"User-Agent": "tester", "Referer": "http://r/"})
    conn.getresponse().read()
    conn.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (log.exists() and log.read_text()):
        time.sleep(0.05)
    line = log.read_text()
    assert line.startswith("127.0.0.1 - - [")
    assert line.rstrip().endswith('"GET /hello?x=1 HTTP/1.1" 200 13 "http://r/" "tester"')

    quiet = hive_run(EXAMPLE, "--bind", "127.0.0.1:0", "--no-access-log")
    conn = connect(quiet)
    conn.request("GET", "/hello")
    conn.getresponse().read()
    conn.close()
    assert quiet.stop() == 0
    assert quiet.stdout_lines == []


APP = """
from hive.resource import Resource


class Boom(Resource):
    isLeaf = True

    def render_GET(self, request):
        raise RuntimeError("kaboom <here>")


root = Resource()
root.putChild(b"boom", Boom())
"""


@pytest.mark.parametrize("show", [False, True])
def test_exception_is_500_and_logged(hive_run: Any, tmp_path: Path, show: bool) -> None:
    (tmp_path / "boomapp.py").write_text(textwrap.dedent(APP))
    args = ["boomapp:root", "--bind", "127.0.0.1:0", "--app-dir", str(tmp_path)]
    server = hive_run(*args, *(["--display-tracebacks"] if show else []))
    conn = connect(server)
    conn.request("GET", "/boom")
    response = conn.getresponse()
    body = response.read()
    assert response.status == 500
    assert (b"kaboom &lt;here&gt;" in body) is show
    assert b"<here>" not in body
    server.wait_for_output("RuntimeError: kaboom <here>")
    conn.request("GET", "/boom")
    assert conn.getresponse().status == 500  # the worker keeps serving
    conn.close()


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="hive-test-") as workdir:
        control = ["--control", f"{workdir}/hive.ctl"]
        return subprocess.run(
            [sys.executable, "-m", "hive", "run", *args, "--workers", "1", *control],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuchmodule:root"], "cannot import module 'nosuchmodule'"),
        (["examples.site:nope"], "has no attribute 'nope'"),
        (["examples.site"], "expected module:attribute"),
        (["examples.site:root", "--bind", "127.0.0.1:notaport"], "127.0.0.1:notaport"),
        (["examples.site:root", "--bind", "::1:80"], "::1:80"),
    ],
)
def test_bad_start_is_one_line_and_non_zero(args: list[str], message: str) -> None:
    result = run_cli(*args, "--bind", "127.0.0.1:0") if "--bind" not in args else run_cli(*args)
    assert result.returncode != 0
    # Log lines may come first; the error itself is one line, and the last.
    errors = [line for line in result.stderr.splitlines() if line.startswith("hive: error: ")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0] and result.stderr.rstrip().endswith(errors[0])
    assert "Traceback" not in result.stderr


def test_port_in_use_is_one_line(hive_run: Any) -> None:
    server = hive_run(EXAMPLE, "--bind", "127.0.0.1:0")
    result = run_cli(EXAMPLE, "--bind", f"127.0.0.1:{server.port}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1:] == [
        f"hive: error: cannot listen on 127.0.0.1:{server.port}: address already in use"
    ]


def test_unix_socket_and_several_binds(hive_run: Any, tmp_path: Path) -> None:
    path = tmp_path / "hive.sock"
    server = hive_run(EXAMPLE, "--bind", "127.0.0.1:0", "--bind", f"unix:{path}", count=2)
    assert f"unix:{path}" in server.urls
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"Hello, world!")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_bind(hive_run: Any) -> None:
    server = hive_run(EXAMPLE, "--bind", "[::1]:0")
    assert server.url.startswith("http://[::1]:")
    conn = http.client.HTTPConnection("::1", server.port, timeout=10)
    conn.request("GET", "/hello")
    assert conn.getresponse().read() == b"Hello, world!"
    conn.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl(example: HiveProcess) -> None:
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-i", f"{example.url}/hello"],
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert result.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Server: hive\r\n" in result.stdout


def test_sigterm_lets_a_slow_request_finish(example: HiveProcess) -> None:
    results: list[bytes] = []
    started = threading.Event()

    def fetch() -> None:
        conn = connect(example)
        conn.request("GET", "/countdown?from=10")
        response = conn.getresponse()
        started.set()  # the head is in: the worker is answering (it may be slow to boot)
        results.append(response.read())
        conn.close()

    thread = threading.Thread(target=fetch)
    thread.start()
    assert started.wait(20)
    time.sleep(0.3)
    example.signal(signal.SIGTERM)
    thread.join(20)
    assert results and results[0].endswith(b"liftoff!\n")
    assert example.wait(20) == 0
