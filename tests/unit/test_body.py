"""Request bodies streamed to a resource while they arrive (hive.worker.body), in memory."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from hive.engine import RequestHead
from hive.iweb import IRequest
from hive.resource import Resource
from hive.server import NOT_DONE_YET, Request
from hive.worker.body import HIGH_WATER, LOW_WATER, RequestBody
from hive.worker.connection import DISCARD_LIMIT, ConnectionLimits
from tests.unit.harness import Harness, run, settle


class Upload(Resource):
    """Streams the body: notes when it was rendered, answers once it has read it all."""

    isLeaf = True
    streamsRequestBody = True

    def __init__(self, read: bool = True) -> None:
        super().__init__()
        self.read = read
        self.requests: list[Request] = []
        self.pieces: list[bytes] = []
        self.errors: list[BaseException] = []

    def render_POST(self, request: Request) -> Any:
        self.requests.append(request)
        if not self.read:
            return b"not read"
        return self._consume(request)

    async def _consume(self, request: Request) -> bytes:
        body = request.content
        assert isinstance(body, RequestBody)
        try:
            async for piece in body.chunks():
                self.pieces.append(piece)
        except ConnectionError as exc:
            self.errors.append(exc)
            raise
        return b"got %d" % sum(map(len, self.pieces))


class Buffered(Resource):
    isLeaf = True

    def render_POST(self, request: Request) -> bytes:
        return b"whole %d" % len(request.content.read())


def post(length: int, *, expect: bool = False, target: str = "/") -> bytes:
    head = f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
    if expect:
        head += "Expect: 100-continue\r\n"
    return head.encode() + b"\r\n"


def test_resource_renders_before_the_body_and_reads_it_as_it_comes(engine: str) -> None:
    async def main() -> None:
        upload = Upload()
        h = Harness(upload, engine=engine)
        h.send(post(10))
        await settle()
        assert len(upload.requests) == 1 and upload.pieces == []
        h.send(b"hello")
        await settle()
        assert upload.pieces == [b"hello"]
        h.send(b"world")
        await settle()
        assert h.response("POST").body == b"got 10"
        # The connection goes on with the next request.
        h.send(post(2) + b"ok")
        await settle()
        assert h.response("POST").body == b"got 12"

    run(main())


def test_a_resource_found_by_getchild_gets_the_body_whole(engine: str) -> None:
    class Dynamic(Resource):
        def getChild(self, path: bytes, request: IRequest) -> Any:
            return Upload()

    async def main() -> None:
        root = Resource()
        root.putChild(b"fixed", Upload())
        root.putChild(b"dynamic", Dynamic())
        root.putChild(b"plain", Buffered())
        h = Harness(root, engine=engine)
        assert h.site.body_stream(_head("/fixed/x"), h.connection) is not None
        assert h.site.body_stream(_head("/dynamic/x"), h.connection) is None
        assert h.site.body_stream(_head("/plain"), h.connection) is None
        h.send(post(3, target="/plain") + b"abc")
        assert h.response("POST").body == b"whole 3"

    run(main())


def _head(target: str) -> RequestHead:
    return RequestHead(b"POST", target.encode(), b"1.1", [(b"host", b"x")], True, False, 3)


def test_reading_stops_past_the_high_water_mark_and_resumes(engine: str) -> None:
    async def main() -> None:
        upload = Upload(read=False)
        upload.render_POST = lambda request: upload.requests.append(request) or NOT_DONE_YET  # type: ignore[func-returns-value, method-assign]
        h = Harness(upload, engine=engine)
        size = HIGH_WATER * 2
        h.send(post(size))
        h.send(b"x" * (HIGH_WATER + 1))
        assert not h.transport.reading
        body = upload.requests[0].content
        assert isinstance(body, RequestBody)
        await body.aread(HIGH_WATER + 1 - LOW_WATER)
        assert h.transport.reading
        h.send(b"y" * (size - HIGH_WATER - 1))
        rest = await body.aread()
        assert len(rest) == size - HIGH_WATER - 1 + LOW_WATER
        upload.requests[0].write(b"done")
        upload.requests[0].finish()
        assert h.response("POST").body == b"done"

    run(main())


def test_continue_is_sent_on_the_first_read_only(engine: str) -> None:
    async def main() -> None:
        upload = Upload()
        h = Harness(upload, engine=engine)
        h.send(post(4, expect=True))
        await settle()
        # The resource is waiting to read: now the client is asked for the body.
        assert bytes(h.transport.data).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        h._read = len(b"HTTP/1.1 100 Continue\r\n\r\n")
        h.send(b"data")
        await settle()
        assert h.response("POST").body == b"got 4"

    run(main())


def test_unread_body_awaited_with_continue_closes_without_asking(engine: str) -> None:
    async def main() -> None:
        h = Harness(Upload(read=False), engine=engine)
        h.send(post(4, expect=True))
        await settle()
        assert b"100 Continue" not in h.transport.data
        response = h.response("POST")
        assert response.body == b"not read"
        assert response.header("connection") == "close"
        assert h.transport.closed

    run(main())


def test_short_unread_rest_is_dropped_and_the_connection_kept(engine: str) -> None:
    async def main() -> None:
        h = Harness(Upload(read=False), engine=engine)
        h.send(post(1000) + b"a" * 10)
        assert h.response("POST").body == b"not read"
        assert not h.transport.closed
        # The rest of the body, then the next request in the same feed.
        h.send(b"b" * 990 + post(1) + b"z")
        assert h.response("POST").body == b"not read"
        assert not h.transport.closed

    run(main())


def test_long_unread_rest_closes_the_connection(engine: str) -> None:
    async def main() -> None:
        h = Harness(Upload(read=False), engine=engine)
        h.send(post(DISCARD_LIMIT + 100) + b"a" * 10)
        response = h.response("POST")
        assert response.header("connection") == "close"
        assert h.transport.closed

    run(main())


def test_client_gone_mid_body_fails_the_read(engine: str) -> None:
    async def main() -> None:
        upload = Upload()
        h = Harness(upload, engine=engine)
        h.send(post(10) + b"abc")
        await settle()
        h.connection.connection_lost(None)
        await settle()
        assert upload.pieces == [b"abc"]
        assert len(upload.errors) == 1 and isinstance(upload.errors[0], ConnectionError)

    run(main())


def test_half_close_mid_body_fails_the_read(engine: str) -> None:
    async def main() -> None:
        upload = Upload()
        h = Harness(upload, engine=engine)
        h.send(post(10) + b"abc")
        await settle()
        h.connection.eof_received(0.0)
        await settle()
        assert len(upload.errors) == 1

    run(main())


def test_stalled_body_is_cut_off_after_the_body_timeout(engine: str) -> None:
    async def main() -> None:
        upload = Upload()
        limits = ConnectionLimits(body_timeout=5)
        h = Harness(upload, engine=engine, limits=limits)
        h.send(post(10) + b"abc", now=0)
        h.send(b"de", now=3)
        h.connection.check_deadlines(7.5)
        assert not h.transport.closed
        h.connection.check_deadlines(8.5)
        assert h.transport.aborted
        await settle()
        assert upload.errors

    run(main())


def test_no_body_deadline_while_the_reader_is_behind(engine: str) -> None:
    async def main() -> None:
        upload = Upload(read=False)
        upload.render_POST = lambda request: upload.requests.append(request) or NOT_DONE_YET  # type: ignore[func-returns-value, method-assign]
        h = Harness(upload, engine=engine, limits=ConnectionLimits(body_timeout=5))
        h.send(post(HIGH_WATER * 2) + b"x" * (HIGH_WATER + 1), now=0)
        assert not h.transport.reading
        h.connection.check_deadlines(100)
        assert not h.transport.closed

    run(main())


def test_body_larger_than_the_limit_is_refused_before_rendering(engine: str) -> None:
    async def main() -> None:
        upload = Upload()
        h = Harness(upload, engine=engine, limits=ConnectionLimits(max_body_size=100))
        h.send(post(101))
        assert h.response("POST").status == 413
        assert upload.requests == []

    run(main())


def test_blocking_reads_from_a_thread(engine: str) -> None:
    class Threaded(Resource):
        isLeaf = True
        streamsRequestBody = True

        def render_POST(self, request: Request) -> Any:
            loop = asyncio.get_running_loop()
            body = request.content

            def work() -> None:
                lines = [body.readline(), body.read(3), body.read1(100)]  # type: ignore[attr-defined]
                lines += list(body)
                loop.call_soon_threadsafe(finish, b"|".join(lines))

            def finish(data: bytes) -> None:
                request.write(data)
                request.finish()

            threading.Thread(target=work, daemon=True).start()
            return NOT_DONE_YET

    async def main() -> None:
        h = Harness(Threaded(), engine=engine)
        payload = b"first\nabcdefg\nlast\nend"
        h.send(post(len(payload)))
        for i in range(0, len(payload), 4):
            await asyncio.sleep(0.01)
            h.send(payload[i : i + 4])
        for _ in range(200):
            if h.transport.data:
                break
            await asyncio.sleep(0.01)
        body = h.response("POST").body
        parts = body.split(b"|")
        assert parts[0] == b"first\n" and parts[1] == b"abc"
        assert b"".join(parts) == payload

    run(main())


def test_blocking_read_on_the_loop_is_an_error_not_a_hang() -> None:
    class Blocking(Resource):
        isLeaf = True
        streamsRequestBody = True

        def render_POST(self, request: Request) -> bytes:
            return request.content.read()

    async def main() -> None:
        h = Harness(Blocking())
        h.send(post(10) + b"abc")
        assert h.response("POST").status == 500

    run(main())


def test_aread1_gives_what_has_arrived_and_ends_with_empty_bytes(engine: str) -> None:
    async def main() -> None:
        upload = Upload(read=False)
        upload.render_POST = lambda request: upload.requests.append(request) or NOT_DONE_YET  # type: ignore[func-returns-value, method-assign]
        h = Harness(upload, engine=engine)
        h.send(post(10, expect=True))
        body = upload.requests[0].content
        assert isinstance(body, RequestBody)
        reading = asyncio.ensure_future(body.aread1())
        await settle()
        assert not reading.done()  # nothing has arrived: it waits
        assert b"100 Continue" in h.transport.data  # and the client is asked for the body
        h.send(b"abc")
        assert await reading == b"abc"
        h.send(b"defghij")
        assert await body.aread1(4) == b"defg"
        assert await body.aread1() == b"hij"
        assert await body.aread1() == b""

    run(main())
