"""ASGIResource and Lifespan through the real Site and Connection in memory."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Protocol as WSProtocol
from websockets.protocol import Side

from hive._forwarded import TrustedProxies
from hive.asgi import (
    ASGIResource,
    ClientDisconnected,
    Lifespan,
    LifespanError,
    Message,
    Receive,
    Scope,
    Send,
)
from hive.resource import Resource
from hive.server import Site
from hive.websocket import MAX_QUEUE
from hive.worker.body import HIGH_WATER
from hive.worker.connection import ConnectionLimits
from hive.worker.websocket import WebSocketConnection
from tests.unit.harness import Harness, Response, run
from tests.unit.test_websocket import handshake_bytes

App = Callable[[Scope, Receive, Send], Awaitable[None]]


async def settle(predicate: Callable[[], bool], rounds: int = 200) -> None:
    """Let the loop run until ``predicate()`` holds (a bounded number of turns)."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("the loop settled without it")


def answered(harness: Harness) -> Callable[[], bool]:
    return lambda: harness.connection.idle or harness.transport.closed


async def exchange(harness: Harness, raw: bytes, method: str = "GET") -> Response:
    harness.send(raw)
    await settle(answered(harness))
    return harness.response(method)


def request(target: str = "/", method: str = "GET", headers: str = "", body: bytes = b"") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    head = f"{method} {target} HTTP/1.1\r\nHost: example.com\r\n{length}{headers}\r\n"
    return head.encode("latin-1") + body


def mounted(app: App, at: bytes = b"api") -> Site:
    root = Resource()
    root.putChild(at, ASGIResource(app))
    return Site(root)


def serve(site: Site, raw: bytes, method: str = "GET") -> Response:
    async def scenario() -> Response:
        return await exchange(Harness(site), raw, method)

    return run(scenario())  # type: ignore[no-any-return]


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(b"content-type", b"text/plain"), (b"x-app", b"yes")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


class Recorder:
    """An application that keeps its scope and the messages it received."""

    def __init__(self) -> None:
        self.scope: Scope = {}
        self.messages: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        while True:
            message = await receive()
            self.messages.append(message)
            if not message.get("more_body"):
                break
        body = b"".join(m.get("body", b"") for m in self.messages)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"got %d" % len(body)})


# -- the scope ---------------------------------------------------------------------------------


def test_scope_of_a_mounted_application() -> None:
    app = Recorder()
    raw = request("/api/items/a%20b?q=1&r=%C3%A9", headers="X-Thing: One\r\n")
    response = serve(mounted(app), raw)
    assert response.status == 200
    scope = app.scope
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/items/a b"
    assert scope["raw_path"] == b"/api/items/a%20b"
    assert scope["query_string"] == b"q=1&r=%C3%A9"
    assert (b"x-thing", b"One") in scope["headers"]
    assert (b"host", b"example.com") in scope["headers"]
    assert tuple(scope["client"]) == ("192.0.2.7", 5555)
    assert tuple(scope["server"]) == ("127.0.0.1", 8080)
    assert scope["state"] == {}
    assert "http.response.pathsend" in scope["extensions"]
    assert app.messages == [{"type": "http.request", "body": b"", "more_body": False}]


def test_scope_at_the_root_and_at_the_mount_point_itself() -> None:
    app = Recorder()
    serve(Site(ASGIResource(app)), request("/x/y"))
    assert (app.scope["root_path"], app.scope["path"]) == ("", "/x/y")
    serve(mounted(app), request("/api"))
    assert (app.scope["root_path"], app.scope["path"]) == ("/api", "/api")


def test_forwarded_client_and_scheme_from_a_trusted_proxy() -> None:
    app = Recorder()
    site = mounted(app)
    site.trusted_proxies = TrustedProxies(["192.0.2.0/24"])
    headers = "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n"
    serve(site, request("/api/", headers=headers))
    assert app.scope["client"][0] == "203.0.113.9"
    assert app.scope["scheme"] == "https"
    # Not believed from a peer that is not a trusted proxy.
    site.trusted_proxies = TrustedProxies(["198.51.100.1"])
    serve(site, request("/api/", headers=headers))
    assert app.scope["client"][0] == "192.0.2.7"
    assert app.scope["scheme"] == "http"


