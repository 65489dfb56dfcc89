"""The connection's policy: limits, deadlines, keep-alive, pipelining and backpressure."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hive._clock import Clock
from hive.engine import ENGINES, HeadLimits
from hive.resource import Resource
from hive.server import NOT_DONE_YET, Request, Site
from hive.worker.connection import HALF_CLOSE_GRACE, ConnectionLimits
from tests.unit.harness import Harness, Held, run


class Body(Resource):
    """Answers with the size of the body it got."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return b"got %d" % len(request.content.read())

    render_POST = render_PUT = render_GET


def test_keep_alive_serves_many_requests(engine: str) -> None:
    harness = Harness(Body(), engine=engine)
    for _ in range(3):
        assert harness.get("/").body == b"got 0"
    assert not harness.transport.closed
    assert harness.connection.requests == 3


def test_connection_close_is_honoured(engine: str) -> None:
    harness = Harness(Body(), engine=engine)
    response = harness.get("/", {"Connection": "close"})
    assert response.header("Connection") == "close"
    assert harness.transport.closed


def test_byte_by_byte_request(engine: str) -> None:
    harness = Harness(Body(), engine=engine)
    raw = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
    for i in range(len(raw)):
        harness.send(raw[i : i + 1])
    assert harness.response().body == b"got 4"


def test_chunked_request_body(engine: str) -> None:
    harness = Harness(Body(), engine=engine)
    harness.send(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    )
    assert harness.response().body == b"got 7"


def test_large_body_spools_to_a_file(engine: str) -> None:
    seen: list[Any] = []

    class Spy(Resource):
        isLeaf = True

        def render_POST(self, request: Request) -> bytes:
            seen.append(request.content)
            return b"got %d" % len(request.content.read())

    limits = ConnectionLimits(spool_threshold=1024)
    harness = Harness(Spy(), engine=engine, limits=limits)
    body = b"x" * 5000
    harness.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + body)
    assert harness.response().body == b"got 5000"
    assert seen[0]._rolled  # SpooledTemporaryFile moved to disk


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
def test_malformed_request_gets_400_and_close(engine: str, raw: bytes) -> None:
    harness = Harness(Body(), engine=engine)
    harness.send(raw)
    response = harness.response()
    assert response.status == 400
    assert response.header("Connection") == "close"
    assert harness.transport.closed


def test_error_page_does_not_echo_input(engine: str) -> None:
    harness = Harness(Body(), engine=engine)
    harness.send(b"<script>alert(1)</script> / HTTP/1.1\r\n\r\n")
    response = harness.response()
    assert response.status == 400 and b"script" not in response.body


def test_long_request_line_gets_414(engine: str) -> None:
    harness = Harness(Body(), engine=engine, head_limits=HeadLimits(max_request_line=100))
    harness.send(b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert harness.response().status == 414


def test_large_header_block_gets_431(engine: str) -> None:
    harness = Harness(Body(), engine=engine, head_limits=HeadLimits(max_head_bytes=1000))
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 2000 + b"\r\n\r\n")
    assert harness.response().status == 431


def test_too_many_headers_gets_431(engine: str) -> None:
    harness = Harness(Body(), engine=engine, head_limits=HeadLimits(max_header_count=5))
    headers = b"".join(b"X-%d: v\r\n" % i for i in range(10))
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n" + headers + b"\r\n")
    assert harness.response().status == 431


