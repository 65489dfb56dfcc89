"""The protocol suite: every engine, fed whole and byte by byte, gives the same events."""

from __future__ import annotations

import h11
import pytest

from hive.engine import (
    END,
    BodyData,
    Engine,
    Event,
    HeadLimits,
    ProtocolError,
    RequestHead,
    get_engine,
    plan_response,
    usual_framing,
)


@pytest.fixture
def engine_name(engine: str) -> str:
    """The engine's name (``engine`` is what the tests here call an engine object)."""
    return engine


def make(name: str, **limits: int) -> Engine:
    return get_engine(name)(HeadLimits(**limits))


def drive(engine: Engine, data: bytes, *, bytewise: bool = False) -> list[Event]:
    """Feed ``data``; answer each request and start the next cycle, as the connection does."""
    events: list[Event] = []
    chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    answered = 0
    for chunk in chunks:
        new = engine.feed(chunk)
        while new:
            events.extend(new)
            new = []
            heads = [e for e in events if isinstance(e, RequestHead)]
            while answered < events.count(END):
                plan = plan_response(heads[answered], 204, b"No Content", [], None)
                engine.start_response(plan)
                engine.end_response()
                answered += 1
                if plan.keep_alive:
                    new.extend(engine.next_cycle())
    return events


def merge_body(events: list[Event]) -> list[object]:
    """Join consecutive BodyData so that whole and byte-wise feeding compare equal."""
    merged: list[object] = []
    for event in events:
        if isinstance(event, BodyData) and merged and isinstance(merged[-1], bytes):
            merged[-1] += event.data
        elif isinstance(event, BodyData):
            merged.append(event.data)
        else:
            merged.append(event)
    return merged


def both_ways(name: str, data: bytes, **limits: int) -> list[object]:
    whole = merge_body(drive(make(name, **limits), data))
    bytewise = merge_body(drive(make(name, **limits), data, bytewise=True))
    assert whole == bytewise
    return whole


def test_simple_get(engine_name: str) -> None:
    events = both_ways(
        engine_name, b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-A:  v \r\n\r\n"
    )
    assert events == [
        RequestHead(
            b"GET",
            b"/a/b?x=1",
            b"1.1",
            [(b"host", b"example.com"), (b"x-a", b"v")],
            True,
            False,
            0,
        ),
        END,
    ]


def test_post_with_length(engine_name: str) -> None:
    events = both_ways(
        engine_name, b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    )
    assert isinstance(events[0], RequestHead)
    assert events[0].content_length == 5
    assert events[1:] == [b"hello", END]


