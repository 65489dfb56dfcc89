"""The h11 engine's fast path gives exactly what h11.Connection gives, for any bytes.

`H11Engine` takes whole heads and Content-Length bodies without an h11.Connection (see
hive/engine/h11.py); `Reference` is the same engine with that path off, so that every
exchange goes through h11.  The two are fed the same bytes, split the same way, with
`next_cycle` called as the connection calls it or at any other time, and must return equal
events (errors with the same reason) and raise the same exceptions.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hive.engine import END, BodyData, Event, HeadLimits, ProtocolError, RequestHead
from hive.engine import h11 as h11_engine
from hive.engine.h11 import H11Engine
from tests.unit.test_engine_fuzz import anything, pipelines


class Reference(H11Engine):
    """The h11 engine with every exchange parsed by h11.Connection."""

    __slots__ = ()
    fast = False


fuzz = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Script:
    """What to do to an engine: feed chunks; after each, call next_cycle some times."""

    chunks: list[bytes]
    #: Extra next_cycle calls after each chunk, whatever the events were.
    cycles: list[int]
    #: Also call next_cycle after each END of a keep-alive request, as the connection does.
    answer: bool = True
    #: Then feed b"" (end of input) and, if ``more``, these bytes after it.
    eof: bool = False
    more: bytes = b""
    limits: HeadLimits = field(default_factory=HeadLimits)


def play(engine: H11Engine, script: Script) -> list[object]:
    """Everything the engine returned or raised, in order."""
    log: list[object] = []
    heads: list[RequestHead] = []

    def record(events: list[Event]) -> None:
        log.append(events)
        heads.extend(event for event in events if isinstance(event, RequestHead))
        while script.answer and events and events[-1] is END and heads[-1].keep_alive:
            events = engine.next_cycle()
            log.append(("cycle", events))
            heads.extend(event for event in events if isinstance(event, RequestHead))

    def call(what: str, data: bytes = b"") -> None:
        try:
            events = engine.feed(data) if what == "feed" else engine.next_cycle()
        except Exception as exc:
            log.append((type(exc), str(exc)))
        else:
            record(events)

    for chunk, cycles in zip(script.chunks, script.cycles, strict=True):
        call("feed", chunk)
        for _ in range(cycles):
            call("cycle")
    if script.eof:
        call("feed")
        if script.more:
            call("feed", script.more)
        call("cycle")
    return log


def check(script: Script) -> list[object]:
    """Play ``script`` on both engines; they must agree.  Returns the log."""
    expected = play(Reference(script.limits), script)
    assert play(H11Engine(script.limits), script) == expected
    return expected


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({cut for cut in cuts if 0 < cut < len(data)}), len(data)]
    return [data[start:stop] for start, stop in itertools.pairwise(bounds)]


# Header lines and request lines made of the bytes where the grammar is delicate.
ODD = st.sampled_from(list(b" \t\r\n\x00\x01\x0b\x0c\x1c\x7f\x80\xff:aA0-,;"))
odd_line = st.lists(ODD | st.sampled_from(list(b"abcXYZ/.")), max_size=12).map(bytes)
NAMES = st.sampled_from(
    [
        *(b"Host", b"X", b"Content-Length", b"content-LENGTH", b"Transfer-Encoding"),
        *(b"Connection", b"Upgrade", b"Expect", b"Content-Lengthy", b"X-Y", b""),
    ]
)
VALUES = st.sampled_from([b"a", b"", b"0", b"00", b"0, 0", b"5", b"close", b"keep-alive"])
VALUES |= st.sampled_from([b"chunked", b"websocket", b"100-continue", b"a b", b"\x80\xff"])


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    """Heads, mostly well formed, with odd header lines, spacing and line ends."""
    line = draw(
        st.sampled_from(
            [
                *(b"GET / HTTP/1.1", b"GET /x HTTP/1.0", b"CONNECT /x HTTP/1.1"),
                *(b"OPTIONS * HTTP/1.1", b"GET http://h/ HTTP/1.1", b"GET a:1 HTTP/1.1"),
                *(b"GET / HTTP/2.0", b"G@T / HTTP/1.1"),
            ]
        )
        | odd_line
    )
    fields = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.integers(0, 3)) == 0:
            fields.append(draw(odd_line))
        else:
            space = draw(st.sampled_from([b"", b" ", b"\t", b" \t ", b"\x0b"]))
            after = draw(st.sampled_from([b"", b" ", b"\t", b"\x0c"]))
            fields.append(draw(NAMES) + b":" + space + draw(VALUES) + after)
    if draw(st.booleans()):
        fields.insert(draw(st.integers(0, len(fields))), b"Host: a")
    eol = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"]))
    head = eol.join([line, *fields]) + eol + draw(st.sampled_from([b"\r\n", b"\n", b"\r\n\r\n"]))
    return head + draw(st.binary(max_size=8) | pipelines)


inputs = anything | pipelines | heads() | st.lists(heads(), min_size=2, max_size=3).map(b"".join)


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    data = draw(inputs)
    chunks = split(data, draw(st.lists(st.integers(0, len(data)), max_size=4)))
    cycles = draw(st.lists(st.integers(0, 1), min_size=len(chunks), max_size=len(chunks)))
    if draw(st.booleans()):
        cycles = [0] * len(chunks)
    limits = HeadLimits()
    if draw(st.booleans()):
        line = draw(st.integers(4, 60))
        limits = HeadLimits(
            max_request_line=line,
            max_head_bytes=line + draw(st.integers(-8, 100)),
            max_header_count=draw(st.integers(0, 5)),
        )
    return Script(
        chunks,
        cycles,
        answer=draw(st.booleans()),
        eof=draw(st.booleans()),
        more=draw(st.sampled_from([b"", b"x", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"])),
        limits=limits,
    )


@fuzz
@given(script=scripts())
def test_fast_path_changes_nothing(script: Script) -> None:
    check(script)


@fuzz
@given(data=inputs)
def test_fast_path_changes_nothing_byte_by_byte(data: bytes) -> None:
    chunks = [data[i : i + 1] for i in range(len(data))]
    check(Script(chunks, [0] * len(chunks)))


# -- the cases the fast path must hand to h11, each checked whole and byte by byte ---------

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
CASES = [
    GET,
    b"GET /x?y HTTP/1.1\r\nHost: a\r\nUser-Agent: wrk\r\nX-Empty:\r\nX-Sp:  a \t b \t\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + GET,
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + GET,
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + GET,
    b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n" + GET,
    b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n" + GET,
    b"GET / HTTP/1.1\r\nHost: a\r\nCONTENT-LENGTH: 0\r\ncontent-length: 0\r\n\r\n" + GET,
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi" + GET,
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\t 5 \r\nX: y\r\n\r\nhello" + GET,
    b"POST / HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc" + GET,
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc" + GET,
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nUpgrade: h2c\r\n\r\nabc" + GET,
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0003\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 123456789012345678901\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n" + GET,
    b"GET / HTTP/1.1\nHost: a\n\n" + GET,
    b"GET / HTTP/1.1\r\nHost: a\n\r\n" + GET,
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x0bb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\x7f\x80b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nExpect: nothing\r\n\r\n",
    b"\r\n" + GET,
    b" " + GET,
    b"GET / HTTP/1.1\r\nHost: a\r\n",
    GET + b"GET / HTTP/1.1\r\nHost: a\r\n",
    GET + b"\x16\x03\x01",
]


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("answer", [True, False])
@pytest.mark.parametrize("eof", [False, True])
def test_cases(data: bytes, answer: bool, eof: bool) -> None:
    for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
        for more in (b"", GET):
            check(Script(chunks, [0] * len(chunks), answer=answer, eof=eof, more=more))
    # Bytes that arrive after the first request and before next_cycle.
    first = data.find(b"\r\n\r\n") + 4
    if 3 < first < len(data):
        check(Script([data[:first], data[first:]], [0, 1], answer=False))


@pytest.mark.parametrize(
    "limits",
    [
        {"max_request_line": 14},
        {"max_request_line": 13},
        {"max_request_line": 5},
        {"max_head_bytes": len(GET) - 2},
        {"max_head_bytes": len(GET) - 3},
        {"max_head_bytes": 4},
        {"max_header_count": 0},
        {"max_request_line": 64, "max_head_bytes": 8},
    ],
)
def test_limits_at_the_edge(limits: dict[str, int]) -> None:
    for data in (GET, GET + GET, b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + b"x" * 40):
        chunks = [data[i : i + 1] for i in range(len(data))]
        check(Script([data], [0], limits=HeadLimits(**limits)))
        check(Script(chunks, [0] * len(chunks), limits=HeadLimits(**limits)))


def test_the_fast_path_is_taken() -> None:
    """With a checked h11, a plain GET never makes an h11.Connection."""
    version = str(getattr(h11, "__version__", ""))
    if not version.startswith(h11_engine._CHECKED_VERSIONS):
        pytest.skip(f"h11 {version} has not been checked for the fast path")
    assert H11Engine.fast
    engine = H11Engine(HeadLimits())
    for _ in range(3):
        events = engine.feed(b"GET /hello HTTP/1.1\r\nHost: x\r\nUser-Agent: wrk\r\n\r\n")
        assert [type(event) for event in events] == [RequestHead, type(END)]
        assert engine._conn is None
        assert engine.next_cycle() == []
    # A Content-Length body too, however it comes.
    for data in (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhe", b"l", b"lo"):
        events = engine.feed(data)
        assert engine._conn is None
    assert events == [BodyData(b"lo"), END]


def test_next_cycle_in_the_middle_of_a_body() -> None:
    """The rest of the body is then a new request (a connection does not do this)."""
    post = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"
    for rest in (GET, GET + b"x", b"GET"):
        chunks = [post, b"def", rest, GET, b"GET / HTTP/1.0\r\n\r\n"]
        for cycles in ([1, 0, 0, 0, 1], [1, 1, 0, 1, 0], [0, 1, 0, 1, 0], [1, 1, 1, 1, 1]):
            check(Script(chunks, cycles, answer=False))
            check(Script(chunks, cycles, answer=False, eof=True, more=GET))


def test_grammar_is_h11s() -> None:
    """The fast path's header-field bytes are exactly those h11's grammar accepts."""
    from h11._abnf import header_field

    field = re.compile(header_field.encode("ascii"))
    fast = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+:[^\x00\n\r\x0b\x0c]*")
    for byte in range(256):
        for line in (b"X:" + bytes([byte]), b"X: a" + bytes([byte]) + b"b ", bytes([byte]) + b":"):
            match = field.fullmatch(line)
            assert (match is not None) == (fast.fullmatch(line) is not None), line
            if match is not None:
                assert match["field_value"] == line.partition(b":")[2].strip(b" \t")


def test_errors_are_h11s() -> None:
    """A head the fast path refuses is judged by h11, whose reason is kept."""
    events = H11Engine(HeadLimits()).feed(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert events == [ProtocolError(400, "Found multiple Host: headers")]


@pytest.mark.parametrize("size", [1, 65535, 65536, 65537, 200_000])
@pytest.mark.parametrize("cut", [0, 1, -1])
def test_bodies_then_more_bytes_or_the_end(size: int, cut: int) -> None:
    """A body the fast path read, then bytes or the end of input: h11 is caught up exactly."""
    head = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    upto = len(head) + size // 2 + cut
    for tail in (GET, b"junk", b""):
        data = head + body + tail
        for chunks in ([data], [data[:upto], data[upto:]], [head, body, tail]):
            chunks = [chunk for chunk in chunks if chunk]
            for answer in (True, False):
                for eof in (False, True):
                    script = Script(chunks, [0] * len(chunks), answer=answer, eof=eof, more=GET)
                    check(script)
        # The end of input in the middle of the body.
        check(Script([data[:upto]], [0], eof=True))