def test_body_too_large_by_length_gets_413_before_reading(engine: str) -> None:
    harness = Harness(Body(), engine=engine, limits=ConnectionLimits(max_body_size=10))
    harness.send(b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
    # No 100 Continue: the client is told straight away not to send the body.
    assert bytes(harness.transport.data).startswith(b"HTTP/1.1 413 ")
    assert harness.response().status == 413
    assert harness.transport.closed


def test_chunked_body_too_large_gets_413(engine: str) -> None:
    harness = Harness(Body(), engine=engine, limits=ConnectionLimits(max_body_size=10))
    harness.send(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    harness.send(b"8\r\n12345678\r\n")
    assert harness.transport.data == b""
    harness.send(b"8\r\n12345678\r\n")
    assert harness.response().status == 413


def test_expect_continue_is_answered_then_the_request(engine: str) -> None:
    harness = Harness(Body(), engine=engine)
    harness.send(b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert bytes(harness.transport.data) == b"HTTP/1.1 100 Continue\r\n\r\n"
    harness._read = len(harness.transport.data)
    harness.send(b"abc")
    assert harness.response().body == b"got 3"


def test_no_continue_when_the_body_came_with_the_head(engine: str) -> None:
    harness = Harness(Body(), engine=engine)
    harness.send(
        b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc"
    )
    assert not bytes(harness.transport.data).startswith(b"HTTP/1.1 100")
    assert harness.response().body == b"got 3"


def test_idle_connection_closes_after_keep_alive_timeout(engine: str) -> None:
    limits = ConnectionLimits(keep_alive_timeout=5)
    harness = Harness(Body(), engine=engine, limits=limits, now=100.0)
    harness.connection.check_deadlines(104.9)
    assert not harness.transport.closed
    harness.connection.check_deadlines(105.0)
    assert harness.transport.closed and harness.transport.data == b""


def test_keep_alive_timeout_restarts_after_each_response(engine: str) -> None:
    limits = ConnectionLimits(keep_alive_timeout=5)
    harness = Harness(Body(), engine=engine, limits=limits, now=0.0)
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=4.0)
    assert harness.response().status == 200
    harness.connection.check_deadlines(6.0)
    assert not harness.transport.closed
    harness.connection.check_deadlines(9.5)
    assert harness.transport.closed


def test_slow_head_is_cut_off_with_408(engine: str) -> None:
    limits = ConnectionLimits(head_timeout=10)
    harness = Harness(Body(), engine=engine, limits=limits)
    # A client dripping one byte a second never finishes within the deadline.
    raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"z" * 100
    for second, byte in enumerate(raw[:12]):
        harness.send(bytes([byte]), now=float(second))
        harness.connection.check_deadlines(float(second))
    assert harness.response().status == 408
    assert harness.transport.closed


def test_slow_body_is_cut_off_with_408(engine: str) -> None:
    limits = ConnectionLimits(body_timeout=5)
    harness = Harness(Body(), engine=engine, limits=limits)
    harness.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab", now=0.0)
    harness.send(b"cd", now=4.0)
    harness.connection.check_deadlines(8.0)
    assert not harness.transport.closed
    harness.connection.check_deadlines(9.0)
    assert harness.response().status == 408


def test_no_deadline_while_the_application_works(engine: str) -> None:
    held = Held()
    harness = Harness(held, engine=engine, limits=ConnectionLimits(keep_alive_timeout=1))
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    harness.connection.check_deadlines(1000.0)
    assert not harness.transport.closed
    held.requests[0].finish()
    assert harness.response().status == 200


def test_client_that_does_not_read_pauses_the_response(engine: str) -> None:
    paused: list[str] = []

    class Producer:
        def pauseProducing(self) -> None:
            paused.append("pause")

        def resumeProducing(self) -> None:
            paused.append("resume")

        def stopProducing(self) -> None:
            paused.append("stop")

    held = Held()
    harness = Harness(held, engine=engine, limits=ConnectionLimits(send_timeout=30))
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    request = held.requests[0]
    request.registerProducer(Producer(), True)
    harness.connection.pause_writing(now=10.0)
    assert paused == ["pause"]
    harness.connection.resume_writing()
    assert paused == ["pause", "resume"]
    # A client that never reads again is cut off after send_timeout.
    harness.connection.pause_writing(now=20.0)
    harness.connection.check_deadlines(49.0)
    assert not harness.transport.aborted
    harness.connection.check_deadlines(50.0)
    assert harness.transport.aborted


def test_pipelined_flood_stops_reading(engine: str) -> None:
    held = Held()
    harness = Harness(held, engine=engine, limits=ConnectionLimits(max_pipeline_bytes=100))
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert harness.transport.reading
    for _ in range(10):
        harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert not harness.transport.reading
    held.requests[0].finish()
    assert harness.transport.reading


class Paths(Resource):
    """Answers with its path; /held/... is kept open for the test (NOT_DONE_YET)."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Request] = []

    def render_GET(self, request: Request) -> Any:
        if request.path.startswith(b"/held"):
            self.held.append(request)
            return NOT_DONE_YET
        return b"path " + request.path


def _counted(harness: Harness) -> list[int]:
    """The size of each write the connection makes from now on."""
    sizes: list[int] = []
    write = harness.transport.write

    def counting(data: bytes) -> None:
        sizes.append(len(data))
        write(data)

    harness.transport.write = counting  # type: ignore[method-assign]
    return sizes


def _without_dates(data: bytes | bytearray) -> bytes:
    return re.sub(rb"\r\nDate: [^\r]*", b"", data)


def test_pipelined_responses_go_out_in_one_write(engine: str) -> None:
    """Sixteen pipelined requests answered on the spot: one write (h11, which hands over
    one request at a time: the first, then the rest gathered), the same bytes as
    answering them one read at a time."""
    batch = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(16))
    pipelined = Harness(Paths(), engine=engine)
    sizes = _counted(pipelined)
    pipelined.send(batch)
    assert len(sizes) == (2 if engine == "h11" else 1)
    assert sum(sizes) == len(pipelined.transport.data)
    one_by_one = Harness(Paths(), engine=engine)
    for i in range(16):
        one_by_one.send(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
    assert _without_dates(pipelined.transport.data) == _without_dates(one_by_one.transport.data)
    assert [r.body for r in pipelined.responses()] == [b"path /%d" % i for i in range(16)]


def test_gathered_responses_are_written_before_a_close(engine: str) -> None:
    harness = Harness(Paths(), engine=engine)
    harness.send(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    assert harness.transport.closed and not harness.transport.aborted
    assert [r.body for r in harness.responses()] == [b"path /1", b"path /2", b"path /3"]
    harness = Harness(Paths(), engine=engine)
    harness.send(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nBAD\r\n\r\n")
    assert harness.transport.closed
    assert [r.status for r in harness.responses()] == [200, 200, 400]


def test_a_held_request_in_a_pipeline_keeps_the_order(engine: str) -> None:
    resource = Paths()
    harness = Harness(resource, engine=engine)
    sizes = _counted(harness)
    harness.send(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /held HTTP/1.1\r\nHost: a\r\n\r\nGET /4 HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    # /1 and /2 are out (the held one stops the pipeline until it is answered).
    assert [r.body for r in harness.responses()] == [b"path /1", b"path /2"]
    assert len(sizes) == (2 if engine == "h11" else 1)
    (held,) = resource.held
    held.write(b"held ")
    held.write(b"answer")
    held.finish()
    assert [r.body for r in harness.responses()] == [b"held answer", b"path /4"]


def test_half_close_after_the_answer_closes_at_once(engine: str) -> None:
    harness = Harness(Body(), engine=engine)
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert harness.connection.eof_received(0.0) is False  # already answered, nothing pending
    assert harness.transport.closed and not harness.transport.aborted
    assert harness.response().status == 200


def test_half_closed_client_gets_an_answer_given_within_the_grace(engine: str) -> None:
    """An HTTP/1.0-style client sends its request, shuts down its side and reads."""
    held = Held()
    harness = Harness(held, engine=engine)
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert harness.connection.eof_received(0.0) is True
    assert harness.connection.deadline == HALF_CLOSE_GRACE
    harness.now = HALF_CLOSE_GRACE / 2
    harness.connection.check_deadlines(harness.now)
    held.requests[0].finish()
    response = harness.response()
    assert response.status == 200 and response.header("Connection") == "close"
    assert harness.transport.closed


def test_half_closed_pipeline_is_answered_within_the_grace(engine: str) -> None:
    # The h11 engine holds a pipelined request back until the first is answered: the
    # connection asks it (holds_input) before deciding the client sent nothing more.
    held = Held()
    harness = Harness(held, engine=engine)
    harness.send(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert harness.connection.eof_received(0.0) is True
    held.requests[0].finish()
    assert len(held.requests) == 2 and not harness.transport.closed
    held.requests[1].finish()
    assert [r.status for r in harness.responses()] == [200, 200]
    assert harness.transport.closed


class Recorder:
    def __init__(self) -> None:
        self.finished: list[tuple[bytes, int]] = []

    def request_started(self) -> None:
        pass

    def request_finished(self, method: bytes, code: int, started_at: float) -> None:
        self.finished.append((method, code))


def test_long_poll_is_told_when_the_client_goes_away(engine: str) -> None:
    """The bug of issue 16: a FIN during a NOT_DONE_YET answer that wrote nothing."""

    async def scenario() -> None:
        held = Held()
        site = Site(held)
        site.stats = stats = Recorder()
        harness = Harness(site, engine=engine)
        harness.send(b"GET /poll HTTP/1.1\r\nHost: a\r\n\r\n")
        request = held.requests[0]
        finished = request.notifyFinish()
        stopped: list[bool] = []

        class Producer:
            def pauseProducing(self) -> None: ...

            def resumeProducing(self) -> None: ...

            def stopProducing(self) -> None:
                stopped.append(True)

        request.registerProducer(Producer(), True)
        assert harness.connection.eof_received(10.0) is True
        harness.connection.check_deadlines(10.0 + HALF_CLOSE_GRACE - 0.01)
        assert not finished.done()
        harness.connection.check_deadlines(10.0 + HALF_CLOSE_GRACE)
        assert finished.done() and isinstance(finished.exception(), ConnectionError)
        assert stopped == [True]
        assert stats.finished == [(b"GET", 499)]
        assert harness.transport.closed and harness.transport.data == b""
        request.write(b"too late")  # quiet no-ops after the client went away
        request.finish()
        assert harness.transport.data == b""

    run(scenario())


def test_stream_is_abandoned_at_the_clients_fin(engine: str) -> None:
    async def scenario() -> None:
        held = Held()
        site = Site(held)
        site.stats = stats = Recorder()
        harness = Harness(site, engine=engine)
        harness.send(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
        request = held.requests[0]
        finished = request.notifyFinish()
        request.write(b"event 1\n")
        assert harness.connection.eof_received(0.0) is False
        assert finished.done() and isinstance(finished.exception(), ConnectionError)
        assert stats.finished == [(b"GET", 499)]
        # What was written is flushed (close, not abort).
        assert harness.transport.closed and not harness.transport.aborted
        assert b"event 1" in harness.transport.data

    run(scenario())


def test_drain_closes_idle_after_a_grace_and_finishes_busy(engine: str) -> None:
    idle = Harness(Body(), engine=engine, now=10.0)
    idle.connection.drain(10.0)
    idle.connection.check_deadlines(10.5)
    assert not idle.transport.closed
    idle.connection.check_deadlines(11.0)
    assert idle.transport.closed
    held = Held()
    busy = Harness(held, engine=engine)
    busy.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    busy.connection.drain(0.0)
    busy.connection.check_deadlines(100.0)
    assert not busy.transport.closed
    held.requests[0].finish()
    assert busy.response().header("Connection") == "close"
    assert busy.transport.closed


def test_request_on_an_idle_connection_during_drain_is_answered(engine: str) -> None:
    harness = Harness(Body(), engine=engine)
    harness.connection.drain(0.0)
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.5)
    response = harness.response()
    assert response.status == 200 and response.header("Connection") == "close"
    assert harness.transport.closed


def test_response_longer_than_declared_is_cut(engine: str) -> None:
    held = Held()
    harness = Harness(held, engine=engine)
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    request = held.requests[0]
    request.setHeader(b"content-length", b"3")
    request.write(b"abcdef")
    request.finish()
    assert harness.response().body == b"abc"
    assert not harness.transport.closed


def test_response_shorter_than_declared_closes(engine: str) -> None:
    held = Held()
    harness = Harness(held, engine=engine)
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    request = held.requests[0]
    request.setHeader(b"content-length", b"10")
    request.write(b"abc")
    request.finish()
    assert harness.transport.closed


def test_error_after_headers_aborts_the_connection(engine: str) -> None:
    class Fails(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            request.write(b"partial")
            raise RuntimeError("boom")

    harness = Harness(Fails(), engine=engine)
    harness.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert harness.transport.aborted


VALID = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    b"PUT /y HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    b"GET /z HTTP/1.0\r\n\r\n",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from(VALID),
    noise=st.binary(max_size=64),
    cut=st.integers(min_value=0, max_value=200),
    engine_name=st.sampled_from(ENGINES),
)
def test_any_bytes_give_responses_or_a_clean_close(
    prefix: bytes, noise: bytes, cut: int, engine_name: str
) -> None:
    """Valid requests with noise spliced in: never an exception, only answers."""
    data = prefix[:cut] + noise + prefix[cut:]
    harness = Harness(Body(), engine=engine_name)
    for i in range(0, len(data), 7):
        harness.send(data[i : i + 7])
    harness.connection.check_deadlines(1e9)
    # Whatever came, every answer parses and is not a server error, and once every
    # deadline has passed the connection is closed: nothing hangs.
    for response in harness.responses():
        # 501 (an unknown transfer-coding) and 505 (a version) are answers, not failures.
        assert response.status < 500 or response.status in (501, 505)
    assert harness.transport.closed


# -- the usual response's short way (Connection.respond_whole) -----------------------------


class Plain(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        request.setHeader(b"x-custom", b"value")
        return b"plain body"


class WithCookie(Plain):
    def render_GET(self, request: Request) -> bytes:
        request.addCookie(b"k", b"v")
        return super().render_GET(request)


def test_usual_response_has_the_bytes_the_planned_way_gives(engine: str) -> None:
    """The short way (no cookies) and the planned way (a cookie) differ only by the cookie."""
    clock = Clock(lambda: 1_700_000_000.0)
    fast = Harness(Site(Plain(), clock=clock), engine=engine)
    slow = Harness(Site(WithCookie(), clock=clock), engine=engine)
    fast.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    slow.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    cookie = b"Set-Cookie: k=v\r\n"
    assert cookie in slow.transport.data
    assert bytes(fast.transport.data) == bytes(slow.transport.data).replace(cookie, b"")
    assert fast.transport.data.startswith(b"HTTP/1.1 200 OK\r\nServer: hive\r\nDate: ")
    assert fast.transport.data.endswith(b"Content-Length: 10\r\n\r\nplain body")


@pytest.mark.parametrize(
    ("request_bytes", "expect"),
    [
        (b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "no body"),
        (b"GET / HTTP/1.0\r\n\r\n", "close"),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "keep-alive"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "close"),
    ],
)
def test_requests_the_usual_framing_does_not_fit_are_planned(
    engine: str, request_bytes: bytes, expect: str
) -> None:
    harness = Harness(Plain(), engine=engine)
    harness.send(request_bytes)
    method = "HEAD" if request_bytes.startswith(b"HEAD") else "GET"
    response = harness.response(method)
    assert response.header("content-length") == "10"
    if expect == "no body":
        assert response.body == b"" and not harness.transport.closed
    elif expect == "close":
        assert response.body == b"plain body" and harness.transport.closed
    else:
        assert response.header("connection") == "keep-alive"
        assert not harness.transport.closed


def test_draining_connection_gets_connection_close_on_the_usual_response(engine: str) -> None:
    harness = Harness(Plain(), engine=engine)
    harness.connection.drain(0.0)
    response = harness.get("/")
    assert response.header("connection") == "close"
    assert harness.transport.closed


def test_an_upgrade_the_resource_does_not_take_leaves_http_going(engine: str) -> None:
    """curl sends Upgrade: h2c on plain HTTP; a pipelined request after it is still served."""
    held = Held()
    harness = Harness(held, engine=engine)
    harness.send(b"GET /1 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
    harness.send(b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    held.requests[0].finish()
    assert [r.uri for r in held.requests] == [b"/1", b"/2"]
    held.requests[1].finish()
    assert [r.status for r in harness.responses()] == [200, 200]