def test_chunked_body_with_extensions_and_trailers(engine_name: str) -> None:
    raw = (
        b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    events = both_ways(engine_name, raw)
    assert isinstance(events[0], RequestHead)
    assert events[0].content_length is None
    assert events[1:] == [b"hello world", END]


def test_pipelined_requests_come_in_order(engine_name: str) -> None:
    raw = (
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    events = both_ways(engine_name, raw)
    targets = [e.target for e in events if isinstance(e, RequestHead)]
    assert targets == [b"/1", b"/2", b"/3"]
    assert events.count(END) == 3
    assert b"abc" in events


def test_input_held_back_is_told(engine_name: str) -> None:
    """The connection asks, when the client closes its side, whether more is to come."""
    one = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
    alone = make(engine_name)
    alone.feed(one)
    assert not alone.holds_input()
    for later in (one, b"GET /2 HT"):
        engine = make(engine_name)
        events = engine.feed(one + later)
        whole = [e for e in events if isinstance(e, RequestHead)]
        # Either the later request is an event already, or its bytes are held.
        assert len(whole) == 2 or engine.holds_input()


@pytest.mark.parametrize(
    ("raw", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, Close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    ],
)
def test_keep_alive(engine_name: str, raw: bytes, keep_alive: bool) -> None:
    head = both_ways(engine_name, raw)[0]
    assert isinstance(head, RequestHead)
    assert head.keep_alive is keep_alive


def test_expect_continue(engine_name: str) -> None:
    raw = b"PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    engine = make(engine_name)
    events = engine.feed(raw)
    assert len(events) == 1 and isinstance(events[0], RequestHead)
    assert events[0].expect_continue
    assert engine.informational(100, b"Continue").startswith(b"HTTP/1.1 100 Continue\r\n")
    assert merge_body(engine.feed(b"ok")) == [b"ok", END]


def test_http10_body_by_length(engine_name: str) -> None:
    events = both_ways(engine_name, b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
    assert events[1:] == [b"hi", END]


def error_of(name: str, raw: bytes, **limits: int) -> int:
    events = drive(make(name, **limits), raw)
    errors = [e for e in events if isinstance(e, ProtocolError)]
    assert errors, f"no error for {raw!r}: {events}"
    assert events[-1] is errors[0], "events after a protocol error"
    bytewise = [
        e for e in drive(make(name, **limits), raw, bytewise=True) if isinstance(e, ProtocolError)
    ]
    assert bytewise and bytewise[0].status == errors[0].status
    return errors[0].status


BAD_REQUESTS = [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /\r\n\r\n", 400),  # HTTP/0.9: no version
    (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\n: novalue\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n  folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/3.7\r\nHost: a\r\n\r\n", 505),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n", 400),
    (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400),
    (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n", 417),
]


@pytest.mark.parametrize(("raw", "status"), BAD_REQUESTS)
def test_bad_requests(engine_name: str, raw: bytes, status: int) -> None:
    assert error_of(engine_name, raw) == status


CHUNKED = b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "line",
    [
        b"2;a=b",
        b"2;a",
        b"2;a;b=c",
        b"2 ;a=b",  # BWS before ";" (RFC 9112 7.1.1)
        b"2\t; a = b",  # and around "=", after ";"
        b'2;q="a b\\"c;\x80"',  # a quoted-string: spaces, quoted-pair, obs-text
        b"2;!#$%&'*+-.^_`|~=x",  # every token character
        b"00000000000000000002",  # 20 hex digits
    ],
)
def test_chunk_lines_rfc_9112_allows(engine_name: str, line: bytes) -> None:
    raw = CHUNKED + line + b"\r\nhi\r\n0;last\r\n\r\n"
    assert both_ways(engine_name, raw)[1:] == [b"hi", END]


@pytest.mark.parametrize(
    "line",
    [
        b"2 ",  # white space after the size with no extension
        b"2\t",
        b"2;a=b ",  # or at the end of the line
        b"2;",  # ";" with no name
        b"2;=b",
        b"2;a=",
        b"2;a b",
        b"2;a=b c",
        b"2,a",
        b"2;a\x00",  # control bytes in an extension
        b"2;a=\x01",
        b"2;a=\x7f",
        b"2;a\rb",  # a bare CR (RFC 9112 2.2)
        b"2\r",
        b'2;q="\r"',
        b'2;q="a',  # an unterminated quoted-string
        b"2;\x80",  # obs-text is for quoted-strings only
        b"",
        b"x",
        b"000000000000000000002",  # more than 20 hex digits
    ],
)
def test_chunk_lines_rfc_9112_refuses(engine_name: str, line: bytes) -> None:
    assert error_of(engine_name, CHUNKED + line + b"\r\nhi\r\n0\r\n\r\n") == 400


@pytest.mark.parametrize("line", [b"0 ", b"0\t", b"0;a\x00", b"0;a\rb"])
def test_the_last_chunk_line_is_checked_too(engine_name: str, line: bytes) -> None:
    assert error_of(engine_name, CHUNKED + b"2\r\nhi\r\n" + line + b"\r\n\r\n") == 400


def test_a_bad_chunk_line_comes_after_the_good_chunks(engine_name: str) -> None:
    events = drive(make(engine_name), CHUNKED + b"2\r\nhi\r\n2 \r\nho\r\n0\r\n\r\n")
    assert merge_body(events[1:-1]) == [b"hi"]
    assert isinstance(events[-1], ProtocolError) and events[-1].status == 400


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\rHost: a\r\n\r\n",
        b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX\r: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n",
        CHUNKED + b"2\r\nhi\r0\r\n\r\n",  # the CR after chunk data
        CHUNKED + b"0\r\nX: a\rb\r\n\r\n",  # a trailer
        CHUNKED + b"0\r\nX\r: b\r\n\r\n",
    ],
)
def test_a_bare_cr_is_refused_everywhere(engine_name: str, raw: bytes) -> None:
    assert error_of(engine_name, raw) == 400


@pytest.mark.parametrize("target", [b"/a#b", b"/a?x=1#b", b"/#", b"http://h/a#b", b"/a%23b#"])
def test_a_fragment_in_the_target_is_refused(engine_name: str, target: bytes) -> None:
    raw = b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    assert error_of(engine_name, raw) == 400


def test_an_encoded_hash_is_no_fragment(engine_name: str) -> None:
    head = both_ways(engine_name, b"GET /a%23b?c=%23 HTTP/1.1\r\nHost: a\r\n\r\n")[0]
    assert isinstance(head, RequestHead) and head.target == b"/a%23b?c=%23"


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 3, 3\r\n",
        b"Content-Length: 3,3\r\n",
        b"Content-Length: 3 , 3\r\n",
        b"Content-Length: 3\r\nContent-Length: 3\r\n",
        b"content-length: 3\r\nX: y\r\nCONTENT-LENGTH: 3\r\n",
        b"Content-Length: 3, 4\r\n",
        b"Content-Length: 3,\r\n",
    ],
)
def test_one_content_length_with_one_value(engine_name: str, fields: bytes) -> None:
    """RFC 9112 6.3 allows merging equal values or refusing them; hive refuses them."""
    raw = b"POST / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\nabc"
    assert error_of(engine_name, raw) == 400
    bare_lf = raw.replace(b"\r\n", b"\n")
    assert error_of(engine_name, bare_lf) == 400


