"""Request, Site and rendering, through a real Connection in memory."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from hive import http
from hive.error import Error
from hive.iweb import IRequest
from hive.resource import NoResource, Resource
from hive.server import NOT_DONE_YET, Request, Site
from tests.unit.harness import Harness, Held, run, settle


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return b"hello"


class Echo(Resource):
    """Shows what the request looked like."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return repr(
            {
                "method": request.method,
                "uri": request.uri,
                "path": request.path,
                "args": request.args,
                "prepath": request.prepath,
                "postpath": request.postpath,
                "clientproto": request.clientproto,
            }
        ).encode()

    render_POST = render_GET


def tree() -> Resource:
    root = Resource()
    root.putChild(b"hello", Hello())
    root.putChild(b"echo", Echo())
    return root


def test_bytes_render_sets_length_date_and_server() -> None:
    response = Harness(tree()).get("/hello")
    assert response.status == 200
    assert response.body == b"hello"
    assert response.header("Content-Length") == "5"
    assert response.header("Content-Type") == "text/plain"
    assert response.header("Server") == "hive"
    assert (response.header("Date") or "").endswith("GMT")


def test_server_header_can_be_changed_or_dropped() -> None:
    assert Harness(Site(tree(), server_header=b"edge")).get("/hello").header("Server") == "edge"
    assert Harness(Site(tree(), server_header=b"")).get("/hello").header("Server") is None


def test_traversal_fills_prepath_postpath_and_args() -> None:
    seen = eval(Harness(tree()).get("/echo/a%2Fb/c?x=1&x=2&y=").body)
    assert seen["prepath"] == [b"echo"]
    assert seen["postpath"] == [b"a/b", b"c"]
    assert seen["path"] == b"/echo/a%2Fb/c"
    assert seen["uri"] == b"/echo/a%2Fb/c?x=1&x=2&y="
    assert seen["args"] == {b"x": [b"1", b"2"], b"y": [b""]}
    assert seen["clientproto"] == b"HTTP/1.1"


def test_absolute_form_target() -> None:
    seen = eval(Harness(tree()).get("http://example.com/echo/z?q=1").body)
    assert seen["prepath"] == [b"echo"] and seen["postpath"] == [b"z"]
    assert seen["args"] == {b"q": [b"1"]}


def test_missing_child_is_404_with_escaped_page() -> None:
    response = Harness(tree()).get("/<script>")
    assert response.status == 404
    assert b"<script>" not in response.body


def test_trailing_slash_is_an_empty_segment() -> None:
    root = Resource()
    directory = Resource()
    directory.putChild(b"", Hello())
    root.putChild(b"dir", directory)
    assert Harness(root).get("/dir/").body == b"hello"
    assert Harness(root).get("/dir").status == 405  # the bare Resource renders nothing


