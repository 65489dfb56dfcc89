"""What Twisted programs rely on beyond the resource model: the default Content-Type,
hive.pages, Deferreds from renders and getChild, notifyFinish's Deferred side,
getAllHeaders with str keys, Site(logPath, logFormatter) and HTTPFactory programs."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from twisted.python.failure import Failure

from hive import http, pages
from hive._accesslog import AccessLog
from hive._clock import Clock
from hive.iweb import IRequest
from hive.resource import NOT_DONE_YET, Resource
from hive.server import Request, Site, site_for_factory
from tests.unit.harness import Harness, Held, run, settle

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


class Page(Resource):
    isLeaf = True

    def __init__(self, body: bytes = b"<p>hi</p>", code: int = 200, **headers: bytes) -> None:
        super().__init__()
        self.body = body
        self.code = code
        self.headers = headers

    def render_GET(self, request: IRequest) -> bytes:
        request.setResponseCode(self.code)
        for name, value in self.headers.items():
            request.setHeader(name.replace("_", "-"), value)
        return self.body


# -- Request.defaultContentType -----------------------------------------------------------------


def test_a_body_without_content_type_is_text_html_as_in_twisted() -> None:
    assert Harness(Page()).get("/").header("Content-Type") == "text/html"
    own = Harness(Page(content_type=b"text/plain")).get("/")
    assert own.header("Content-Type") == "text/plain"


@pytest.mark.parametrize(("body", "code"), [(b"", 200), (b"", 204), (b"", 304)])
def test_no_default_content_type_without_a_body(body: bytes, code: int) -> None:
    assert Harness(Page(body, code)).get("/").header("Content-Type") is None


def test_default_content_type_may_be_changed_or_turned_off() -> None:
    class Plain(Request):
        defaultContentType = b"text/plain; charset=utf-8"

    class Bare(Request):
        defaultContentType = None

    plain = Harness(Site(Page(), requestFactory=Plain)).get("/")
    assert plain.header("Content-Type") == "text/plain; charset=utf-8"
    assert Harness(Site(Page(), requestFactory=Bare)).get("/").header("Content-Type") is None


def test_a_streamed_body_gets_the_default_too() -> None:
    held = Held()
    harness = Harness(held)
    harness.send(GET)
    held.requests[0].write(b"part")
    held.requests[0].finish()
    response = harness.response()
    assert response.header("Content-Type") == "text/html" and response.body == b"part"


# -- hive.pages ---------------------------------------------------------------------------------


def test_pages_answer_every_path_below_them_escaped() -> None:
    page = pages.errorPage(418, "I'm <a> teapot", "short & stout")
    response = Harness(page).get("/deep/below")
    assert response.status == 418
    assert b"<h1>I&#x27;m &lt;a&gt; teapot</h1>" in response.body
    assert b"short &amp; stout" in response.body
    assert Harness(pages.notFound()).get("/x").status == 404
    forbidden = Harness(pages.forbidden("Go away", "Not you.")).get("/")
    assert forbidden.status == 403 and b"Not you." in forbidden.body


def test_a_child_put_under_a_page_answers_for_itself() -> None:
    root = pages.notFound()
    root.putChild(b"ok", Page(b"fine"))
    assert Harness(root).get("/ok").body == b"fine"
    assert Harness(root).get("/other").status == 404


# -- Deferreds ----------------------------------------------------------------------------------


class Deferring(Resource):
    """Renders with Deferreds: fired already, fired later, or failing."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[defer.Deferred[Any]] = []

    def render_GET(self, request: IRequest) -> Any:
        kind = request.postpath[0]
        if kind == b"fired":
            return defer.succeed(b"fired")
        if kind == b"failed":
            return defer.fail(ValueError("no"))
        if kind == b"twelve":
            return defer.fail(12)  # type: ignore[arg-type]  # xmlrpcserver.py's defer_fail: not an exception
        later: defer.Deferred[Any] = defer.Deferred()
        self.pending.append(later)
        return later