def test_a_proxy_prefix_comes_before_the_mount_point() -> None:
    app = Recorder()
    site = mounted(app)
    site.trusted_proxies = TrustedProxies(["192.0.2.7"])
    headers = (
        "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Prefix: /outer\r\n"
        "X-Forwarded-Host: example.org\r\n"
    )
    serve(site, request("/api/items/7", headers=headers))
    assert app.scope["root_path"] == "/outer/api"
    assert app.scope["path"] == "/outer/api/items/7"
    assert app.scope["raw_path"] == b"/api/items/7"
    assert (b"host", b"example.org") in app.scope["headers"]


def test_requests_do_not_share_context_variables() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(var.get())
        var.set(scope["path"])
        await hello(scope, receive, send)

    async def scenario() -> None:
        harness = Harness(mounted(app))
        # Pipelined: the second request starts while the first one's task answers.
        harness.send(request("/api/one") + request("/api/two"))
        await settle(lambda: len(seen) == 2 and harness.connection.idle)

    run(scenario())
    assert seen == ["unset", "unset"]


# -- responses ---------------------------------------------------------------------------------


def test_a_whole_response_goes_out_framed_by_its_length() -> None:
    response = serve(mounted(hello), request("/api/"))
    assert response.status == 200
    assert response.body == b"hello"
    assert response.header("content-length") == "5"
    assert response.header("x-app") == "yes"
    assert response.header("server") == "hive"


def test_a_streamed_response_goes_out_as_it_comes() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        for part in (b"one ", b"", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body"})

    response = serve(mounted(app), request("/api/"))
    assert response.status == 201
    assert response.header("transfer-encoding") == "chunked"
    assert response.body == b"one two three"


def test_declared_length_head_and_the_sites_own_headers() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"11"), (b"server", b"app"), (b"date", b"then")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else b"x" * 11}
        )

    response = serve(mounted(app), request("/api/", method="HEAD"), method="HEAD")
    assert response.header("content-length") == "11"
    assert response.body == b""
    response = serve(mounted(app), request("/api/"))
    assert response.body == b"x" * 11
    assert response.header("server") == "hive"
    assert response.header("date") != "then"


def test_pathsend_sends_the_file(tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 300)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        headers = [(b"content-type", b"application/octet-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": str(blob)})

    response = serve(mounted(app), request("/api/f"))
    assert response.status == 200
    assert response.header("content-length") == str(256 * 300)
    assert response.body == blob.read_bytes()


# -- errors ------------------------------------------------------------------------------------


def test_an_error_before_the_start_answers_500_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("boom <asgi>")

    with caplog.at_level(logging.ERROR):
        response = serve(mounted(app), request("/api/"))
    assert response.status == 500
    assert b"boom" not in response.body  # no traceback without displayTracebacks
    assert "boom <asgi>" in caplog.text
    site = mounted(app)
    site.displayTracebacks = True
    assert b"boom &lt;asgi&gt;" in serve(site, request("/api/")).body


