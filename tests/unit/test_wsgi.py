"""WSGIResource through the real Site and Connection in memory, on the loop and in threads."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest

from hive._forwarded import TrustedProxies
from hive.resource import Resource
from hive.server import Site
from hive.worker.stats import WorkerStats
from hive.wsgi import FileWrapper, WSGIResource, set_default_threads
from tests.unit.harness import Harness, MemoryTransport, Response, run

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
App = Callable[[Environ, StartResponse], Iterable[bytes]]

#: Where the application runs: the event loop, the worker's pool, or a given Executor.
MODES = ["loop", "pool", "executor"]
_executor = ThreadPoolExecutor(2, "test-wsgi")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def make(app: App, mode: str) -> WSGIResource:
    if mode == "loop":
        return WSGIResource.create(app, threads=0)
    if mode == "pool":
        set_default_threads(2)
        return WSGIResource(None, None, app)
    return WSGIResource(object(), _executor, app)


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the loop (and the application's threads) run until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.001)


def answered(harness: Harness) -> Callable[[], bool]:
    return lambda: harness.connection.idle or harness.transport.closed


async def exchange(harness: Harness, raw: bytes, method: str = "GET") -> Response:
    harness.send(raw)
    await wait_for(answered(harness))
    return harness.response(method)


def serve(root: Resource | Site | WSGIResource, raw: bytes, method: str = "GET") -> Response:
    """Send one raw request on a new connection and read the response."""

    async def scenario() -> Response:
        return await exchange(Harness(_site(root)), raw, method)

    return run(scenario())  # type: ignore[no-any-return]


def get(root: Any, target: str = "/", headers: str = "", method: str = "GET") -> Response:
    raw = f"{method} {target} HTTP/1.1\r\nHost: example.com\r\n{headers}\r\n"
    return serve(root, raw.encode("latin-1"), method)


def _site(root: Any) -> Site:
    return root if isinstance(root, Site) else Site(root)


def hello(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


class Recorder:
    """An application that shows its environ and keeps it."""

    def __init__(self) -> None:
        self.environ: Environ = {}
        self.body = b""

    def __call__(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        self.environ = environ
        self.body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


class Closing:
    """An iterable that records whether close() was called, and what was taken from it."""

    def __init__(self, chunks: Iterable[bytes], fail_at: int | None = None) -> None:
        self.chunks = list(chunks)
        self.fail_at = fail_at
        self.taken = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise ValueError("broken iterable")
            self.taken += 1
            yield chunk

    def close(self) -> None:
        self.closed = True


# -- the environ ------------------------------------------------------------------------------


def test_environ_keys(mode: str) -> None:
    app = Recorder()
    response = get(
        make(app, mode),
        "/a/b%20c?x=1&y=%20",
        "User-Agent: test\r\nAccept: a\r\nAccept: b\r\nCookie: a=1\r\nCookie: b=2\r\n",
    )
    assert response.status == 200 and response.body == b"ok"
    environ = app.environ
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["PATH_INFO"] == "/a/b c"
    assert environ["QUERY_STRING"] == "x=1&y=%20"
    assert environ["SERVER_NAME"] == "example.com"
    assert environ["SERVER_PORT"] == "8080"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["REMOTE_ADDR"] == "192.0.2.7" and environ["REMOTE_PORT"] == "5555"
    assert environ["CONTENT_TYPE"] == "" and environ["CONTENT_LENGTH"] == ""
    assert environ["HTTP_HOST"] == "example.com"
    assert environ["HTTP_USER_AGENT"] == "test"
    assert environ["HTTP_ACCEPT"] == "a,b"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.multithread"] is (mode != "loop")
    assert environ["wsgi.multiprocess"] is True
    assert environ["wsgi.run_once"] is False
    assert environ["wsgi.file_wrapper"] is FileWrapper
    assert all(type(value) is str for key, value in environ.items() if "." not in key)


def test_path_info_is_percent_decoded_latin1() -> None:
    app = Recorder()
    get(make(app, "loop"), "/caf%C3%A9/%E9%2Fx")
    # PEP 3333: bytes decoded as latin-1, so UTF-8 shows as its bytes.
    assert app.environ["PATH_INFO"] == "/caf\xc3\xa9/\xe9/x"


def test_script_name_is_the_mount_point(mode: str) -> None:
    app = Recorder()
    root = Resource()
    apps = Resource()
    root.putChild(b"apps", apps)
    apps.putChild(b"wiki", make(app, mode))
    for target, script_name, path_info in [
        ("/apps/wiki/page/1?v=2", "/apps/wiki", "/page/1"),
        ("/apps/wiki/", "/apps/wiki", "/"),
        ("/apps/wiki", "/apps/wiki", ""),
    ]:
        assert get(root, target).status == 200
        assert app.environ["SCRIPT_NAME"] == script_name, target
        assert app.environ["PATH_INFO"] == path_info, target


def test_options_asterisk_is_told_from_options_slash(mode: str) -> None:
    """PATH_INFO is "*" for ``OPTIONS *``, as gunicorn and uvicorn give it."""
    app = Recorder()
    resource = make(app, mode)
    assert get(resource, "*", method="OPTIONS").status == 200
    assert (app.environ["SCRIPT_NAME"], app.environ["PATH_INFO"]) == ("", "*")
    assert get(resource, "/", method="OPTIONS").status == 200
    assert (app.environ["SCRIPT_NAME"], app.environ["PATH_INFO"]) == ("", "/")


def test_content_type_and_length_are_not_http_keys(mode: str) -> None:
    app = Recorder()
    body = b"a=1&b=2"
    raw = (
        b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 7\r\n\r\n" + body
    )
    assert serve(make(app, mode), raw).status == 200
    assert app.environ["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert app.environ["CONTENT_LENGTH"] == "7"
    assert "HTTP_CONTENT_TYPE" not in app.environ
    assert "HTTP_CONTENT_LENGTH" not in app.environ
    assert app.body == body


def test_chunked_body_gets_its_true_length() -> None:
    app = Recorder()
    raw = (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    assert serve(make(app, "loop"), raw).status == 200
    assert app.environ["CONTENT_LENGTH"] == "11"
    assert app.body == b"hello world"


def test_headers_with_underscores_are_dropped() -> None:
    app = Recorder()
    get(make(app, "loop"), "/", "X_Forwarded_For: 6.6.6.6\r\nX-Real: 1\r\n")
    assert "HTTP_X_FORWARDED_FOR" not in app.environ
    assert app.environ["HTTP_X_REAL"] == "1"


def test_trusted_proxy_sets_remote_addr_and_scheme() -> None:
    app = Recorder()
    site = Site(make(app, "loop"))
    site.trusted_proxies = TrustedProxies(["192.0.2.7"])
    headers = "X-Forwarded-For: 198.51.100.9\r\nX-Forwarded-Proto: https\r\n"
    assert get(site, "/", headers).status == 200
    assert app.environ["REMOTE_ADDR"] == "198.51.100.9"
    assert app.environ["wsgi.url_scheme"] == "https"


def test_behind_a_proxy_the_environ_names_the_clients_url() -> None:
    from wsgiref.util import request_uri

    app = Recorder()
    root = Resource()
    root.putChild(b"wsgi", make(app, "loop"))
    site = Site(root)
    site.trusted_proxies = TrustedProxies(["192.0.2.7"])
    headers = (
        "X-Forwarded-For: 198.51.100.9\r\nX-Forwarded-Proto: https\r\n"
        "X-Forwarded-Host: example.org\r\nX-Forwarded-Prefix: /app\r\n"
    )
    assert get(site, "/wsgi/x?q=1", headers).status == 200
    environ = app.environ
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/app/wsgi", "/x")
    assert (environ["HTTP_HOST"], environ["SERVER_NAME"]) == ("example.org", "example.org")
    assert (environ["SERVER_PORT"], environ["wsgi.url_scheme"]) == ("443", "https")
    assert request_uri(environ) == "https://example.org/app/wsgi/x?q=1"


def test_untrusted_forwarded_headers_are_ignored() -> None:
    app = Recorder()
    headers = "X-Forwarded-For: 198.51.100.9\r\nX-Forwarded-Proto: https\r\n"
    get(make(app, "loop"), "/", headers)
    assert app.environ["REMOTE_ADDR"] == "192.0.2.7"
    assert app.environ["wsgi.url_scheme"] == "http"


def test_wsgi_input_is_a_file(mode: str) -> None:
    seen: dict[str, Any] = {}

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        stream = environ["wsgi.input"]
        seen["first"] = stream.read(3)
        seen["line"] = stream.readline()
        seen["short"] = stream.readline(2)
        seen["lines"] = stream.readlines()
        seen["end"] = stream.read()
        start_response("204 No Content", [])
        return []

    body = b"abcdef\nline two\nthree\nfour"
    raw = b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    assert serve(make(app, mode), raw).status == 204
    assert seen == {
        "first": b"abc",
        "line": b"def\n",
        "short": b"li",
        "lines": [b"ne two\n", b"three\n", b"four"],
        "end": b"",
    }


def test_wsgi_errors_go_to_the_log(caplog: pytest.LogCaptureFixture, mode: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        errors = environ["wsgi.errors"]
        print("first line", file=errors)
        errors.write("two\nlines\npartial")
        errors.writelines([" end"])
        start_response("200 OK", [])
        return [b"ok"]

    with caplog.at_level(logging.ERROR, "hive.wsgi"):
        assert get(make(app, mode)).status == 200
    messages = [r.getMessage() for r in caplog.records if r.name == "hive.wsgi"]
    assert messages == ["first line", "two", "lines", "partial end"]


# -- responses -------------------------------------------------------------------------------


def test_whole_body_is_one_response_with_its_length(mode: str) -> None:
    response = get(make(hello, mode))
    assert response.status == 200 and response.body == b"hello"
    assert response.header("Content-Length") == "5"
    assert response.header("Content-Type") == "text/plain"
    assert response.header("Server") == "hive"


def test_status_reason_and_repeated_headers_are_kept(mode: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response(
            "201 Made It",
            [("Set-Cookie", "a=1"), ("X-Thing", "x"), ("Set-Cookie", "b=2"), ("Server", "me")],
        )
        return [b"done"]

    response = get(make(app, mode))
    assert (response.status, response.reason) == (201, "Made It")
    assert response.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert response.header("X-Thing") == "x"
    # The Site owns Server and Date (--server-header), as in Twisted's WSGIResource.
    assert response.headers.get_all("Server") == ["hive"]


def test_head_keeps_the_declared_length(mode: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "1000")])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"x" * 1000]

    response = get(make(app, mode), method="HEAD")
    assert response.status == 200 and response.body == b""
    assert response.header("Content-Length") == "1000"


def test_generator_is_streamed_chunked_and_closed(mode: str) -> None:
    iterable = Closing([b"one ", b"", b"two ", b"three"])

    def app(environ: Environ, start_response: StartResponse) -> Closing:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iterable

    response = get(make(app, mode))
    assert response.body == b"one two three"
    assert response.header("Transfer-Encoding") == "chunked"
    assert iterable.closed


def test_start_response_may_come_with_the_first_chunk(mode: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"late"

    assert get(make(app, mode)).body == b"late"


def test_body_stops_at_the_declared_length(mode: str) -> None:
    iterable = Closing([b"12345", b"67890", b"never"])

    def app(environ: Environ, start_response: StartResponse) -> Closing:
        start_response("200 OK", [("Content-Length", "7")])
        return iterable

    response = get(make(app, mode))
    assert response.body == b"1234567"
    assert response.header("Content-Length") == "7"
    # PEP 3333: iteration stops once Content-Length bytes are sent.
    assert iterable.taken == 2 and iterable.closed


def test_as_many_bytes_as_declared_go_out_whole(mode: str) -> None:
    iterable = Closing([b"hello", b"never"])

    def app(environ: Environ, start_response: StartResponse) -> Closing:
        start_response("200 OK", [("Content-Length", "5")])
        return iterable

    response = get(make(app, mode))
    assert response.body == b"hello" and response.header("Transfer-Encoding") is None
    assert iterable.taken == 1 and iterable.closed


def test_write_callable(mode: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written, ")
        write(b"")
        return [b"then ", b"returned"]

    response = get(make(app, mode))
    assert response.status == 200 and response.body == b"written, then returned"


def test_file_wrapper_sends_the_file_and_closes_it(mode: str) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB, several blocks
    files: list[io.BytesIO] = []

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Length", str(len(data)))])
        files.append(io.BytesIO(data))
        return environ["wsgi.file_wrapper"](files[0], 4096)

    response = get(make(app, mode))
    assert response.body == data
    assert files[0].closed


def test_file_wrapper_of_a_real_file_goes_through_sendfile(mode: str, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1024
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    files: list[Any] = []

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Length", str(len(data) - 100))])
        file = open(path, "rb")  # noqa: SIM115  (the server closes it)
        file.seek(100)  # PEP 3333: from the file's current position
        files.append(file)
        return environ["wsgi.file_wrapper"](file)

    response = get(make(app, mode))
    assert response.body == data[100:]
    assert files[0].closed


def test_file_wrapper_zero_copy_bypasses_the_transport(tmp_path: Path) -> None:
    data = b"z" * 50_000
    path = tmp_path / "blob.bin"
    path.write_bytes(data)

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Length", str(len(data)))])
        return environ["wsgi.file_wrapper"](open(path, "rb"))

    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.settimeout(10)

    async def scenario() -> Harness:
        harness = Harness(Site(make(app, "pool")))
        transport = SocketTransport(ours)
        harness.transport = transport
        harness.connection.transport = transport
        harness.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await wait_for(answered(harness))
        return harness

    try:
        harness = run(scenario())
        received = b""
        while len(received) < len(data):
            received += theirs.recv(65536)
    finally:
        ours.close()
        theirs.close()
    head = bytes(harness.transport.data)
    assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n")  # head only
    assert received == data


class SocketTransport(MemoryTransport):
    """A transport with a real socket underneath, so os.sendfile can reach it."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.limits = (0, 0)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.limits

    def set_write_buffer_limits(self, high: int = 0, low: int = 0) -> None:
        self.limits = (low, high)

    def get_write_buffer_size(self) -> int:
        return 0