def test_post_form_urlencoded_replaces_query_args() -> None:
    harness = Harness(tree())
    body = b"x=from+body&z=%21"
    harness.send(
        b"POST /echo?x=q&keep=1 HTTP/1.1\r\nHost: a\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    args = eval(harness.response().body)["args"]
    assert args == {b"x": [b"from body"], b"z": [b"!"], b"keep": [b"1"]}


def test_post_multipart_args_and_content() -> None:
    class Upload(Resource):
        isLeaf = True

        def render_POST(self, request: Request) -> bytes:
            content = request.content.read()
            return b"%s|%s|%d" % (request.args[b"name"][0], request.args[b"file"][0], len(content))

    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="name"\r\n\r\nbee\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n\x00\r\n\xff\r\n--XyZ--\r\n"
    )
    harness = Harness(Upload())
    harness.send(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    assert harness.response().body == b"bee|\x00\r\n\xff|%d" % len(body)


def test_malformed_multipart_is_400_not_500() -> None:
    class Form(Resource):
        isLeaf = True

        def render_POST(self, request: Request) -> bytes:
            return repr(request.args).encode()

    harness = Harness(Form())
    body = b"--XyZ\r\nno end"
    harness.send(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    assert harness.response().status == 400


def test_unsupported_method_is_405_with_allow() -> None:
    response = Harness(tree()).get("/hello", method="PUT")
    assert response.status == 405
    assert response.header("Allow") == "GET, HEAD"


def test_allowed_methods_attribute_is_honoured() -> None:
    class Limited(Resource):
        isLeaf = True
        allowedMethods = (b"GET",)

        def render_GET(self, request: Request) -> bytes:
            return b""

    assert Harness(Limited()).get("/", method="DELETE").header("Allow") == "GET"


def test_head_is_answered_from_get_without_body() -> None:
    harness = Harness(tree())
    response = harness.get("/hello", method="HEAD")
    assert response.status == 200
    assert response.header("Content-Length") == "5"
    assert response.body == b""
    # The connection is still usable: nothing of the body was sent.
    assert harness.get("/hello").body == b"hello"


def test_not_done_yet_streams_chunked() -> None:
    held = Held()
    harness = Harness(held)
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert harness.transport.data == b""
    request = held.requests[0]
    request.write(b"one,")
    request.write(b"two")
    request.finish()
    response = harness.response()
    assert response.header("Transfer-Encoding") == "chunked"
    assert response.body == b"one,two"
    assert request.finished


def test_declared_content_length_is_used_for_streaming() -> None:
    pending: list[Request] = []

    class Later(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> Any:
            request.setHeader(b"content-length", b"6")
            pending.append(request)
            return NOT_DONE_YET

    harness = Harness(Later())
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    pending[0].write(b"abc")
    pending[0].write(b"def")
    pending[0].finish()
    response = harness.response()
    assert response.header("Content-Length") == "6" and response.body == b"abcdef"
    assert response.header("Transfer-Encoding") is None


def test_pipelined_requests_answered_in_order_even_when_first_is_slow() -> None:
    slow = Held()
    root = tree()
    root.putChild(b"slow", slow)
    harness = Harness(root)
    harness.send(
        b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    assert harness.transport.data == b""
    slow.requests[0].write(b"first")
    slow.requests[0].finish()
    bodies = [r.body for r in harness.responses()]
    assert bodies == [b"first", b"hello", b"hello"]


def test_async_render_and_async_get_child() -> None:
    class AsyncLeaf(Resource):
        isLeaf = True

        async def render_GET(self, request: Request) -> bytes:
            await asyncio.sleep(0)
            return b"async " + request.postpath[0]

    class AsyncRoot(Resource):
        async def getChild(self, path: bytes, request: IRequest) -> Resource:
            await asyncio.sleep(0)
            return AsyncLeaf() if path == b"a" else NoResource()

    async def scenario() -> list[Any]:
        harness = Harness(AsyncRoot())
        harness.send(b"GET /a/b HTTP/1.1\r\nHost: a\r\n\r\nGET /zz HTTP/1.1\r\nHost: a\r\n\r\n")
        await settle(10)
        return [(r.status, r.body) for r in harness.responses()]

    first, second = run(scenario())
    assert first == (200, b"async b")
    assert second[0] == 404


def test_async_render_may_return_not_done_yet_and_write_later() -> None:
    class Stream(Resource):
        isLeaf = True

        async def render_GET(self, request: Request) -> Any:
            async def later() -> None:
                for part in (b"a", b"b", b"c"):
                    await asyncio.sleep(0)
                    request.write(part)
                request.finish()

            asyncio.get_running_loop().create_task(later())
            return NOT_DONE_YET

    async def scenario() -> bytes:
        harness = Harness(Stream())
        harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        await settle(10)
        return harness.response().body

    assert run(scenario()) == b"abc"


def test_exception_gives_500_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            raise ValueError("secret <detail>")

    with caplog.at_level(logging.ERROR, "hive.server"):
        harness = Harness(Broken())
        response = harness.get("/")
    assert response.status == 500
    assert b"secret" not in response.body
    assert "secret <detail>" in caplog.text
    # The connection keeps serving.
    assert harness.get("/").status == 500


def test_exception_traceback_shown_escaped_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Resource):
        isLeaf = True

        async def render_GET(self, request: Request) -> bytes:
            raise ValueError("secret <detail>")

    site = Site(Broken())
    site.displayTracebacks = True

    async def scenario() -> Any:
        harness = Harness(site)
        harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        await settle()
        return harness.response()

    with caplog.at_level(logging.ERROR, "hive.server"):
        response = run(scenario())
    assert response.status == 500
    assert b"secret &lt;detail&gt;" in response.body and b"Traceback" in response.body


def test_error_exception_becomes_its_status() -> None:
    class Teapot(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            raise Error(418, b"short and <stout>")

    response = Harness(Teapot()).get("/")
    assert response.status == 418
    assert b"short and &lt;stout&gt;" in response.body


def test_render_returning_str_is_500() -> None:
    class Wrong(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> Any:
            return "text"

    assert Harness(Wrong()).get("/").status == 500


def test_crlf_in_header_is_refused_never_sent() -> None:
    class Inject(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            request.setHeader(b"x-a", b"ok\r\nSet-Cookie: evil=1")
            return b"unreachable"

    response = Harness(Inject()).get("/")
    assert response.status == 500
    assert response.header("Set-Cookie") is None
    assert response.header("X-A") is None


def test_redirect_and_cookies() -> None:
    class Go(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            assert request.getCookie(b"session") == b"abc"
            assert request.received_cookies == {b"session": b"abc", b"theme": b"dark"}
            request.addCookie(b"a", b"1", path=b"/", httpOnly=True, sameSite="lax", max_age=60)
            request.addCookie(b"b", b"2", secure=True)
            request.redirect(b"/elsewhere")
            return b""

    response = Harness(Go()).get("/", {"Cookie": "session=abc; theme=dark"})
    assert response.status == 302
    assert response.header("Location") == "/elsewhere"
    cookies = response.headers.get_all("Set-Cookie") or []
    assert cookies[0].startswith("a=1") and "HttpOnly" in cookies[0] and "Max-Age=60" in cookies[0]
    assert cookies[1] == "b=2; Secure"


def test_set_etag_answers_304_and_412() -> None:
    class Tagged(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            if request.setETag(b'"v1"') is http.CACHED:
                return b""
            return b"body"

        render_PUT = render_GET

    harness = Harness(Tagged())
    fresh = harness.get("/")
    assert fresh.status == 200 and fresh.header("ETag") == '"v1"'
    cached = harness.get("/", {"If-None-Match": 'W/"v0", W/"v1"'})
    assert cached.status == 304 and cached.body == b"" and cached.header("ETag") == '"v1"'
    assert harness.get("/", {"If-None-Match": '"v2"'}).status == 200
    assert harness.get("/", {"If-None-Match": '"v1"'}, method="PUT").status == 412


def test_set_last_modified_answers_304() -> None:
    class Dated(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            if request.setLastModified(1_000_000_000.5) is http.CACHED:
                return b""
            return b"body"

    harness = Harness(Dated())
    fresh = harness.get("/")
    stamp = fresh.header("Last-Modified")
    assert fresh.status == 200 and stamp == "Sun, 09 Sep 2001 01:46:41 GMT"
    assert harness.get("/", {"If-Modified-Since": stamp}).status == 304
    older = "Sun, 09 Sep 2001 01:46:40 GMT"
    assert harness.get("/", {"If-Modified-Since": older}).status == 200
    assert harness.get("/", {"If-Modified-Since": "garbage"}).status == 200


def test_request_addresses_and_urls() -> None:
    seen: dict[str, Any] = {}

    class Where(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            seen["client"] = request.getClientAddress()
            seen["host"] = request.getHost()
            seen["hostname"] = request.getRequestHostname()
            seen["prepath_url"] = request.prePathURL()
            seen["urlpath"] = str(request.URLPath().child(b"x"))
            seen["secure"] = request.isSecure()
            seen["user"] = (request.getUser(), request.getPassword())
            seen["header"] = request.getHeader(b"X-Thing")
            seen["all"] = request.getAllHeaders()
            return b""

    root = Resource()
    root.putChild(b"a b", Where())
    # "dXNlcjpwYTpzcw==" is base64 of "user:pa:ss".
    Harness(root).get("/a%20b", {"Authorization": "Basic dXNlcjpwYTpzcw==", "X-Thing": "1"})
    assert seen["client"].host == "192.0.2.7" and seen["client"].port == 5555
    assert seen["host"].port == 8080
    assert seen["hostname"] == b"example.com"
    assert seen["prepath_url"] == b"http://example.com:8080/a%20b"
    assert seen["urlpath"] == "http://example.com:8080/a%20b/x"
    assert seen["secure"] is False
    assert seen["user"] == (b"user", b"pa:ss")
    assert seen["header"] == b"1"
    assert seen["all"][b"x-thing"] == b"1"


def test_notify_finish_completes_and_fails_on_disconnect() -> None:
    async def scenario() -> tuple[Any, Any]:
        leaf = Held()
        harness = Harness(leaf)
        harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        first = leaf.requests[0].notifyFinish()
        leaf.requests[0].finish()
        harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        second_request = leaf.requests[1]
        second = second_request.notifyFinish()
        harness.connection.connection_lost(None)
        # After the client went away, write and finish are quiet no-ops.
        second_request.write(b"late")
        second_request.finish()
        await settle()
        await first
        return None, second.exception()

    done, lost = run(scenario())
    assert done is None
    assert isinstance(lost, ConnectionError)


def test_finish_twice_is_an_error() -> None:
    held = Held()
    Harness(held).send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    held.requests[0].finish()
    with pytest.raises(RuntimeError):
        held.requests[0].finish()
    with pytest.raises(RuntimeError):
        held.requests[0].write(b"x")


def test_http10_client_gets_close_delimited_stream() -> None:
    held = Held()
    harness = Harness(held)
    harness.send(b"GET / HTTP/1.0\r\n\r\n")
    held.requests[0].write(b"abc")
    held.requests[0].finish()
    assert harness.transport.closed
    response = harness.response()
    assert response.body == b"abc"


def test_access_log_line(tmp_path: Any) -> None:
    from hive._accesslog import AccessLog

    path = tmp_path / "access.log"
    access_log = AccessLog.open(str(path))
    assert access_log is not None
    Harness(Site(tree(), access_log=access_log)).get("/hello?q=1", {"User-Agent": 'ag"ent'})
    access_log.flush()
    line = path.read_text()
    assert line.startswith("192.0.2.7 - - [")
    assert '"GET /hello?q=1 HTTP/1.1" 200 5 "-" "ag\\"ent"' in line
    access_log.close()


# -- a render that returns a future -------------------------------------------------------------


class FutureResource(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.futures: list[asyncio.Future[Any]] = []

    def render_GET(self, request: Request) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


@pytest.mark.parametrize(
    ("outcome", "status"),
    [("bytes", 200), ("error", 500), ("cancel", 500), ("bad", 500), ("not done", None)],
)
def test_a_future_from_render_is_answered_when_done(outcome: str, status: int | None) -> None:
    async def scenario() -> None:
        resource = FutureResource()
        h = Harness(resource)
        h.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await settle()
        assert not h.transport.data
        (future,) = resource.futures
        if outcome == "bytes":
            future.set_result(b"later")
        elif outcome == "error":
            future.set_exception(ValueError("boom"))
        elif outcome == "cancel":
            future.cancel()
        elif outcome == "bad":
            future.set_result(12)
        else:
            future.set_result(NOT_DONE_YET)
        await settle()
        if status is None:
            assert not h.transport.data
        else:
            response = h.response()
            assert response.status == status
            if status == 200:
                assert response.body == b"later"

    run(scenario())
