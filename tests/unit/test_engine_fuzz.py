"""Property tests: every engine survives any bytes, and the engines agree with each other.

Both engines must give the same events, or the same error status, for the same bytes, and
each must answer the same whatever the split of the bytes into feeds
(`test_split_does_not_matter`).

The limits are the defaults here (much larger than the inputs), except in the split test.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hive.engine import (
    END,
    ENGINES,
    BodyData,
    Event,
    HeadLimits,
    ProtocolError,
    RequestHead,
    get_engine,
    plan_response,
)

fuzz = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(name: str, data: bytes, cuts: list[int], limits: HeadLimits | None = None) -> list[Event]:
    """Feed ``data`` split at ``cuts``, answering each request as the connection does.

    A request that does not keep the connection alive is the last one.
    """
    engine = get_engine(name)(limits or HeadLimits())
    bounds = [0, *sorted({cut for cut in cuts if 0 < cut < len(data)}), len(data)]
    heads: list[RequestHead] = []
    events: list[Event] = []
    for start, stop in itertools.pairwise(bounds):
        queue = engine.feed(data[start:stop])
        while queue:
            event = queue.pop(0)
            events.append(event)
            if isinstance(event, RequestHead):
                heads.append(event)
            elif isinstance(event, ProtocolError):
                return events
            elif event is END:
                plan = plan_response(heads[-1], 404, b"Not Found", [], 0)
                engine.start_response(plan)
                engine.end_response()
                if not plan.keep_alive:
                    return events
                queue.extend(engine.next_cycle())
    return events


def outcome(events: list[Event]) -> list[object]:
    """Events with bodies joined and errors reduced to their status."""
    merged: list[object] = []
    for event in events:
        if isinstance(event, BodyData):
            if merged and isinstance(merged[-1], bytes):
                merged[-1] += event.data
            else:
                merged.append(event.data)
        elif isinstance(event, ProtocolError):
            merged.append(("error", event.status))
        else:
            merged.append(event)
    return merged


def check_shape(events: list[Event]) -> None:
    """Heads, bodies and ends come in order; an error comes last and is a 4xx or 5xx."""
    in_message = False
    for index, event in enumerate(events):
        if isinstance(event, ProtocolError):
            assert index == len(events) - 1, events
            assert 400 <= event.status < 600, event
        elif isinstance(event, RequestHead):
            assert not in_message, events
            in_message = True
        elif isinstance(event, BodyData):
            assert in_message and event.data, events
        else:
            assert event is END and in_message, events
            in_message = False


# -- inputs -------------------------------------------------------------------------------

TOKEN = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~",
    min_size=1,
    max_size=12,
)
VALUE = st.text('abcdefghijklmnopqrstuvwxyz0123456789 -_./;=,\t"', max_size=16).map(str.strip)
METHOD = (
    st.sampled_from(
        ["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "PROPFIND", "PURGE", "CONNECT"]
    )
    | TOKEN
)
# Valid targets for any method; "*" (OPTIONS only) and authority-form (CONNECT, refused)
# are exercised by the arbitrary-input properties.
# A fragment ("/a#frag") is refused: see odd_requests.
TARGET = st.sampled_from(["/", "/a/b?x=1&y=%20", "http://example.com/x", "//x", "/a?"])
SPECIAL = st.sampled_from(
    [
        ("Connection", "keep-alive"),
        ("Connection", "close"),
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Expect", "100-continue"),
    ]
)
FRAMING = ("host", "content-length", "transfer-encoding", "expect")
EXTRA = SPECIAL | st.tuples(TOKEN.filter(lambda name: name.lower() not in FRAMING), VALUE)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """A valid request, with a body framed by Content-Length, by chunks, or none."""
    version = draw(st.sampled_from(["1.1", "1.0"]))
    headers = draw(st.lists(EXTRA, max_size=4))
    if version == "1.1" or draw(st.booleans()):
        headers.insert(draw(st.integers(0, len(headers))), ("Host", "example.com"))
    framing = draw(
        st.sampled_from(["none", "length", "chunked"] if version == "1.1" else ["none", "length"])
    )
    body = b""
    if framing == "length":
        body = draw(st.binary(max_size=40))
        headers.append(("Content-Length", str(len(body))))
    elif framing == "chunked":
        headers.append(("Transfer-Encoding", draw(st.sampled_from(["chunked", "Chunked"]))))
        for chunk in draw(st.lists(st.binary(min_size=1, max_size=12), max_size=3)):
            extension = draw(st.sampled_from(EXTENSIONS))
            body += b"%x%s\r\n%s\r\n" % (len(chunk), extension.encode(), chunk)
        trailer = draw(st.sampled_from(["", "X-Trailer: t\r\n"]))
        body += b"0\r\n" + trailer.encode() + b"\r\n"
    lines = [f"{draw(METHOD)} {draw(TARGET)} HTTP/{version}"]
    lines += [
        f"{name}:{draw(st.sampled_from([' ', '', '  ', chr(9)]))}{value}" for name, value in headers
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


pipelines = st.lists(requests(), min_size=1, max_size=3).map(b"".join)

# Chunk extensions RFC 9112 (7.1.1) allows: BWS before ";" and around "=", tokens, and
# quoted strings with escapes and obs-text; and some it does not (see odd_chunks).
EXTENSIONS = ["", ";a=b", ";x", ';q="v"', " ;a=b", "\t; a = b", ';q="a\\"b;\x80"', ";a;b=c"]
BAD_EXTENSIONS = [
    " ",
    "\t",
    ";",
    ";a=",
    ";a=b ",
    ";a=\x00",
    ";a\rb",
    ";a=\x7f",
    ';q="\r"',
    ';q="a',
    ";=b",
    "; a b",
    ",a",
    ";a=b;",
]
NOISE = st.sampled_from(list(b' \t\r\n:;,\x00\x01\x7f\x80\xff0aA="/')) | st.integers(0, 255)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """Valid requests with a few bytes inserted, removed or replaced."""
    data = bytearray(draw(pipelines))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        if action == "insert":
            data.insert(at, draw(NOISE))
        elif at < len(data):
            if action == "delete":
                del data[at]
            else:
                data[at] = draw(NOISE)
    return bytes(data)


@st.composite
def odd_requests(draw: st.DrawFn) -> bytes:
    """Requests assembled from parts that are often wrong: for the checks and their order."""
    part = st.sampled_from
    line = b"%s%s%s%sHTTP/%s" % (
        draw(part([b"GET", b"POST", b"get", b"G(T", b"FOO", b"PRI", b"CONNECT", b""])),
        draw(part([b" ", b" ", b"  ", b"\t"])),
        draw(part([b"/", b"*", b"/a b", b"/\x80", b"a:1", b"http://h/", b"", b"/a#f", b"*#"])),
        draw(part([b" ", b" ", b"  "])),
        draw(part([b"1.1", b"1.1", b"1.0", b"2.0", b"0.9", b"3.7", b"1.1 ", b"11"])),
    )
    names = part([b"Host", b"Content-Length", b"Transfer-Encoding", b"Expect", b"Connection"])
    names |= part([b"X", b"Bad Header", b"", b"X ", b"\x01"])
    values = part([b"a", b"", b"5", b"-1", b"+3", b"1e3", b"3, 3", b"99999999999999999999"])
    values |= part([b"chunked", b"Chunked", b"gzip, chunked", b"identity", b"100-continue"])
    values |= part([b"close", b"keep-alive", b"a\x00b", b"a\rb", b"\x01", b"a\r\n b"])
    fields = draw(st.lists(st.tuples(names, part([b": ", b":", b" : ", b":\t"]), values)))
    eol = draw(part([b"\r\n", b"\r\n", b"\r\n", b"\n"]))
    lines = [line] + [name + colon + value for name, colon, value in fields]
    return eol.join(lines) + eol + eol + draw(st.binary(max_size=30))


@st.composite
def odd_chunks(draw: st.DrawFn) -> bytes:
    """A chunked request whose chunk lines have valid or invalid extensions."""
    body = b""
    for chunk in draw(st.lists(st.binary(min_size=1, max_size=8), max_size=3)):
        extension = draw(st.sampled_from(EXTENSIONS + BAD_EXTENSIONS))
        body += b"%x%s\r\n%s\r\n" % (len(chunk), extension.encode("latin-1"), chunk)
    last = draw(st.sampled_from(EXTENSIONS + BAD_EXTENSIONS))
    body += b"0" + last.encode("latin-1") + b"\r\n\r\n"
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head + body + draw(st.sampled_from([b"", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]))


anything = st.binary(max_size=200) | mutated() | odd_requests() | odd_chunks()
cuts = st.lists(st.integers(0, 400), max_size=4)


# -- properties -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ENGINES)
@fuzz
@given(data=anything, split=cuts)
def test_any_input_gives_events_or_an_error(name: str, data: bytes, split: list[int]) -> None:
    check_shape(run(name, data, split))


@fuzz
@given(data=anything, split=cuts)
def test_engines_agree(data: bytes, split: list[int]) -> None:
    assert outcome(run("httptools", data, split)) == outcome(run("h11", data, split))


@fuzz
@given(data=pipelines, split=cuts)
def test_valid_requests_agree(data: bytes, split: list[int]) -> None:
    events = run("httptools", data, split)
    assert not any(isinstance(event, ProtocolError) for event in events), events
    assert outcome(events) == outcome(run("h11", data, split))


@pytest.mark.parametrize("name", ENGINES)
@fuzz
@given(
    data=anything,
    split=cuts,
    line=st.integers(4, 60),
    head=st.integers(0, 100),
    count=st.integers(0, 5),
)
def test_split_does_not_matter(
    name: str, data: bytes, split: list[int], line: int, head: int, count: int
) -> None:
    # A request line that cannot fit in the head would be 414 or 431 depending on the split.
    limits = HeadLimits(
        max_request_line=line, max_head_bytes=line + 2 + head, max_header_count=count
    )
    whole = outcome(run(name, data, [], limits))
    assert outcome(run(name, data, split, limits)) == whole
    assert outcome(run(name, data, list(range(len(data))), limits)) == whole


# Inputs where llhttp and h11 read differently, and the engine must make up the difference.
TRICKY = [
    b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\nHost: a\nX: b\n\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: b\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\x7f\r\n\r\n",
    b"GET / HTTP/0.9\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET http://h/x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nExpect: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nExpect: x\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nExpect: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000000000000000000003\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;a\x00\r\nhi\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;a\rb\r\nhi\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0 \r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc",
    b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a#b HTTP/1.1\r\nHost: a\r\nX: b\n\r\n",
    b'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;a="b\r\nhi\r\n0\r\n\r\n',
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n c\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n c\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\nX: y\n\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Content-Length: 2\r\n\r\nhiGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGARBAGE\r\n\r\n",
]


@pytest.mark.parametrize("data", TRICKY)
def test_tricky_inputs_agree(data: bytes) -> None:
    for split in ([], list(range(len(data)))):
        expected = outcome(run("h11", data, split))
        assert outcome(run("httptools", data, split)) == expected
        limits = HeadLimits(max_header_count=1)
        expected = outcome(run("h11", data, split, limits))
        assert outcome(run("httptools", data, split, limits)) == expected
