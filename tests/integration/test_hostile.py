"""A corpus of malformed and hostile requests against a real hive, with both engines.

Every request gets its expected answer (a 4xx status, or the connection closed without a
response), never a 5xx other than 501 and 505 (which answer the protocol, not a failure),
never a hang; and after every one the same worker serves a normal request.
"""

from __future__ import annotations

import os
import socket
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import HiveProcess
from tests.integration.test_static import HOSTILE as STATIC_HOSTILE

APP = """
import os

from hive.resource import Resource
from hive.static import File


class Pid(Resource):
    isLeaf = True

    def render_GET(self, request):
        return str(os.getpid()).encode()

    render_POST = render_PUT = render_GET


class Echo(Resource):
    '''Puts a query argument into a response header, as careless applications do.'''

    isLeaf = True

    def render_GET(self, request):
        value = request.args.get(b"v", [b""])[0]
        try:
            request.setHeader(b"x-echo", value)
        except ValueError:
            request.setResponseCode(400)
            return b"refused a header value with CR, LF or NUL"
        return b"ok"


root = Resource()
root.putChild(b"", Pid())
root.putChild(b"pid", Pid())
root.putChild(b"echo", Echo())
root.putChild(b"static", File(STATIC))
"""

CLOSE = 0  # the server closes the connection without a response
ANSWERED_PROTOCOL = frozenset({501, 505})


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    expected: frozenset[int]


def case(name: str, raw: bytes, *expected: int) -> Case:
    return Case(name, raw, frozenset(expected))


