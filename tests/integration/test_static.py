"""Static files through real ``hive run`` processes: http.client, raw sockets and curl.

Most tests serve a directory with ``hive run --path DIR``, as ``twistd web --path`` does.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ROOT, HiveProcess, raw_exchange

SECRET = b"TOP-SECRET-OUTSIDE-THE-ROOT"
MIB = 1024 * 1024
CSS = b"body { color: #333; margin: 0 auto; }\n" * 200
LOOPS = ["asyncio", "uvloop"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root/ (files, a 5 MiB file, links in and out, a hostile name); outside/ a secret."""
    base = tmp_path_factory.mktemp("static")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    root = base / "root"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello, world\n")
    (root / "style.css").write_bytes(CSS)
    (root / "style.css.gz").write_bytes(gzip.compress(CSS))
    (root / "big.bin").write_bytes(os.urandom(5 * MIB))
    (root / "<script>.txt").write_bytes(b"not a script")
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(b"<h1>sub</h1>")
    os.symlink(outside / "secret.txt", root / "link-out.txt")
    os.symlink(outside, root / "dir-out")
    return root


@pytest.fixture
def served(engine: str, hive_run: Any, tree: Path) -> HiveProcess:
    """``hive run --path root`` with each engine."""
    return hive_run(  # type: ignore[no-any-return]
        "--path", str(tree), "--bind", "127.0.0.1:0", "--http", engine, "--no-access-log"
    )


def connect(server: HiveProcess, timeout: float = 30.0) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)


def fetch(
    server: HiveProcess, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = connect(server)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def raw_get(port: int, target: bytes, timeout: float = 10.0) -> bytes:
    """Send one request with ``target`` exactly as given; read until the server closes."""
    request = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    return raw_exchange(port, request, timeout)


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "60", *args],
        capture_output=True,
        timeout=90,
        check=True,
    )


# -- the root's walls: every one of these is 400, 403 or 404, never the secret, never 500 ---

HOSTILE = [
    b"/../outside/secret.txt",
    b"/../../../../../../etc/passwd",
    b"/%2e%2e/outside/secret.txt",
    b"/%2E%2E/outside/secret.txt",
    b"/.%2e/outside/secret.txt",
    b"/%2e./outside/secret.txt",
    b"/..%2foutside%2fsecret.txt",
    b"/%2e%2e%2foutside%2fsecret.txt",
    b"/%2e%2e%2F%2e%2e%2Fetc%2Fpasswd",
    b"/..%5coutside%5csecret.txt",
    b"/%2e%2e%5coutside%5csecret.txt",
    b"/..\\outside\\secret.txt",
    b"/sub/../../outside/secret.txt",
    b"/sub/%2e%2e/%2e%2e/outside/secret.txt",
    b"/sub/..%2f..%2foutside%2fsecret.txt",
    b"/%252e%252e/outside/secret.txt",
    b"/%252e%252e%252foutside%252fsecret.txt",
    b"/%c0%ae%c0%ae/outside/secret.txt",
    b"/%c0%af..%c0%afoutside/secret.txt",
    b"/%e0%80%ae%e0%80%ae/outside/secret.txt",
    b"/%ef%bc%8e%ef%bc%8e/outside/secret.txt",
    b"/..%00/outside/secret.txt",
    b"/hello.txt%00.html",
    b"/%00",
    b"/%2fetc%2fpasswd",
    b"/%2F..%2F..%2Foutside%2Fsecret.txt",
    b"//etc/passwd",
    b"///outside/secret.txt",
    b"/./../outside/secret.txt",
    b"/%2e/%2e%2e/outside/secret.txt",
    b"/link-out.txt",
    b"/dir-out/secret.txt",
    b"/dir-out/",
    b"/%ff%fe/secret.txt",
    b"/" + b"a" * 4000,
    b"/" + b"../" * 40 + b"etc/passwd",
    b"http://127.0.0.1/../outside/secret.txt",
    b"/sub/./%2e%2e/./%2e%2e/outside/secret.txt",
]


def test_hostile_paths(hive_run: Any, tree: Path, engine: str) -> None:
    assert len(HOSTILE) >= 30
    server = hive_run("--path", str(tree), "--bind", "127.0.0.1:0", "--http", engine)
    for target in HOSTILE:
        answer = raw_get(server.port, target)
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line.split(b" ")[1] in (b"400", b"403", b"404"), (target, status_line)
        assert SECRET not in answer, target
        assert b"root:x:" not in answer, target
    # The worker is fine afterwards.
    assert fetch(server, "/hello.txt")[2] == b"hello, world\n"
    assert "Traceback" not in server.output()