def test_a_render_may_return_a_deferred(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> list[tuple[int, bytes]]:
        resource = Deferring()
        harness = Harness(resource)
        out = []
        for kind in ("fired", "failed", "twelve"):
            harness.send(f"GET /{kind} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            await settle()
            out += [(r.status, r.body) for r in harness.responses()]
        harness.send(b"GET /later HTTP/1.1\r\nHost: a\r\n\r\n")
        await settle()
        assert harness.responses() == []
        resource.pending[0].callback(b"later")
        await settle()
        out += [(r.status, r.body) for r in harness.responses()]
        return out

    fired, failed, twelve, later = run(scenario())
    assert fired == (200, b"fired") and later == (200, b"later")
    assert failed[0] == twelve[0] == 500
    assert "the Deferred failed with 12" in caplog.text


def test_a_deferred_render_may_write_itself_then_give_not_done_yet() -> None:
    class Writer(Resource):
        isLeaf = True

        def render_GET(self, request: IRequest) -> Any:
            def write(_: object) -> object:
                request.write(b"streamed")
                request.finish()
                return NOT_DONE_YET

            return defer.succeed(None).addCallback(write)

    async def scenario() -> bytes:
        harness = Harness(Writer())
        harness.send(GET)
        await settle()
        return harness.response().body

    assert run(scenario()) == b"streamed"


def test_get_child_may_return_a_deferred_of_the_child() -> None:
    class Root(Resource):
        def __init__(self) -> None:
            super().__init__()
            self.pending: list[defer.Deferred[Any]] = []

        def getChild(self, path: bytes, request: IRequest) -> Any:
            later: defer.Deferred[Any] = defer.Deferred()
            self.pending.append(later)
            return later

    async def scenario() -> tuple[int, bytes]:
        root = Root()
        harness = Harness(root)
        harness.send(b"GET /a/b HTTP/1.1\r\nHost: a\r\n\r\n")
        await settle()
        inner = Root()
        root.pending[0].callback(inner)  # the child of /a, itself walked on
        await settle()
        inner.pending[0].callback(Page(b"found b"))
        await settle()
        response = harness.response()
        return response.status, response.body

    assert run(scenario()) == (200, b"found b")


def test_notify_finish_takes_twisted_callbacks_and_stays_a_future() -> None:
    async def scenario() -> list[Any]:
        held = Held()
        harness = Harness(held)
        harness.send(GET)
        seen: list[Any] = []
        done = held.requests[0].notifyFinish()
        done.addCallback(lambda result, tag: seen.append((tag, result)), "done")
        held.requests[0].finish()
        await done  # still an asyncio future
        await settle()
        harness.send(GET)
        lost = held.requests[1].notifyFinish()
        chained = lost.addErrback(lambda failure, tag: seen.append((tag, failure)), "lost")
        chained.addCallback(lambda _: seen.append("after the errback"))
        harness.connection.connection_lost(None)
        await settle()
        return seen

    (done, (tag, failure), after) = run(scenario())
    assert done == ("done", None)
    assert tag == "lost" and isinstance(failure, Failure)
    assert failure.check(ConnectionError)  # type: ignore[no-untyped-call]
    assert after == "after the errback"


# -- getAllHeaders ------------------------------------------------------------------------------


def test_get_all_headers_finds_str_keys_too() -> None:
    seen: dict[str, Any] = {}

    class Look(Resource):
        isLeaf = True

        def render_GET(self, request: IRequest) -> bytes:
            headers: Any = request.getAllHeaders()
            seen.update(
                host=headers["host"],
                bytes_host=headers[b"host"],
                contains="X-Thing" in headers,
                get=headers.get("x-thing"),
                missing=headers.get("nope", b"-"),
                copy=headers.copy()["x-thing"],
            )
            with pytest.raises(KeyError):
                headers["nope"]
            return b""

    Harness(Look()).get("/", {"X-Thing": "1"})
    assert seen == {
        "host": b"example.com",
        "bytes_host": b"example.com",
        "contains": True,
        "get": b"1",
        "missing": b"-",
        "copy": b"1",
    }


# -- Site(logPath, logFormatter) and the formatters ---------------------------------------------


def test_site_log_path_and_formatter(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    site = Site(
        Page(b"12345"),
        logPath=str(path).encode(),
        logFormatter=http.combinedLogFormatter,
        clock=Clock(lambda: 0.0),
    )
    Harness(site).get("/page?x", {"User-Agent": 'a "quoted" agent', "Referer": "http://r/"})
    assert site.access_log is not None
    site.access_log.flush()
    (line,) = path.read_text().splitlines()
    assert line.startswith('"192.0.2.7" - - [')
    assert line.endswith('] "GET /page?x HTTP/1.1" 200 5 "http://r/" "a \\"quoted\\" agent"')
    site.access_log.close()


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [(None, "-"), ("203.0.113.9", "203.0.113.9"), ("203.0.113.9, 10.1.1.1", "203.0.113.9")],
)
def test_proxied_log_formatter(tmp_path: Path, forwarded: str | None, client: str) -> None:
    lines: list[str] = []

    class Memory(AccessLog):
        def log(self, line: str) -> None:
            lines.append(line)

    site = Site(Page(b""), logFormatter=http.proxiedLogFormatter)
    site.access_log = Memory("-", None, None)
    Harness(site).get("/", {"X-Forwarded-For": forwarded} if forwarded else {})
    (line,) = lines
    assert line.startswith(f'"{client}" - - [') and '"GET / HTTP/1.1" 200 - "-" "-"' in line


def test_a_formatter_sees_the_timestamp_in_brackets() -> None:
    seen: list[str] = []

    def formatter(timestamp: str, request: IRequest) -> str:
        seen.append(timestamp)
        return "line"

    site = Site(Page(), logFormatter=formatter)
    site.access_log = AccessLog("-", None, None)
    Harness(site).get("/")
    (stamp,) = seen
    assert re.fullmatch(r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\]", stamp), stamp


# -- HTTPFactory programs -------------------------------------------------------------------------


def test_an_http_factory_is_served_with_its_protocol_s_request_factory() -> None:
    class Shout(Request):
        def process(self) -> None:
            self.setHeader(b"content-type", b"text/plain")
            self.write(self.uri.upper())
            self.finish()

    class Channel(http.HTTPChannel):
        requestFactory = Shout

    class Factory(http.HTTPFactory):
        def buildProtocol(self, addr: object) -> http.HTTPChannel:
            return Channel()

    site = site_for_factory(Factory())
    assert Harness(site).get("/quiet?x").body == b"/QUIET?X"
    # A factory whose protocol names no Request class serves hive's (a 404 tree).
    assert Harness(site_for_factory(http.HTTPFactory())).get("/").status == 404


def test_deferred_future_without_twisted_explains(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from hive._deferred import DeferredFuture

    async def scenario() -> None:
        future: DeferredFuture[None] = DeferredFuture(loop=asyncio.get_running_loop())
        monkeypatch.setitem(sys.modules, "twisted.internet.defer", None)
        with pytest.raises(RuntimeError, match="need Twisted"):
            future.addCallback(print)

    run(scenario())


# -- the forward proxy's refusals (its relaying is tested over sockets) ----------------------------


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/origin/form", 400),
        ("https://example.org/", 501),
        ("ftp://example.org/file", 400),  # refused by the engine already
        ("http://example.org:notaport/", 400),
    ],
)
def test_the_forward_proxy_refuses_what_it_cannot_relay(target: str, status: int) -> None:
    from hive.proxy import ProxyFactory

    assert Harness(site_for_factory(ProxyFactory())).get(target).status == status


def test_hive_run_serves_an_http_factory_class_or_instance() -> None:
    from hive._loader import resolve_site
    from hive.proxy import Proxy, ProxyFactory, ProxyRequest

    for target in (ProxyFactory, ProxyFactory(), lambda: ProxyFactory()):
        site = resolve_site(
            target,
            site_type=Site,
            resource_type=Resource,
            make_site=Site,
            adapters=[(http.HTTPFactory, site_for_factory)],
        )
        assert site.requestFactory is ProxyRequest
    assert Proxy.requestFactory is ProxyRequest


def test_scripts_need_a_path() -> None:
    from hive._config import Config, ConfigError

    with pytest.raises(ConfigError, match="scripts"):
        Config(scripts=True)
    assert Config(path=".", scripts=True).scripts