def get(*headers: bytes, target: bytes = b"/", version: bytes = b"HTTP/1.1") -> bytes:
    lines = [b"GET " + target + b" " + version, b"Host: a", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def post(*headers: bytes, body: bytes = b"") -> bytes:
    return b"\r\n".join([b"POST /pid HTTP/1.1", b"Host: a", *headers]) + b"\r\n\r\n" + body


def corpus() -> list[Case]:
    cases = [
        # -- framing: Content-Length and Transfer-Encoding --------------------------------
        case("cl-and-te", post(b"Content-Length: 5", b"Transfer-Encoding: chunked"), 400),
        case("te-and-cl", post(b"Transfer-Encoding: chunked", b"Content-Length: 5"), 400),
        case("te-chunked-twice-one-field", post(b"Transfer-Encoding: chunked, chunked"), 501),
        case(
            "te-two-fields", post(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"), 501
        ),
        case("te-xchunked", post(b"Transfer-Encoding: xchunked"), 501),
        case("te-gzip-chunked", post(b"Transfer-Encoding: gzip, chunked"), 501),
        case("te-identity", post(b"Transfer-Encoding: identity"), 501),
        case("te-vertical-tab", post(b"Transfer-Encoding: chunked\x0b"), 400),
        case("te-space-before-colon", post(b"Transfer-Encoding : chunked"), 400),
        case(
            "te-in-http10",
            b"POST /pid HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        case("cl-conflicting", post(b"Content-Length: 3", b"Content-Length: 4", body=b"abcd"), 400),
        case("cl-list", post(b"Content-Length: 3, 4", body=b"abcd"), 400),
        case("cl-too-long", post(b"Content-Length: " + b"9" * 25), 400),
        case("cl-over-limit", post(b"Content-Length: 99999999999"), 413),
        case(
            "cl-over-limit-expect",
            post(b"Content-Length: 99999999999", b"Expect: 100-continue"),
            413,
        ),
        case("expect-unknown", get(b"Expect: teapot"), 417),
        # -- chunked bodies ---------------------------------------------------------------------
        case("chunk-size-not-hex", post(b"Transfer-Encoding: chunked", body=b"zz\r\n"), 400),
        case("chunk-size-negative", post(b"Transfer-Encoding: chunked", body=b"-1\r\n"), 400),
        case("chunk-size-0x", post(b"Transfer-Encoding: chunked", body=b"0x5\r\nhello\r\n"), 400),
        case("chunk-size-empty", post(b"Transfer-Encoding: chunked", body=b"\r\n"), 400),
        case(
            "chunk-data-overrun", post(b"Transfer-Encoding: chunked", body=b"3\r\nabcdef\r\n"), 400
        ),
        case("chunk-no-crlf", post(b"Transfer-Encoding: chunked", body=b"3\r\nabcX"), 400),
        case(
            "chunk-ext-bare-lf", post(b"Transfer-Encoding: chunked", body=b"3;a\nb\r\nabc\r\n"), 400
        ),
        # The body never comes, so the connection ends with the client's half-close.
        case(
            "chunk-huge",
            post(b"Transfer-Encoding: chunked", body=b"fffffffffffffff\r\n"),
            413,
            CLOSE,
        ),
        case(
            "chunk-size-too-many-digits",
            post(b"Transfer-Encoding: chunked", body=b"1" * 30 + b"\r\n"),
            400,
        ),
        case(
            "chunk-bad-trailer",
            post(b"Transfer-Encoding: chunked", body=b"0\r\nbad trailer\r\n\r\n"),
            400,
        ),
        # -- line endings, folding, control bytes --------------------------------------------
        case("bare-cr-request-line", b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        case("bare-cr-in-value", get(b"X: a\rb"), 400),
        case("lf-in-value-splits-line", get(b"X: a\nb"), 400),
        case("obs-fold-space", get(b"X: a", b" folded"), 400),
        case("obs-fold-tab", get(b"X: a", b"\tfolded"), 400),
        case("obs-fold-first-header", b"GET / HTTP/1.1\r\n folded: x\r\nHost: a\r\n\r\n", 400),
        case("nul-in-target", get(target=b"/a\x00b"), 400),
        case("nul-in-name", get(b"X\x00Y: 1"), 400),
        case("empty-name", get(b": value"), 400),
        case("no-colon", get(b"no colon here"), 400),
        case("space-in-name", get(b"X Y: 1"), 400),
        case("leading-space-line", b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        case("leading-crlf-garbage", b"\x00\x01\x02GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        case("tls-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400),
        case("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, 505),
    ]
    for byte in [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F]:
        if byte in (0x0A, 0x0D):
            continue
        cases.append(case(f"ctl-{byte:02x}-in-value", get(b"X: a" + bytes([byte]) + b"b"), 400))
    for char in b'"(),/:;<=>?@[\\]{} \t\x7f':
        if char == ord(":"):
            continue
        cases.append(
            case(f"separator-{char:02x}-in-name", get(b"X" + bytes([char]) + b"Y: 1"), 400)
        )
    for byte in [*range(0x01, 0x20), 0x7F]:
        if byte in (0x0A, 0x0D):
            continue
        cases.append(case(f"ctl-{byte:02x}-in-target", get(target=b"/a" + bytes([byte])), 400))
    # -- methods, versions, targets ------------------------------------------------------------
    cases += [
        case("method-with-lt", b"G<T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        case("method-with-nul", b"GE\x00T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        case("method-empty", b" / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        case("method-parens", b"(GET) / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        case("method-tab-separator", b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        case("two-spaces", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        case("trailing-space", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
        case("http09", b"GET /\r\n\r\n", 400),
        case("version-1.2", get(version=b"HTTP/1.2"), 505),
        case("version-2.0", get(version=b"HTTP/2.0"), 505),
        case("version-9.9", get(version=b"HTTP/9.9"), 505),
        case("version-one-digit", get(version=b"HTTP/1"), 400),
        case("version-three-digits", get(version=b"HTTP/1.10"), 400),
        case("version-lowercase", get(version=b"http/1.1"), 400),
        case("version-https", get(version=b"HTTPS/1.1"), 400),
        case("version-leading-zero", get(version=b"HTTP/01.1"), 400),
        case("version-garbage", get(version=b"HTTP/x.y"), 400),
        case("asterisk-get", get(target=b"*"), 400),
        case("authority-form-connect", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 400),
        case("authority-form-get", get(target=b"example.com:80"), 400),
        case("relative-target", get(target=b"pid"), 400),
        case("ftp-target", get(target=b"ftp://example.com/"), 400),
        case("space-in-target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        case("ctl-in-target", get(target=b"/a\x01b"), 400),
        case("del-in-target", get(target=b"/a\x7fb"), 400),
        case("empty-target", b"GET  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        # -- sizes ----------------------------------------------------------------------------
        case("request-line-9k", get(target=b"/" + b"a" * 9000), 414),
        case("request-line-64k", get(target=b"/" + b"a" * 65536), 414),
        case("method-10k", b"G" * 10000 + b" / HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        case("header-40k", get(b"X: " + b"v" * 40000), 431),
        case("header-name-40k", get(b"X" * 40000 + b": v"), 431),
        case("headers-101", get(*[b"X-%d: v" % i for i in range(101)]), 431),
        case("headers-1000", get(*[b"X-%d: v" % i for i in range(1000)]), 431),
        case("many-small-headers-40k", get(*[b"X: " + b"v" * 395 for _ in range(100)]), 431),
        # -- Host -----------------------------------------------------------------------------
        case("host-missing", b"GET / HTTP/1.1\r\n\r\n", 400),
        case("host-twice", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        case("host-twice-same", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
        case("host-space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        case("host-slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
        case("host-at", b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400),
        case("host-open-bracket", b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
        case("host-bad-port", b"GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", 400),
        # -- application-level injection: the application refuses, nothing is sent --------------
        case("crlf-injection-header", get(target=b"/echo?v=a%0d%0aSet-Cookie:%20evil=1"), 400),
        case("lf-injection-header", get(target=b"/echo?v=a%0aSet-Cookie:%20evil=1"), 400),
        case("nul-injection-header", get(target=b"/echo?v=a%00b"), 400),
        case("cr-injection-header", get(target=b"/echo?v=a%0dLocation:x"), 400),
        # -- forms ------------------------------------------------------------------------------
        case(
            "multipart-unterminated",
            post(
                b"Content-Type: multipart/form-data; boundary=zz",
                b"Content-Length: 12",
                body=b"--zz\r\nno end",
            ),
            200,  # /pid never reads args: the body is simply ignored
        ),
    ]
    return cases


SECRET = "the secret outside the static root"


def traversal_cases() -> list[Case]:
    """Path traversal in every encoding against static files (the table of test_static)."""
    cases = []
    for n, target in enumerate(STATIC_HOSTILE):
        if target.startswith(b"http://"):
            path = b"http://127.0.0.1/static" + target[len(b"http://127.0.0.1") :]
        else:
            path = b"/static" + target
        cases.append(case(f"traversal-{n:02d}", get(target=path), 400, 403, 404, 414))
    return cases


CASES = corpus() + traversal_cases()


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 150, len(CASES)
    assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


def exchange(port: int, raw: bytes, timeout: float = 10.0) -> bytes:
    """Send ``raw``, half-close, read until the server closes; bounded in time."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may have answered and closed before it read everything
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def status_of(response: bytes) -> int:
    if not response:
        return CLOSE
    line = response.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), response[:200]
    return int(line.split()[1])


@pytest.fixture(scope="module")
def server(engine: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    app_dir: Path = tmp_path_factory.mktemp("hostile")
    static = app_dir / "static"
    static.mkdir()
    (static / "hello.txt").write_text("hello")
    (app_dir / "outside").mkdir()
    (app_dir / "outside" / "secret.txt").write_text(SECRET)
    source = f"STATIC = {str(static)!r}\n" + textwrap.dedent(APP)
    (app_dir / "hostileapp.py").write_text(source)
    process = HiveProcess(
        [
            "hostileapp:root",
            "--bind",
            "127.0.0.1:0",
            "--app-dir",
            str(app_dir),
            "--http",
            engine,
            "--no-access-log",
            "--max-body-size",
            "1000000",
        ]
    )
    try:
        process.wait_listening()
        yield process
    finally:
        process.stop()


def worker_pid(port: int) -> int:
    response = exchange(port, b"GET /pid HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(response) == 200, response[:300]
    return int(response.rsplit(b"\r\n\r\n", 1)[1])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_request(server: HiveProcess, case: Case) -> None:
    before = worker_pid(server.port)
    response = exchange(server.port, case.raw)
    status = status_of(response)
    assert status in case.expected, f"{case.name}: got {status}: {response[:300]!r}"
    assert status < 500 or status in ANSWERED_PROTOCOL
    assert b"evil=1" not in response.split(b"\r\n\r\n", 1)[0].replace(b"%20", b" ")
    assert SECRET.encode() not in response
    # The same worker goes on serving.
    assert worker_pid(server.port) == before
    assert os.path.exists(f"/proc/{before}")