def test_symlink_out_of_the_root(served: HiveProcess) -> None:
    status, _, body = fetch(served, "/link-out.txt")
    assert status == 403 and SECRET not in body
    assert fetch(served, "/dir-out/secret.txt")[0] == 403


# -- files, directories --------------------------------------------------------------------


def test_file_directory_index_and_listing(served: HiveProcess) -> None:
    status, headers, body = fetch(served, "/hello.txt")
    assert status == 200 and body == b"hello, world\n"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert fetch(served, "/sub/")[2] == b"<h1>sub</h1>"
    status, headers, _ = fetch(served, "/sub")
    assert status == 302 and headers["Location"] == "/sub/"
    status, headers, listing = fetch(served, "/")
    assert status == 200 and b"Directory listing for /" in listing
    assert b"<script>" not in listing
    assert b"&lt;script&gt;.txt" in listing and b'href="%3Cscript%3E.txt"' in listing
    assert fetch(served, "/%3Cscript%3E.txt")[2] == b"not a script"


def test_head(served: HiveProcess) -> None:
    status, headers, body = fetch(served, "/big.bin", method="HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Length"] == str(5 * MIB)


def test_conditional_requests(served: HiveProcess) -> None:
    _, headers, _ = fetch(served, "/hello.txt")
    etag, modified = headers["ETag"], headers["Last-Modified"]
    status, headers, body = fetch(served, "/hello.txt", {"If-None-Match": etag})
    assert status == 304 and body == b"" and headers["ETag"] == etag
    assert fetch(served, "/hello.txt", {"If-Modified-Since": modified})[0] == 304
    assert fetch(served, "/hello.txt", {"If-None-Match": '"nope"'})[0] == 200