@pytest.mark.parametrize("where", ["after start", "mid-stream", "returned after start"])
def test_an_error_after_the_start_cuts_the_connection(where: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if where == "mid-stream":
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
        if where != "returned after start":
            raise ValueError("boom")

    async def scenario() -> Harness:
        harness = Harness(mounted(app))
        harness.send(request("/api/"))
        await settle(lambda: harness.transport.closed)
        return harness

    harness = run(scenario())
    assert harness.transport.aborted
    assert b" 500 " not in bytes(harness.transport.data)


def test_returning_without_a_response_answers_500(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    with caplog.at_level(logging.ERROR):
        assert serve(mounted(app), request("/api/")).status == 500
    assert "without a response" in caplog.text


def test_an_asgi2_application_is_told_what_is_wrong(caplog: pytest.LogCaptureFixture) -> None:
    def app(scope: Scope) -> Any:  # ASGI 2: a callable returning a callable
        return lambda receive, send: None

    with caplog.at_level(logging.ERROR):
        assert serve(mounted(app), request("/api/")).status == 500  # type: ignore[arg-type]
    assert "hive serves ASGI 3" in caplog.text or "positional argument" in caplog.text


BAD_MESSAGES: list[tuple[str, list[Any], type[Exception]]] = [
    ("body first", [{"type": "http.response.body", "body": b"x"}], RuntimeError),
    ("no type", [{"status": 200}], TypeError),
    ("not a dict", [["http.response.start"]], TypeError),
    ("unknown type", [{"type": "http.response.nonsense"}], ValueError),
    ("status str", [{"type": "http.response.start", "status": "200"}], ValueError),
    ("status 99", [{"type": "http.response.start", "status": 99}], ValueError),
    ("headers str", [{"type": "http.response.start", "status": 200, "headers": "x"}], TypeError),
    (
        "header not bytes",
        [{"type": "http.response.start", "status": 200, "headers": [("a", "b")]}],
        TypeError,
    ),
    (
        "header with LF",
        [{"type": "http.response.start", "status": 200, "headers": [(b"a", b"b\nc")]}],
        ValueError,
    ),
    (
        "header name not a token",
        [{"type": "http.response.start", "status": 200, "headers": [(b"a b", b"c")]}],
        ValueError,
    ),
    (
        "bad content-length",
        [{"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"x")]}],
        ValueError,
    ),
    (
        "start twice",
        [
            {"type": "http.response.start", "status": 200},
            {"type": "http.response.start", "status": 200},
        ],
        RuntimeError,
    ),
    (
        "body not bytes",
        [
            {"type": "http.response.start", "status": 200},
            {"type": "http.response.body", "body": "x"},
        ],
        TypeError,
    ),
    (
        "body after the end",
        [
            {"type": "http.response.start", "status": 200},
            {"type": "http.response.body", "body": b"x"},
            {"type": "http.response.body", "body": b"y"},
        ],
        RuntimeError,
    ),
    (
        "pathsend without a start",
        [{"type": "http.response.pathsend", "path": "/dev/null"}],
        RuntimeError,
    ),
]


@pytest.mark.parametrize(
    ("messages", "error"), [(m, e) for _, m, e in BAD_MESSAGES], ids=[n for n, _, _ in BAD_MESSAGES]
)
def test_a_malformed_message_raises_in_send_and_never_hangs(
    messages: list[Any], error: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            for message in messages:
                await send(message)
        except Exception as exc:
            raised.append(exc)
            raise

    async def scenario() -> Harness:
        harness = Harness(mounted(app))
        harness.send(request("/api/"))
        await settle(answered(harness))
        return harness

    with caplog.at_level(logging.ERROR):
        harness = run(scenario())
    assert len(raised) == 1 and isinstance(raised[0], error), raised
    assert str(raised[0]) in caplog.text
    data = bytes(harness.transport.data)
    if data.startswith(b"HTTP/1.1 500"):
        assert not harness.transport.closed  # answered, and the connection kept
    else:
        assert harness.transport.aborted or harness.connection.idle


# -- the request body and the client -----------------------------------------------------------


def test_the_body_is_streamed_as_fast_as_the_application_reads() -> None:
    gate = asyncio.Event
    reads: list[Message] = []

    async def scenario() -> tuple[Harness, Response]:
        release = gate()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await release.wait()
            while True:
                message = await receive()
                reads.append(message)
                if not message["more_body"]:
                    break
            total = sum(len(m["body"]) for m in reads)
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"%d" % total})

        harness = Harness(mounted(app))
        size = HIGH_WATER * 3
        head = f"POST /api/up HTTP/1.1\r\nHost: h\r\nContent-Length: {size}\r\n\r\n"
        harness.send(head.encode())
        piece = b"x" * (64 * 1024)
        for _ in range(size // len(piece)):
            if not harness.transport.reading:
                break
            harness.send(piece)
        # The application has read nothing: the connection stopped reading past HIGH_WATER.
        assert not harness.transport.reading
        release.set()
        await settle(lambda: harness.transport.reading)
        sent = harness.connection._body_size
        harness.send(b"x" * (size - sent))
        await settle(answered(harness))
        return harness, harness.response("POST")

    _, response = run(scenario())
    assert response.body == b"%d" % (HIGH_WATER * 3)
    assert all(m["type"] == "http.request" for m in reads)
    assert [m["more_body"] for m in reads][-1] is False
    assert len(reads) > 1


def test_a_chunked_body_is_given_in_pieces() -> None:
    app = Recorder()
    body = b"y" * 150_000
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    raw = b"POST /api/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    response = serve(mounted(app), raw, "POST")
    assert response.body == b"got 150000"
    assert [len(m["body"]) for m in app.messages] == [65536, 65536, 150000 - 131072]
    assert [m["more_body"] for m in app.messages] == [True, True, False]


def test_a_body_over_the_limit_is_refused_before_the_application_runs() -> None:
    app = Recorder()

    async def scenario() -> Response:
        harness = Harness(mounted(app), limits=ConnectionLimits(max_body_size=100))
        return await exchange(harness, request("/api/", "POST", body=b"z" * 101), "POST")

    assert run(scenario()).status == 413
    assert app.scope == {}


def test_receive_after_the_response_is_a_disconnect() -> None:
    after: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await hello(scope, receive, send)
        after.append(await receive())

    serve(mounted(app), request("/api/"))
    assert after == [{"type": "http.disconnect"}]


def test_a_client_that_goes_away_is_a_disconnect_and_send_raises() -> None:
    events: list[Any] = []

    async def scenario() -> None:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"a", "more_body": True})
            events.append(await receive())  # waits until the client is gone
            try:
                await send({"type": "http.response.body", "body": b"b", "more_body": True})
            except OSError as exc:
                events.append(exc)
                raise

        harness = Harness(mounted(app))
        harness.send(request("/api/"))
        await settle(lambda: b"\r\n1\r\na\r\n" in harness.transport.data)
        assert not events
        harness.connection.connection_lost(None)
        await settle(lambda: len(events) == 2)

    run(scenario())
    assert events[0] == {"type": "http.disconnect"}
    assert isinstance(events[1], ClientDisconnected)


def test_send_waits_while_the_client_is_not_reading() -> None:
    sent: list[int] = []

    async def scenario() -> None:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200})
            for n in range(3):
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
                sent.append(n)
            await send({"type": "http.response.body"})

        harness = Harness(mounted(app))
        harness.connection.pause_writing(0.0)
        harness.send(request("/api/"))
        for _ in range(50):
            await asyncio.sleep(0)
        assert sent == []  # the first piece is written, then send waits
        harness.connection.resume_writing()
        await settle(answered(harness))

    run(scenario())
    assert sent == [0, 1, 2]