def test_file_wrapper_without_length_is_chunked() -> None:
    data = b"x" * 100_000

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](io.BytesIO(data))

    response = get(make(app, "loop"))
    assert response.body == data and response.header("Transfer-Encoding") == "chunked"


def test_bytes_like_chunks_are_accepted() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[Any]:
        start_response("200 OK", [])
        yield bytearray(b"ab")
        yield memoryview(b"cd")

    assert get(make(app, "loop")).body == b"abcd"


# -- start_response rules --------------------------------------------------------------------


def test_exc_info_before_the_head_replaces_it(mode: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("X-First", "1")])
        try:
            raise KeyError("inner")
        except KeyError:
            start_response("503 Busy", [("Retry-After", "5")], sys.exc_info())
        return [b"busy"]

    response = get(make(app, mode))
    assert (response.status, response.body) == (503, b"busy")
    assert response.header("Retry-After") == "5" and response.header("X-First") is None


def test_exc_info_after_the_head_is_reraised_and_the_connection_cut(
    caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    reraised: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"part"
        try:
            raise KeyError("inner")
        except KeyError:
            try:
                start_response("500 Oops", [], sys.exc_info())
            except KeyError as exc:
                reraised.append(exc)
                raise

    async def scenario() -> Harness:
        harness = Harness(Site(make(app, mode)))
        harness.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await wait_for(answered(harness))
        return harness

    with caplog.at_level(logging.ERROR, "hive.server"):
        harness = run(scenario())
    assert len(reraised) == 1
    assert harness.transport.aborted
    assert b"part" in harness.transport.data
    assert "KeyError: 'inner'" in caplog.text


def test_second_start_response_without_exc_info_is_an_error(mode: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b"no"]

    assert get(make(app, mode)).status == 500


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [
        ("OK 200", [], ValueError),
        ("20 OK", [], ValueError),
        ("200 OK\r\nX: y", [], ValueError),
        (b"200 OK", [], TypeError),
        ("200 OK", (("A", "b"),), TypeError),
        ("200 OK", [("A", "b", "c")], TypeError),
        ("200 OK", [("A", b"b")], TypeError),
        ("200 OK", [("X-Bad", "a\r\nSet-Cookie: evil=1")], ValueError),
        ("200 OK", [("X-Bad", "a\nb")], ValueError),
        ("200 OK", [("X-Nul", "a\0")], ValueError),
        ("200 OK", [("Bad Name", "v")], ValueError),
        ("200 OK", [("X-Bad\r\n", "v")], ValueError),
        ("200 OK", [("X-Snow", "\u2603")], ValueError),
    ],
)
def test_bad_status_or_headers_raise_in_the_application(
    status: Any, headers: Any, error: type[Exception]
) -> None:
    raised: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        try:
            start_response(status, headers)
        except Exception as exc:
            raised.append(exc)
            raise
        return [b"no"]

    response = get(make(app, "loop"))
    assert response.status == 500
    assert b"evil" not in response.body and response.header("Set-Cookie") is None
    assert len(raised) == 1 and type(raised[0]) is error


