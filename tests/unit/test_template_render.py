"""renderElement and flatten against the real Site, Request and Connection (the harness):
framing, streaming with backpressure, clients that read nothing or leave, and errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any, cast

import pytest

from hive.error import Error
from hive.http_headers import Headers
from hive.resource import Resource
from hive.server import NOT_DONE_YET, Request, Site
from hive.template import (
    CHUNK_SIZE,
    Element,
    Tag,
    XMLString,
    flatten,
    renderElement,
    renderer,
    tags,
)
from tests.unit.harness import Harness, run, settle

NS = 'xmlns:t="http://twistedmatrix.com/ns/twisted.web.template/0.1"'
GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


class Page(Resource):
    """Renders the element the test gives, with renderElement."""

    isLeaf = True

    def __init__(self, element: Any, **options: Any) -> None:
        super().__init__()
        self.element = element
        self.options = options

    def render_GET(self, request: Request) -> object:
        return renderElement(request, self.element, **self.options)


class Greeting(Element):
    loader = XMLString(f'<p {NS}>Hello, <b t:render="name" />!</p>')

    def __init__(self, who: str = "world") -> None:
        super().__init__()
        self.who = who

    @renderer
    def name(self, request: Any, tag: Tag) -> Any:
        return tag(self.who)


class Rows(Element):
    """A long page, from a generator that counts what it has made."""

    loader = XMLString(f'<table {NS}><tr t:render="rows"><td><t:slot name="n" /></td></tr></table>')

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.made = 0
        self.closed = False

    @renderer
    def rows(self, request: Any, tag: Tag) -> Iterator[Tag]:
        try:
            for n in range(self.count):
                self.made += 1
                yield tag.clone().fillSlots(n="row %06d" % n)
        finally:
            self.closed = True


async def until(predicate: Any, rounds: int = 200) -> None:
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition did not come true")


def test_a_page_rendered_at_once_goes_out_with_a_length() -> None:
    async def scenario() -> None:
        harness = Harness(Page(Greeting("<you>")))
        response = harness.get()
        assert response.status == 200
        assert response.header("Content-Type") == "text/html; charset=utf-8"
        assert response.body == b"<!DOCTYPE html>\n<p>Hello, <b>&lt;you&gt;</b>!</p>"
        assert response.header("Content-Length") == str(len(response.body))
        assert response.header("Transfer-Encoding") is None
        assert len(harness.transport.data) > 0 and not harness.transport.closed

    run(scenario())


def test_a_content_type_already_set_is_kept_and_the_doctype_can_go() -> None:
    class Typed(Page):
        def render_GET(self, request: Request) -> object:
            request.setHeader(b"content-type", b"application/xhtml+xml")
            return renderElement(request, self.element, doctype=None)

    async def scenario() -> None:
        response = Harness(Typed(Greeting())).get()
        assert response.header("Content-Type") == "application/xhtml+xml"
        assert response.body == b"<p>Hello, <b>world</b>!</p>"

    run(scenario())


def test_renderElement_returns_NOT_DONE_YET_and_answers_HEAD_without_a_body() -> None:
    results: list[object] = []

    class Recording(Page):
        def render_GET(self, request: Request) -> object:
            results.append(renderElement(request, self.element))
            return results[-1]

    async def scenario() -> None:
        harness = Harness(Recording(Greeting()))
        response = harness.get(method="HEAD")
        assert response.status == 200 and response.body == b""
        assert response.header("Content-Length") == str(len(b"<!DOCTYPE html>\n") + 27)

    run(scenario())
    assert results == [NOT_DONE_YET]


def test_a_page_that_waits_is_streamed() -> None:
    class Waiting(Element):
        loader = XMLString(f'<div {NS}><p>first</p><p t:render="later" /></div>')

        @renderer
        async def later(self, request: Any, tag: Tag) -> Any:
            await asyncio.sleep(0)
            return tag("second")

    async def scenario() -> None:
        harness = Harness(Page(Waiting()))
        harness.send(GET)
        # What came before the wait went out before it.
        assert b"<p>first</p>" in harness.transport.data
        await until(lambda: b"0\r\n\r\n" in harness.transport.data)
        response = harness.response()
        assert response.header("Transfer-Encoding") == "chunked"
        assert response.body == b"<!DOCTYPE html>\n<div><p>first</p><p>second</p></div>"

    run(scenario())


def test_a_long_page_is_written_in_chunks() -> None:
    async def scenario() -> None:
        harness = Harness(Page(Rows(20_000)))
        harness.send(GET)
        await until(lambda: b"0\r\n\r\n" in harness.transport.data)
        response = harness.response()
        assert response.header("Transfer-Encoding") == "chunked"
        assert response.body.count(b"<tr>") == 20_000
        raw = bytes(harness.transport.data)
        body = raw[raw.index(b"\r\n\r\n") + 4 :]
        sizes = []
        while body:
            line, body = body.split(b"\r\n", 1)
            size = int(line, 16)
            sizes.append(size)
            body = body[size + 2 :]
        assert sizes[-1] == 0
        # Whole chunks of CHUNK_SIZE or a little more, not a write per tag.
        assert all(CHUNK_SIZE <= size < CHUNK_SIZE + 100 for size in sizes[1:-2])
        assert len(sizes) < len(response.body) / CHUNK_SIZE + 4

    run(scenario())


def test_a_client_that_reads_nothing_holds_the_rendering_in_bounded_memory() -> None:
    element = Rows(200_000)  # ~5 MB of page

    async def scenario() -> None:
        harness = Harness(Page(element))
        harness.connection.pause_writing(0.0)
        harness.send(GET)
        await settle(50)
        held = len(harness.transport.data)
        made = element.made
        assert held < 2 * CHUNK_SIZE
        assert made < 10_000  # the generator was not run ahead
        await settle(50)
        assert (len(harness.transport.data), element.made) == (held, made)
        harness.connection.resume_writing()
        await until(lambda: b"0\r\n\r\n" in harness.transport.data, rounds=10_000)
        assert harness.response().body.count(b"<tr>") == 200_000

    run(scenario())
    assert element.made == 200_000 and element.closed


def test_a_client_that_leaves_while_not_reading_stops_the_rendering(
    caplog: pytest.LogCaptureFixture,
) -> None:
    element = Rows(200_000)

    async def scenario() -> None:
        harness = Harness(Page(element))
        harness.connection.pause_writing(0.0)
        harness.send(GET)
        await settle(20)
        made = element.made
        harness.connection.connection_lost(None)
        await until(lambda: element.closed)
        assert element.made == made

    with caplog.at_level(logging.DEBUG, "hive"):
        run(scenario())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_client_that_leaves_while_a_renderer_waits_cancels_the_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []

    class Slow(Element):
        loader = XMLString(f'<div {NS}><p t:render="slow" /><p t:render="after" /></div>')

        @renderer
        async def slow(self, request: Any, tag: Tag) -> Any:
            events.append("waiting")
            try:
                await asyncio.get_running_loop().create_future()  # a query that never ends
            except asyncio.CancelledError:
                events.append("cancelled")
                raise
            return tag

        @renderer
        def after(self, request: Any, tag: Tag) -> Any:
            events.append("after")
            return tag

    async def scenario() -> None:
        harness = Harness(Page(Slow()))
        harness.send(GET)
        await until(lambda: events == ["waiting"])
        harness.connection.connection_lost(None)
        await until(lambda: "cancelled" in events)
        await settle()

    with caplog.at_level(logging.DEBUG, "hive"):
        run(scenario())
    assert events == ["waiting", "cancelled"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_flatten_to_the_request_raises_ConnectionError_when_the_client_leaves() -> None:
    outcome: list[BaseException] = []

    class Forever(Element):
        loader = XMLString(f'<p {NS} t:render="forever" />')

        @renderer
        async def forever(self, request: Any, tag: Tag) -> Any:
            await asyncio.get_running_loop().create_future()

    class Streamed(Resource):
        isLeaf = True

        async def render_GET(self, request: Request) -> object:
            try:
                await flatten(request, Forever(), request.write)
            except ConnectionError as exc:
                outcome.append(exc)
            return NOT_DONE_YET

    async def scenario() -> None:
        harness = Harness(Streamed())
        harness.send(GET)
        await settle()
        harness.connection.connection_lost(None)
        await until(lambda: bool(outcome))

    run(scenario())
    assert isinstance(outcome[0], ConnectionError)


def test_a_renderer_that_raises_before_anything_is_sent_gets_the_500_page(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Element):
        loader = XMLString(f'<p {NS}>text <b t:render="broken" /></p>')

        @renderer
        def broken(self, request: Any, tag: Tag) -> Any:
            raise ValueError("secret <detail>")

    async def scenario() -> None:
        response = Harness(Page(Broken())).get()
        assert response.status == 500
        assert b"secret" not in response.body and b"Traceback" not in response.body
        assert b"text" not in response.body  # nothing of the page

    with caplog.at_level(logging.ERROR, "hive.server"):
        run(scenario())
    assert "secret <detail>" in caplog.text and "Traceback" in caplog.text
    # The template traceback names the tag, with its line in the template.
    assert 'File "<string>", line 1, column 71, in "b"' in caplog.text


def test_the_500_page_shows_the_traceback_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Element):
        loader = XMLString(f'<p {NS} t:render="broken" />')

        @renderer
        def broken(self, request: Any, tag: Tag) -> Any:
            raise ValueError("secret <detail>")

    async def scenario() -> None:
        site = Site(Page(Broken()))
        site.displayTracebacks = True
        response = Harness(site).get()
        assert response.status == 500
        assert b"secret &lt;detail&gt;" in response.body and b"Traceback" in response.body

    with caplog.at_level(logging.ERROR, "hive.server"):
        run(scenario())


def test_a_renderer_can_answer_with_an_http_error() -> None:
    class Missing(Element):
        loader = XMLString(f'<p {NS} t:render="find" />')

        @renderer
        def find(self, request: Any, tag: Tag) -> Any:
            raise Error(404, b"no such thing")

    async def scenario() -> None:
        response = Harness(Page(Missing())).get()
        assert response.status == 404 and b"no such thing" in response.body

    run(scenario())


def test_an_error_after_the_head_cuts_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    class LateFailure(Element):
        loader = XMLString(f'<div {NS}><p>begun</p><p t:render="late" /></div>')

        @renderer
        async def late(self, request: Any, tag: Tag) -> Any:
            await asyncio.sleep(0)
            raise ValueError("secret <detail>")

    async def scenario() -> None:
        harness = Harness(Page(LateFailure()))
        harness.send(GET)
        await until(lambda: harness.transport.aborted)
        data = bytes(harness.transport.data)
        assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b"<p>begun</p>" in data
        assert b"secret" not in data and b"Traceback" not in data
        assert not data.endswith(b"0\r\n\r\n")  # not a complete response

    watches: list[asyncio.Future[None]] = []
    notify = Request.notifyFinish

    def recording(self: Request) -> asyncio.Future[None]:
        watches.append(notify(self))
        return watches[-1]

    with caplog.at_level(logging.ERROR, "hive.server"):
        Request.notifyFinish = recording  # type: ignore[method-assign, assignment]
        try:
            run(scenario())
        finally:
            Request.notifyFinish = notify  # type: ignore[method-assign]
    assert "secret <detail>" in caplog.text and "Traceback" in caplog.text
    # Logged once, by the request: the watch for the client was let go, not left to
    # fail with the error and be reported by asyncio as never retrieved.
    assert watches and all(watch.cancelled() for watch in watches)


def test_the_worker_goes_on_serving_after_a_failed_page() -> None:
    class Sometimes(Element):
        loader = XMLString(f'<p {NS} t:render="maybe" />')
        fail = True

        @renderer
        def maybe(self, request: Any, tag: Tag) -> Any:
            if Sometimes.fail:
                Sometimes.fail = False
                raise ValueError("once")
            return tag("fine")

    async def scenario() -> None:
        harness = Harness(Page(Sometimes()))
        assert harness.get().status == 500
        assert harness.get().body == b"<!DOCTYPE html>\n<p>fine</p>"  # the same connection

    logging.getLogger("hive.server").disabled = True
    try:
        run(scenario())
    finally:
        logging.getLogger("hive.server").disabled = False


def test_renderElement_with_a_request_of_another_kind() -> None:
    """A Twisted-style request object (write/finish/setHeader) is served the same page."""

    class Plain:
        def __init__(self) -> None:
            self.written: list[bytes] = []
            self.responseHeaders = Headers()
            self.finished = False

        def setHeader(self, name: bytes, value: bytes) -> None:
            self.responseHeaders.setRawHeaders(name, [value])

        def write(self, data: bytes) -> None:
            self.written.append(data)

        def finish(self) -> None:
            self.finished = True

        def processingFailed(self, reason: BaseException) -> None:
            raise AssertionError(reason)

    request = Plain()
    page = tags.html(tags.body("hi"))
    assert renderElement(cast(Any, request), page) is NOT_DONE_YET  # not an IRequest
    body = b"<!DOCTYPE html>\n<html><body>hi</body></html>"
    assert request.finished and b"".join(request.written) == body
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    assert request.responseHeaders.getRawHeaders(b"content-length") == [b"%d" % len(body)]