def test_request_line_limit(engine_name: str) -> None:
    line = b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n"
    assert error_of(engine_name, line + b"Host: a\r\n\r\n", max_request_line=64) == 414
    # Without a line end yet: answered as soon as the limit is passed.
    assert error_of(engine_name, b"GET /" + b"a" * 100, max_request_line=64) == 414
    ok = both_ways(engine_name, line + b"Host: a\r\n\r\n", max_request_line=len(line) - 2)
    assert ok[-1] is END


def test_head_size_limit(engine_name: str) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 2000 + b"\r\n\r\n"
    assert error_of(engine_name, raw, max_head_bytes=1024) == 431
    assert both_ways(engine_name, raw, max_head_bytes=4096)[-1] is END


def test_header_count_limit(engine_name: str) -> None:
    raw = (
        b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(20)) + b"\r\n"
    )
    assert error_of(engine_name, raw, max_header_count=10) == 431
    assert both_ways(engine_name, raw, max_header_count=21)[-1] is END


def test_error_in_second_pipelined_request_comes_after_the_first(engine_name: str) -> None:
    events = drive(make(engine_name), b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nBROKEN\r\n\r\n")
    assert isinstance(events[0], RequestHead) and events[1] is END
    assert isinstance(events[2], ProtocolError) and events[2].status == 400


# -- responses ----------------------------------------------------------------------------


def read_response(data: bytes, method: bytes = b"GET") -> tuple[h11.Response, bytes]:
    """Parse a response with h11's client: the independent check of what an engine wrote."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    response = client.next_event()
    assert isinstance(response, h11.Response)
    body = b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return response, body
        else:
            raise AssertionError(f"unexpected {event!r}")


def respond(engine: Engine, head: RequestHead, length: int | None, chunks: list[bytes]) -> bytes:
    plan = plan_response(head, 200, b"OK", [(b"Content-Type", b"text/plain")], length)
    out = engine.start_response(plan)
    for chunk in chunks:
        out += engine.body(chunk)
    return out + engine.end_response()


def test_fixed_length_response(engine_name: str) -> None:
    engine = make(engine_name)
    head = engine.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")[0]
    assert isinstance(head, RequestHead)
    response, body = read_response(respond(engine, head, 11, [b"hello", b" world"]))
    assert response.status_code == 200
    assert (b"content-length", b"11") in list(response.headers)
    assert body == b"hello world"


def test_chunked_response(engine_name: str) -> None:
    engine = make(engine_name)
    head = engine.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")[0]
    assert isinstance(head, RequestHead)
    raw = respond(engine, head, None, [b"hello", b"", b" world"])
    assert b"Transfer-Encoding: chunked" in raw
    assert raw.endswith(b"0\r\n\r\n")
    assert read_response(raw)[1] == b"hello world"


def test_head_response_has_no_body(engine_name: str) -> None:
    engine = make(engine_name)
    head = engine.feed(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")[0]
    assert isinstance(head, RequestHead)
    plan = plan_response(head, 200, b"OK", [], 100)
    assert not plan.body_allowed
    raw = engine.start_response(plan) + engine.end_response()
    response, body = read_response(raw, b"HEAD")
    assert (b"content-length", b"100") in list(response.headers) and body == b""


def test_http10_response_without_length_closes(engine_name: str) -> None:
    engine = make(engine_name)
    head = engine.feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")[0]
    assert isinstance(head, RequestHead)
    plan = plan_response(head, 200, b"OK", [], None)
    assert not plan.chunked and not plan.keep_alive
    raw = engine.start_response(plan) + engine.body(b"data") + engine.end_response()
    assert raw.endswith(b"\r\n\r\ndata")
    assert b"Transfer-Encoding" not in raw


def test_http10_keep_alive_response_says_so(engine_name: str) -> None:
    engine = make(engine_name)
    head = engine.feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")[0]
    assert isinstance(head, RequestHead)
    plan = plan_response(head, 200, b"OK", [], 2)
    assert plan.keep_alive
    assert b"Connection: keep-alive\r\n" in engine.start_response(plan)


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(engine_name: str, status: int) -> None:
    engine = make(engine_name)
    head = engine.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")[0]
    assert isinstance(head, RequestHead)
    plan = plan_response(head, status, b"X", [], 10)
    assert not plan.body_allowed and plan.content_length is None and plan.keep_alive
    raw = engine.start_response(plan) + engine.end_response()
    assert b"Content-Length" not in raw and b"Transfer-Encoding" not in raw


def test_closing_response_says_connection_close(engine_name: str) -> None:
    engine = make(engine_name)
    head = engine.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")[0]
    assert isinstance(head, RequestHead)
    plan = plan_response(head, 200, b"OK", [], 0, closing=True)
    assert not plan.keep_alive
    assert b"Connection: close\r\n" in engine.start_response(plan)


def test_error_response_after_protocol_error(engine_name: str) -> None:
    engine = make(engine_name)
    events = engine.feed(b"NOT HTTP AT ALL\r\n\r\n")
    assert isinstance(events[-1], ProtocolError)
    fallback = RequestHead(b"GET", b"/", b"1.1", [], False, False, 0)
    plan = plan_response(fallback, 400, b"Bad Request", [], 3, closing=True)
    raw = engine.start_response(plan) + engine.body(b"bad")
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n") and raw.endswith(b"\r\n\r\nbad")


TARGETS = [
    (b"GET http://example.com/a HTTP/1.1\r\nHost: example.com\r\n\r\n", None),
    (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", None),
    (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 400),
    (b"GET example.com/a HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET ftp://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", None),
    (b"GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n", None),
]


@pytest.mark.parametrize(("raw", "status"), TARGETS)
def test_request_target_forms_and_host(engine_name: str, raw: bytes, status: int | None) -> None:
    if status is None:
        assert both_ways(engine_name, raw)[-1] is END
    else:
        assert error_of(engine_name, raw) == status


# -- the usual framing: the short cut's predicate against plan_response ---------------------


@pytest.mark.parametrize("method", [b"GET", b"HEAD", b"POST"])
@pytest.mark.parametrize("version", [b"1.0", b"1.1"])
@pytest.mark.parametrize("status", [100, 101, 199, 200, 201, 204, 206, 301, 304, 404, 500])
@pytest.mark.parametrize("keep_alive", [True, False])
@pytest.mark.parametrize("closing", [True, False])
def test_usual_framing_is_what_plan_response_decides(
    method: bytes, version: bytes, status: int, keep_alive: bool, closing: bool
) -> None:
    """usual_framing says yes exactly when the plan is Content-Length alone, kept alive."""
    head = RequestHead(method, b"/", version, [], keep_alive, False, 0)
    headers = [(b"Content-Type", b"text/plain")]
    plan = plan_response(head, status, b"X", list(headers), 10, closing=closing)
    plain = (
        plan.keep_alive
        and plan.body_allowed
        and not plan.chunked
        and plan.headers == [*headers, (b"Content-Length", b"10")]
    )
    assert usual_framing(head, status, closing) == plain