def test_ranges_with_http_client(served: HiveProcess, tree: Path) -> None:
    data = (tree / "big.bin").read_bytes()
    status, headers, body = fetch(served, "/big.bin", {"Range": "bytes=1000-1999"})
    assert status == 206 and body == data[1000:2000]
    assert headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    status, headers, body = fetch(served, "/big.bin", {"Range": "bytes=-100"})
    assert status == 206 and body == data[-100:]
    status, headers, body = fetch(served, "/big.bin", {"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"
    # If-Range that names another version: the whole file, 200.
    stale = {"Range": "bytes=0-9", "If-Range": '"stale-etag"'}
    status, _, body = fetch(served, "/big.bin", stale)
    assert status == 200 and body == data
    _, headers, _ = fetch(served, "/big.bin", method="HEAD")
    fresh = {"Range": "bytes=0-9", "If-Range": headers["ETag"]}
    assert fetch(served, "/big.bin", fresh)[2] == data[:10]


def test_ranges_with_curl(served: HiveProcess, tree: Path) -> None:
    data = (tree / "big.bin").read_bytes()
    url = f"http://127.0.0.1:{served.port}/big.bin"
    assert curl("-r", "0-99", url).stdout == data[:100]
    assert curl("-r", "-50", url).stdout == data[-50:]
    assert curl("-r", f"{4 * MIB}-", url).stdout == data[4 * MIB :]
    both = curl("-r", "0-9,2000000-2000009", "-D", "-", url).stdout
    head, _, body = both.partition(b"\r\n\r\n")
    assert b"206" in head.split(b"\r\n", 1)[0]
    assert b"multipart/byteranges; boundary=" in head
    assert data[:10] in body and data[2000000:2000010] in body
    assert b"Content-Range: bytes 2000000-2000009/%d" % len(data) in body
    invalid = curl("-r", "9999999-", "-o", "/dev/null", "-w", "%{http_code}", url)
    assert invalid.stdout == b"416"


def test_precompressed_with_curl(served: HiveProcess) -> None:
    url = f"http://127.0.0.1:{served.port}/style.css"
    result = curl("--compressed", "-D", "-", url).stdout
    head, _, body = result.partition(b"\r\n\r\n")
    assert b"Content-Encoding: gzip" in head and b"Vary: Accept-Encoding" in head
    assert body == CSS  # curl undid the gzip
    plain = curl("-D", "-", url).stdout
    head, _, body = plain.partition(b"\r\n\r\n")
    assert b"Content-Encoding" not in head and body == CSS


# -- large files: zero-copy on both loops, backpressure, clients that go away ---------------


@pytest.mark.parametrize("loop", LOOPS)
def test_five_mib_on_both_loops(hive_run: Any, tree: Path, loop: str) -> None:
    data = (tree / "big.bin").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    server = hive_run("--path", str(tree), "--bind", "127.0.0.1:0", "--loop", loop)
    conn = connect(server)
    for _ in range(3):  # keep-alive: the connection is in order after each one
        conn.request("GET", "/big.bin")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == str(len(data))
        assert hashlib.sha256(response.read()).hexdigest() == digest
    conn.close()
    assert curl(f"http://127.0.0.1:{server.port}/big.bin").stdout == data


@pytest.mark.parametrize("loop", LOOPS)
def test_slow_reader_gets_every_byte(hive_run: Any, tree: Path, loop: str) -> None:
    """A client with a small receive buffer that reads in sips: the socket fills up again
    and again (EAGAIN), and the file still arrives whole and in order."""
    data = (tree / "big.bin").read_bytes()
    server = hive_run("--path", str(tree), "--bind", "127.0.0.1:0", "--loop", loop)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    received = bytearray()
    sips = 0
    while True:
        chunk = sock.recv(8192)
        if not chunk:
            break
        received += chunk
        sips += 1
        if sips % 64 == 0:
            time.sleep(0.002)
    sock.close()
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n", 1)[0]
    assert body == data


@pytest.mark.parametrize("loop", LOOPS)
def test_client_that_goes_away_mid_file(hive_run: Any, tree: Path, loop: str) -> None:
    server = hive_run("--path", str(tree), "--bind", "127.0.0.1:0", "--loop", loop)
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(1000)
        sock.close()  # a reset, with most of the file unsent
    assert fetch(server, "/hello.txt")[2] == b"hello, world\n"
    data = (tree / "big.bin").read_bytes()
    assert fetch(server, "/big.bin")[2] == data
    assert "Traceback" not in server.output()


def test_large_file_over_tls(hive_run: Any, tree: Path, certificate: tuple[Path, Path]) -> None:
    """TLS cannot use sendfile: the file is read and written a piece at a time."""
    cert, key = certificate
    server = hive_run(
        "--path", str(tree), "--bind", "127.0.0.1:0", "--certfile", str(cert), "--keyfile", str(key)
    )
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=30, context=context)
    conn.request("GET", "/big.bin")
    response = conn.getresponse()
    assert response.status == 200 and response.read() == (tree / "big.bin").read_bytes()
    conn.close()


# -- hive run --path ------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hive", "run", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_path_must_be_a_directory(tmp_path: Path) -> None:
    result = run_cli("--path", str(tmp_path / "missing"), "--bind", "127.0.0.1:0")
    assert result.returncode != 0
    assert "path: not a directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_path_and_an_application_are_exclusive(tmp_path: Path) -> None:
    result = run_cli("examples.site:root", "--path", str(tmp_path), "--bind", "127.0.0.1:0")
    assert result.returncode != 0 and "not both" in result.stderr


# -- the example site -----------------------------------------------------------------------


def test_example_site_static_redirect_and_gzip(hive_run: Any) -> None:
    server = hive_run("examples.site:root", "--bind", "127.0.0.1:0")
    status, headers, body = fetch(server, "/static/style.css")
    assert status == 200 and b"font:" in body
    assert headers["Content-Type"] == "text/css; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=300"
    status, _, listing = fetch(server, "/static/")
    assert status == 200 and b"hello.txt" in listing and b"style.css" in listing
    status, headers, _ = fetch(server, "/old")
    assert status == 302 and headers["Location"] == "/about"
    assert fetch(server, "/about")[0] == 200
    base = f"http://127.0.0.1:{server.port}"
    streamed = curl("--compressed", "-D", "-", f"{base}/countdown?from=2").stdout
    head, _, body = streamed.partition(b"\r\n\r\n")
    assert b"Content-Encoding: gzip" in head
    assert body == b"2...\n1...\nliftoff!\n"
    assert curl("-L", f"{base}/old").stdout == fetch(server, "/about")[2]