@pytest.mark.parametrize("status", ["404", "404 "])
def test_missing_reason_gets_the_standard_one(status: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response(status, [])
        return [b"gone"]

    response = get(make(app, "loop"))
    assert (response.status, response.reason) == (404, "Not Found")


# -- errors -----------------------------------------------------------------------------------


def test_error_before_start_response_is_500_with_logged_traceback(
    caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise ZeroDivisionError("secret <detail>")

    async def scenario() -> list[Response]:
        harness = Harness(Site(make(app, mode)))
        first = await exchange(harness, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        second = await exchange(harness, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        return [first, second]

    with caplog.at_level(logging.ERROR, "hive.server"):
        first, second = run(scenario())
    assert first.status == 500 and b"secret" not in first.body
    assert second.status == 500  # the connection keeps serving
    record = next(r for r in caplog.records if r.name == "hive.server")
    assert record.exc_info is not None and "secret <detail>" in caplog.text
    assert "Traceback" in caplog.text


def test_error_in_the_iterable_before_any_body_is_500_and_closes(mode: str) -> None:
    iterable = Closing([b"a"], fail_at=0)

    def app(environ: Environ, start_response: StartResponse) -> Closing:
        start_response("200 OK", [("X-Lost", "1")])
        return iterable

    response = get(make(app, mode))
    assert response.status == 500 and response.header("X-Lost") is None
    assert iterable.closed


def test_error_after_the_head_cuts_the_connection_and_closes(mode: str) -> None:
    iterable = Closing([b"a", b"b"], fail_at=1)

    def app(environ: Environ, start_response: StartResponse) -> Closing:
        start_response("200 OK", [])
        return iterable

    async def scenario() -> Harness:
        harness = Harness(Site(make(app, mode)))
        harness.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await wait_for(answered(harness))
        return harness

    harness = run(scenario())
    assert harness.transport.aborted and iterable.closed
    assert harness.transport.data.startswith(b"HTTP/1.1 200 OK")


def test_no_start_response_is_500(mode: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        return [b"headless"]

    assert get(make(app, mode)).status == 500


def test_body_before_start_response_is_500(mode: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        yield b"too soon"

    assert get(make(app, mode)).status == 500


def test_str_chunk_is_500(mode: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[Any]:
        start_response("200 OK", [])
        return ["text"]

    assert get(make(app, mode)).status == 500


def test_system_exit_is_an_application_error(mode: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        if environ["PATH_INFO"] == "/exit":
            raise SystemExit(3)
        return hello(environ, start_response)

    resource = make(app, mode)

    async def scenario() -> list[Response]:
        harness = Harness(Site(resource))
        first = await exchange(harness, b"GET /exit HTTP/1.1\r\nHost: h\r\n\r\n")
        second = await exchange(harness, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        return [first, second]

    first, second = run(scenario())
    assert first.status == 500
    assert (second.status, second.body) == (200, b"hello")


def test_close_error_after_a_whole_body_is_500() -> None:
    class BadClose(list[bytes]):
        def close(self) -> None:
            raise OSError("close failed")

    def app(environ: Environ, start_response: StartResponse) -> BadClose:
        start_response("200 OK", [])
        return BadClose([b"x"])

    assert get(make(app, "loop")).status == 500


# -- backpressure and disconnects --------------------------------------------------------------


def test_generator_waits_while_the_client_is_not_reading(mode: str) -> None:
    iterable = Closing([b"x" * 10] * 5)

    def app(environ: Environ, start_response: StartResponse) -> Closing:
        start_response("200 OK", [])
        return iterable

    async def scenario() -> None:
        harness = Harness(Site(make(app, mode)))
        harness.connection.pause_writing(0.0)
        harness.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await wait_for(lambda: iterable.taken == 1)
        await asyncio.sleep(0.05)
        assert iterable.taken == 1 and not iterable.closed  # nothing more asked for
        harness.connection.resume_writing()
        await wait_for(answered(harness))
        assert harness.response().body == b"x" * 50

    run(scenario())
    assert iterable.closed


def test_close_is_called_when_the_client_goes_away(mode: str) -> None:
    iterable = Closing([b"x"] * 100)

    def app(environ: Environ, start_response: StartResponse) -> Closing:
        start_response("200 OK", [])
        return iterable

    async def scenario() -> None:
        harness = Harness(Site(make(app, mode)))
        harness.connection.pause_writing(0.0)
        harness.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await wait_for(lambda: iterable.taken == 1)
        harness.connection.connection_lost(None)
        await wait_for(lambda: iterable.closed)

    run(scenario())
    assert iterable.taken == 1


def test_write_waits_while_the_client_is_not_reading() -> None:
    written: list[int] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [])
        for n in range(3):
            write(b"y" * 10)
            written.append(n)
        return []

    async def scenario() -> None:
        harness = Harness(Site(make(app, "pool")))
        harness.connection.pause_writing(0.0)
        harness.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await wait_for(lambda: b"yyyy" in harness.transport.data)
        await asyncio.sleep(0.05)
        assert written == []  # the first write() has not returned
        harness.connection.resume_writing()
        await wait_for(answered(harness))
        assert harness.response().body == b"y" * 30

    run(scenario())
    assert written == [0, 1, 2]


def test_write_after_the_client_left_raises_in_the_application() -> None:
    errors: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [])
        try:
            for _ in range(100):
                write(b"more")
        except Exception as exc:
            errors.append(exc)
            raise
        return []

    async def scenario() -> None:
        harness = Harness(Site(make(app, "pool")))
        harness.connection.pause_writing(0.0)
        harness.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await wait_for(lambda: b"more" in harness.transport.data)
        harness.connection.connection_lost(None)
        await wait_for(lambda: bool(errors))

    run(scenario())
    assert len(errors) == 1 and isinstance(errors[0], ConnectionError)


def reader(wrap: bool) -> App:
    """An application that reads its whole body; ``wrap``: raises its own error from the
    read's, as Django does (UnreadablePostError)."""

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            if wrap:
                raise RuntimeError("cannot read the upload") from exc
            raise
        start_response("200 OK", [])
        return [b"read"]

    return app


@pytest.mark.parametrize("wrap", [False, True], ids=["raised", "wrapped"])
@pytest.mark.parametrize("mode", ["pool", "executor"])
def test_a_body_cut_short_is_a_client_abort(
    caplog: pytest.LogCaptureFixture, mode: str, wrap: bool
) -> None:
    """The client half-closes before Content-Length bytes came: no 500, no traceback,
    the connection closed, the request counted as over (abandoned)."""
    stats = WorkerStats()
    site = Site(make(reader(wrap), mode))
    site.stats = stats

    async def scenario() -> Harness:
        harness = Harness(site)
        harness.send(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
        assert harness.connection.eof_received(0.0)  # kept open for an answer
        await wait_for(lambda: harness.transport.closed)
        return harness

    with caplog.at_level(logging.INFO):
        harness = run(scenario())
    assert harness.transport.data == b""
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert any("POST /up: abandoned" in r.getMessage() for r in caplog.records)
    assert (stats.started, stats.finished) == (1, 1)


def test_an_error_after_a_whole_body_is_still_500(mode: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        environ["wsgi.input"].read()
        raise ConnectionError("the application's own, not the client's")

    raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
    assert serve(make(app, mode), raw).status == 500


# -- PEP 3333 conformance: wsgiref's validator ---------------------------------------------------


def strict_app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    """A small application that keeps every rule wsgiref.validate checks."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.errors"].write("validated\n")
    environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"path=" + environ["PATH_INFO"].encode("latin-1")
    yield b" body=" + body


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /v/a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"POST /v/b HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 3\r\n\r\nabc",
        b"HEAD /v/c HTTP/1.0\r\n\r\n",
    ],
)
def test_validator_finds_nothing_wrong(raw: bytes, mode: str) -> None:
    root = Resource()
    root.putChild(b"v", make(validator(strict_app), mode))
    method = raw.split(b" ", 1)[0].decode()
    response = serve(root, raw, method)
    assert response.status == 200, response
    if method == "POST":
        assert response.body == b"path=/b body=abc"
    elif method == "GET":
        assert response.body == b"path=/a body="


# -- construction -------------------------------------------------------------------------------


def test_twisted_constructor_shape() -> None:
    reactor = object()
    resource = WSGIResource(reactor, None, hello)
    assert resource.isLeaf
    with pytest.raises(RuntimeError):
        resource.putChild(b"x", Resource())
    with pytest.raises(RuntimeError):
        resource.getChildWithDefault(b"x", None)  # type: ignore[arg-type]


def test_threadpool_is_an_executor_or_twisted_s() -> None:
    with pytest.raises(TypeError, match="Executor or a Twisted ThreadPool"):
        WSGIResource(None, object(), hello)  # type: ignore[arg-type]
    # As the WSGI lesson passes it: reactor.getThreadPool().
    from twisted.python.threadpool import ThreadPool as TwistedThreadPool

    pool = TwistedThreadPool(1, 2, "test-wsgi-twisted")
    pool.start()
    ran_in: list[str] = []

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        ran_in.append(threading.current_thread().name)
        return hello(environ, start_response)

    try:
        response = get(WSGIResource(None, pool, app))  # type: ignore[arg-type]
    finally:
        pool.stop()
    assert response.status == 200 and response.body == b"hello"
    assert ran_in and "test-wsgi-twisted" in ran_in[0]
    with pytest.raises(TypeError, match="callable"):
        WSGIResource(None, None, "app")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        WSGIResource.create(hello, threads=-1)
    with pytest.raises(ValueError):
        set_default_threads(-1)


def test_default_threads_zero_runs_on_the_loop() -> None:
    app = Recorder()
    set_default_threads(0)
    try:
        assert get(WSGIResource(None, None, app)).status == 200
        assert app.environ["wsgi.multithread"] is False
    finally:
        set_default_threads(2)


# -- the short ways: header lists parsed once, headers a parent changed -------------------------


def test_a_header_list_seen_before_gives_fresh_headers_each_time() -> None:
    from hive.wsgi import parse_headers

    headers = [("Content-Type", "text/plain"), ("Content-Length", "5"), ("X-A", "1")]
    first, length = parse_headers(list(headers))
    second, _ = parse_headers(list(headers))
    assert length == 5 and first == second and first is not second
    first.setRawHeaders(b"x-a", [b"changed"])
    assert second.getRawHeaders(b"x-a") == [b"1"]
    # A bad list is refused every time, cached good lists notwithstanding.
    for _ in range(2):
        with pytest.raises(ValueError):
            parse_headers([("X-Bad", "a\r\nb")])
        with pytest.raises(TypeError):
            parse_headers([("X-List", ["unhashable"])])


def test_environ_sees_headers_a_parent_resource_changed(mode: str) -> None:
    recorder = Recorder()

    class Parent(Resource):
        def getChild(self, path: bytes, request: Any) -> Any:
            request.requestHeaders.setRawHeaders(b"x-added", [b"by parent"])
            request.requestHeaders.removeHeader(b"x-removed")
            return make(recorder, mode)

    response = get(Parent(), "/app", headers="X-Removed: 1\r\nCookie: a=1\r\nCookie: b=2\r\n")
    assert response.status == 200
    assert recorder.environ["HTTP_X_ADDED"] == "by parent"
    assert "HTTP_X_REMOVED" not in recorder.environ
    assert recorder.environ["HTTP_COOKIE"] == "a=1; b=2"
    assert recorder.environ["SERVER_NAME"] == "example.com"