def test_an_error_after_the_client_left_is_a_note(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await receive()
            raise ValueError("late")

        harness = Harness(mounted(app))
        harness.send(request("/api/"))
        await asyncio.sleep(0)
        harness.connection.connection_lost(None)
        for _ in range(10):
            await asyncio.sleep(0)

    with caplog.at_level(logging.INFO):
        run(scenario())
    records = [r for r in caplog.records if "late" in r.getMessage()]
    assert records and all(r.levelno == logging.INFO for r in records)


# -- lifespan ----------------------------------------------------------------------------------


class LifespanApp:
    """An application with a lifespan that does what it is told to."""

    def __init__(self, startup: str = "complete", shutdown: str = "complete") -> None:
        self.startup = startup
        self.shutdown = shutdown
        self.events: list[str] = []
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.scopes.append(scope)
            scope["state"]["mine"] = True
            return await hello(scope, receive, send)
        if self.startup == "raise first":
            raise ValueError("not for me")
        message = await receive()
        self.events.append(message["type"])
        if self.startup == "raise":
            raise ValueError("database unreachable")
        if self.startup == "failed":
            await send({"type": "lifespan.startup.failed", "message": "no database\nat all"})
            return
        scope["state"]["pool"] = "opened"
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        self.events.append(message["type"])
        if self.shutdown == "hang":
            await asyncio.Event().wait()
        kind = "failed" if self.shutdown == "failed" else "complete"
        await send({"type": f"lifespan.shutdown.{kind}", "message": "could not close"})


def test_lifespan_startup_state_and_shutdown() -> None:
    app = LifespanApp()
    resource = ASGIResource(app)
    root = Resource()
    root.putChild(b"api", resource)

    async def scenario() -> None:
        assert resource.lifespan is Lifespan.of(app)
        assert resource.lifespan in Lifespan.every()
        await resource.lifespan.startup()
        assert resource.lifespan.supported
        harness = Harness(Site(root))
        for _ in range(2):
            response = await exchange(harness, request("/api/"))
            assert response.status == 200
        await resource.lifespan.shutdown()

    run(scenario())
    assert app.events == ["lifespan.startup", "lifespan.shutdown"]
    # Each request's state is a copy: what one request adds, the next does not see.
    assert [s["state"] for s in app.scopes] == [{"pool": "opened", "mine": True}] * 2
    assert resource.lifespan.state == {"pool": "opened"}


@pytest.mark.parametrize(
    ("startup", "message"),
    [
        ("failed", "lifespan startup failed: no database at all"),
        ("raise", "lifespan startup raised ValueError: database unreachable"),
    ],
)
def test_a_failed_startup_raises(startup: str, message: str) -> None:
    lifespan = Lifespan(LifespanApp(startup=startup))
    with pytest.raises(LifespanError, match=message):
        run(lifespan.startup())


def test_an_application_without_lifespan_is_served_without() -> None:
    async def scenario(app: App) -> bool:
        lifespan = Lifespan(app)
        await lifespan.startup()
        await lifespan.shutdown()  # nothing to do
        return lifespan.supported

    assert not run(scenario(LifespanApp(startup="raise first")))
    assert not run(scenario(hello))  # reads nothing, answers as if it were http: returns


def test_shutdown_failures_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(app: LifespanApp) -> None:
        lifespan = Lifespan(app)
        await lifespan.startup()
        await lifespan.shutdown(timeout=0.05)

    with caplog.at_level(logging.WARNING):
        run(scenario(LifespanApp(shutdown="failed")))
        run(scenario(LifespanApp(shutdown="hang")))
    assert "lifespan shutdown failed: could not close" in caplog.text
    assert "lifespan shutdown not done after 0.05 s" in caplog.text


def test_unexpected_lifespan_messages_raise_in_the_application() -> None:
    errors: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        try:
            await send({"type": "lifespan.shutdown.complete"})
        except RuntimeError as exc:
            errors.append(exc)
        await send({"type": "lifespan.startup.complete"})
        await receive()

    async def scenario() -> None:
        lifespan = Lifespan(app)
        await lifespan.startup()
        lifespan._task.cancel()  # type: ignore[union-attr]

    run(scenario())
    assert len(errors) == 1


def test_a_cancelled_application_cuts_the_connection() -> None:
    async def scenario() -> Harness:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await asyncio.Event().wait()

        site = mounted(app)
        harness = Harness(site)
        requests: list[Any] = []
        original = site.requestFactory

        def keep(*args: Any) -> Any:
            requests.append(original(*args))
            return requests[-1]

        site.requestFactory = keep
        harness.send(request("/api/"))
        await asyncio.sleep(0)
        requests[0]._task.cancel()
        await settle(lambda: harness.transport.closed)
        return harness

    harness = run(scenario())
    assert harness.transport.aborted
    assert not harness.transport.data


# -- the websocket scope -----------------------------------------------------------------------


class WSClient:
    """An ASGI application mounted at /api, reached with websockets' client codec."""

    def __init__(self, app: App) -> None:
        self.harness = Harness(mounted(app))
        self.codec = WSProtocol(Side.CLIENT)
        self._seen = 0

    async def open(self, path: str = "/api/ws", **headers: str) -> bytes:
        """Send the handshake; the response's head once the application answered it."""
        self.harness.send(handshake_bytes(path, **headers))
        await settle(lambda: b"\r\n\r\n" in self.harness.transport.data)
        data = bytes(self.harness.transport.data)
        head = data.partition(b"\r\n\r\n")[0]
        self._seen = len(head) + 4
        return head

    def send_text(self, text: str) -> None:
        self.codec.send_text(text.encode())
        self._flush()

    def send_bytes(self, data: bytes) -> None:
        self.codec.send_binary(data)
        self._flush()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The closing handshake; then the TCP connection ends, as the driver tells it."""
        self.codec.send_close(code, reason)
        await self.closed()

    async def closed(self) -> None:
        """Answer what the server sent (a close frame), then end the TCP connection."""
        self._flush()
        await settle(lambda: self.harness.transport.closed)
        self.harness.driven.connection_lost(None)

    def _flush(self) -> None:
        for data in self.codec.data_to_send():
            if data:
                self.harness.send(data)

    def frames(self) -> list[Frame]:
        data = bytes(self.harness.transport.data)
        fresh, self._seen = data[self._seen :], len(data)
        if fresh:
            self.codec.receive_data(fresh)
        return [event for event in self.codec.events_received() if isinstance(event, Frame)]

    async def wait_frames(self, count: int) -> list[Frame]:
        got: list[Frame] = []

        def enough() -> bool:
            got.extend(self.frames())
            return len(got) >= count

        await settle(enough)
        return got


class Echo:
    """Accepts (with a subprotocol if asked to), echoes, and records what it was told."""

    def __init__(self, subprotocol: str | None = None) -> None:
        self.subprotocol = subprotocol
        self.scope: Scope = {}
        self.received: list[Message] = []
        self.errors: list[BaseException] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        assert (await receive()) == {"type": "websocket.connect"}
        await send({"type": "websocket.accept", "subprotocol": self.subprotocol})
        while True:
            message = await receive()
            self.received.append(message)
            if message["type"] == "websocket.disconnect":
                try:
                    await send({"type": "websocket.send", "text": "too late"})
                except OSError as exc:
                    self.errors.append(exc)
                return
            if message.get("text") == "close please":
                await send({"type": "websocket.close", "code": 4000, "reason": "asked"})
                continue
            reply = {"type": "websocket.send", "text": message.get("text")}
            if message.get("bytes") is not None:
                reply = {"type": "websocket.send", "bytes": message["bytes"]}
            await send(reply)


def test_websocket_scope_echo_and_a_client_close() -> None:
    app = Echo(subprotocol="chat.v2")

    async def scenario() -> tuple[bytes, list[Frame], WSClient]:
        client = WSClient(app)
        head = await client.open(
            "/api/ws?room=1", Sec_WebSocket_Protocol="chat.v1, chat.v2", Origin="http://x"
        )
        client.send_text("héllo")
        client.send_bytes(b"\x00\x01")
        frames = await client.wait_frames(2)
        await client.close(1000, "bye")
        await settle(lambda: len(app.received) == 3 and bool(app.errors))
        return head, frames, client

    head, frames, client = run(scenario())
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols")
    assert b"Sec-WebSocket-Protocol: chat.v2" in head
    assert [(f.opcode, f.data) for f in frames] == [
        (Opcode.TEXT, "héllo".encode()),
        (Opcode.BINARY, b"\x00\x01"),
    ]
    scope = app.scope
    assert scope["type"] == "websocket" and "method" not in scope
    assert (scope["scheme"], scope["root_path"], scope["path"]) == ("ws", "/api", "/api/ws")
    assert scope["query_string"] == b"room=1"
    assert scope["subprotocols"] == ["chat.v1", "chat.v2"]
    assert scope["asgi"]["spec_version"] == "2.4"
    assert "websocket.http.response" in scope["extensions"]
    assert app.received[-1] == {"type": "websocket.disconnect", "code": 1000, "reason": "bye"}
    assert isinstance(app.errors[0], ClientDisconnected)
    assert isinstance(client.harness.driven, WebSocketConnection)


def test_the_application_closes_with_its_code() -> None:
    app = Echo()

    async def scenario() -> list[Frame]:
        client = WSClient(app)
        await client.open()
        client.send_text("close please")
        return await client.wait_frames(1)

    (frame,) = run(scenario())
    assert Close.parse(frame.data) == Close(4000, "asked")


@pytest.mark.parametrize("how", ["close", "return", "raise"])
def test_no_accept_answers_over_http(how: str, caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        if how == "close":
            await send({"type": "websocket.close"})
        elif how == "raise":
            raise ValueError("not today")

    async def scenario() -> bytes:
        client = WSClient(app)
        await client.open()
        await settle(lambda: client.harness.connection.idle)
        return bytes(client.harness.transport.data)

    with caplog.at_level(logging.ERROR):
        data = run(scenario())
    assert data.startswith(b"HTTP/1.1 500" if how == "raise" else b"HTTP/1.1 403")
    if how == "raise":
        assert "not today" in caplog.text
    else:
        assert not caplog.records  # a refusal is no error


def test_a_denial_response_is_the_applications_own() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"www-authenticate", b"Bearer")]
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b"log in first"})

    async def scenario() -> Response:
        client = WSClient(app)
        await client.open()
        await settle(lambda: client.harness.connection.idle)
        return client.harness.response()

    response = run(scenario())
    assert (response.status, response.body) == (401, b"log in first")
    assert response.header("www-authenticate") == "Bearer"


def test_an_error_after_the_accept_closes_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise ValueError("broken handler")

    async def scenario() -> list[Frame]:
        client = WSClient(app)
        await client.open()
        client.send_text("anything")
        return await client.wait_frames(1)

    with caplog.at_level(logging.ERROR):
        (frame,) = run(scenario())
    assert Close.parse(frame.data).code == 1011
    assert "broken handler" in caplog.text


@pytest.mark.parametrize(
    ("accept", "error"),
    [
        ({"type": "websocket.accept", "subprotocol": "nope"}, ValueError),
        ({"type": "websocket.accept", "headers": [(b"upgrade", b"h2c")]}, ValueError),
        ({"type": "websocket.send", "text": "before accept"}, RuntimeError),
        ({"type": "websocket.nonsense"}, ValueError),
    ],
)
def test_wrong_websocket_messages_raise_in_send(accept: Message, error: type[Exception]) -> None:
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        try:
            await send(accept)
        except Exception as exc:
            raised.append(exc)
            raise

    async def scenario() -> bytes:
        client = WSClient(app)
        await client.open()
        return bytes(client.harness.transport.data)

    data = run(scenario())
    assert len(raised) == 1 and isinstance(raised[0], error)
    assert data.startswith(b"HTTP/1.1 500")


def test_an_invalid_handshake_is_refused_before_the_application_runs() -> None:
    app = Echo()
    raw = handshake_bytes("/api/ws", Sec_WebSocket_Key="short").replace(b"short", b"c2hvcnQ=")
    response = serve(mounted(app), raw)
    assert response.status == 400
    assert app.scope == {}


def test_another_upgrade_is_plain_http_for_the_application() -> None:
    app = Recorder()
    serve(mounted(app), request("/api/", headers="Connection: Upgrade\r\nUpgrade: h2c\r\n"))
    assert app.scope["type"] == "http"


def test_a_websocket_application_that_is_behind_pauses_reading() -> None:
    async def scenario() -> tuple[bool, bool, list[Message]]:
        release = asyncio.Event()
        got: list[Message] = []

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            await release.wait()
            while len(got) < MAX_QUEUE + 2:
                got.append(await receive())

        client = WSClient(app)
        await client.open()
        for n in range(MAX_QUEUE + 2):
            client.send_text(str(n))
        paused = not client.harness.transport.reading
        release.set()
        await settle(lambda: len(got) == MAX_QUEUE + 2)
        return paused, client.harness.transport.reading, got

    paused, reading, got = run(scenario())
    assert paused and reading
    assert [m["text"] for m in got] == [str(n) for n in range(MAX_QUEUE + 2)]


def test_draining_closes_an_open_websocket_with_1001() -> None:
    app = Echo()

    async def scenario() -> list[Frame]:
        client = WSClient(app)
        await client.open()
        ws = client.harness.driven
        assert isinstance(ws, WebSocketConnection)
        ws.drain(0.0)
        ws.check_deadlines(100.0)
        frames = await client.wait_frames(1)
        await client.closed()
        await settle(lambda: bool(app.received))
        return frames

    (frame,) = run(scenario())
    assert Close.parse(frame.data).code == 1001
    assert app.received[-1]["type"] == "websocket.disconnect"
    assert app.received[-1]["code"] == 1001
