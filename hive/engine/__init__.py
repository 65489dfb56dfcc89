"""The seam between hive and an HTTP/1.1 parser.

An engine is a sans-IO object, one per connection. It turns the bytes a client sent into
events (`feed`), and a response into bytes (`start_response`, `body`, `end_response`). It
never touches a socket, a clock or an event loop.

What an engine decides: the syntax of HTTP/1.1 (request line, headers, chunked bodies),
the limits on the request head (`HeadLimits`), and the bytes of a response. What it does
not decide: how a response is framed. `plan_response` below makes that choice once, for
every engine, so that two engines cannot drift apart on keep-alive, HEAD or chunking.

Every engine is run through the same protocol test suite (tests/unit/test_engine.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Protocol

from mypy_extensions import mypyc_attr

__all__ = [
    "END",
    "FRAMING_HEADERS",
    "BodyData",
    "EndOfMessage",
    "Engine",
    "EngineFactory",
    "Event",
    "HeadLimits",
    "ProtocolError",
    "RequestHead",
    "ResponseFramer",
    "ResponsePlan",
    "available_engines",
    "check_head",
    "check_length_fields",
    "check_target",
    "chunk_size",
    "encode_head",
    "get_engine",
    "header_lines",
    "plan_response",
    "status_line",
    "usual_framing",
]


@dataclass(slots=True)
class RequestHead:
    """A request line and its headers, parsed and checked."""

    method: bytes
    target: bytes
    #: b"1.1" or b"1.0".
    http_version: bytes
    #: In the order received; names lowercased, values stripped of surrounding white space.
    headers: list[tuple[bytes, bytes]]
    #: Whether the client allows the connection to be reused after this exchange.
    keep_alive: bool
    #: The client sent ``Expect: 100-continue`` and waits before sending the body.
    expect_continue: bool
    #: The declared body length, or None for a chunked body.  0 when there is no body.
    content_length: int | None


@dataclass(slots=True)
class BodyData:
    """A piece of the request body (chunked framing already removed)."""

    data: bytes


class EndOfMessage:
    """The request (head and body) is complete."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


#: The one EndOfMessage instance; compare with ``is``.
END: Final = EndOfMessage()


@dataclass(slots=True)
class ProtocolError:
    """The client broke the protocol; answer ``status`` and close the connection."""

    status: int
    reason: str


Event = RequestHead | BodyData | EndOfMessage | ProtocolError


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """Limits on a request head, each enforced by every engine.

    Defaults follow nginx (8 KiB request line, 32 KiB of headers in all) and gunicorn
    (100 header fields).
    """

    #: Longest request line, CRLF excluded; longer gets 414.
    max_request_line: int = 8190
    #: Largest header block (request line included); larger gets 431.
    max_head_bytes: int = 32768
    #: Most header fields; more gets 431.
    max_header_count: int = 100


@dataclass(slots=True)
class ResponsePlan:
    """How a response is framed, decided by `plan_response`."""

    status: int
    reason: bytes
    #: The final header list, framing headers included, in the order to send.
    headers: list[tuple[bytes, bytes]]
    #: Whether body bytes are sent at all (not for HEAD, 1xx, 204, 304).
    body_allowed: bool
    #: Body sent with chunked transfer-coding.
    chunked: bool
    #: The declared Content-Length, if any.
    content_length: int | None
    #: The connection may carry another request after this response.
    keep_alive: bool


class Engine(Protocol):
    """One connection's HTTP/1.1 parser and serializer."""

    def feed(self, data: bytes) -> list[Event]:
        """Take bytes from the client; return the events they complete, in order.

        An engine may return events of several pipelined requests at once, or hold the
        bytes of the next request back until `next_cycle`; callers must handle both.
        After a ProtocolError no further events are returned.
        """
        ...

    def next_cycle(self) -> list[Event]:
        """The current exchange is done and the connection is kept; return held-back events."""
        ...

    def holds_input(self) -> bool:
        """Whether bytes fed after the current request are held back (a pipelined request,
        or the start of one), to be parsed at `next_cycle`."""
        ...

    def informational(self, status: int, reason: bytes) -> bytes:
        """The bytes of a 1xx response (100 Continue)."""
        ...

    def start_response(self, plan: ResponsePlan) -> bytes:
        """The bytes of the status line and headers."""
        ...

    def body(self, data: bytes) -> bytes:
        """The bytes that carry ``data`` (framed as the plan says)."""
        ...

    def end_response(self) -> bytes:
        """The bytes that end the response (the last chunk, for chunked)."""
        ...


class EngineFactory(Protocol):
    def __call__(self, limits: HeadLimits) -> Engine: ...


_NO_BODY_STATUS = frozenset({204, 304})

#: Headers that frame a message: `plan_response` decides them, an application may not.
FRAMING_HEADERS: Final = frozenset({b"content-length", b"connection", b"transfer-encoding"})


def plan_response(
    head: RequestHead,
    status: int,
    reason: bytes,
    headers: list[tuple[bytes, bytes]],
    content_length: int | None,
    *,
    closing: bool = False,
) -> ResponsePlan:
    """Decide the framing of a response to ``head``.

    ``headers`` are the application's headers as they go on the wire, without Content-Length,
    Transfer-Encoding or Connection: those are decided here.  ``content_length`` is the
    body length if known before the first byte is sent.  ``closing`` is set when the
    server wants the connection closed after this response (draining, an error).
    """
    body_allowed = head.method != b"HEAD" and status not in _NO_BODY_STATUS and status >= 200
    keep_alive = head.keep_alive and not closing
    chunked = False
    if status in _NO_BODY_STATUS or 100 <= status < 200:
        content_length = None
    elif content_length is not None:
        headers.append((b"Content-Length", b"%d" % content_length))
    elif not body_allowed:
        # HEAD of a response whose length is unknown: say nothing about the length.
        pass
    elif head.http_version == b"1.1":
        chunked = True
        headers.append((b"Transfer-Encoding", b"chunked"))
    else:
        # An HTTP/1.0 client and no length: the end of the body is the end of the connection.
        keep_alive = False
    if not keep_alive:
        if head.http_version == b"1.1":
            headers.append((b"Connection", b"close"))
    elif head.http_version == b"1.0":
        headers.append((b"Connection", b"keep-alive"))
    return ResponsePlan(status, reason, headers, body_allowed, chunked, content_length, keep_alive)


def usual_framing(head: RequestHead, status: int, closing: bool) -> bool:
    """Whether `plan_response`, given a Content-Length, would add it and nothing else.

    That is the usual exchange: HTTP/1.1 kept alive by both sides, not HEAD, a status with
    a body.  A caller that knows this may frame the response itself (Content-Length, no
    Connection header) without building a plan: `Connection.respond_whole` does.
    tests/unit/test_engine.py checks this against `plan_response` for every combination.
    """
    return (
        head.keep_alive
        and not closing
        and head.http_version == b"1.1"
        and head.method != b"HEAD"
        and status >= 200
        and status not in _NO_BODY_STATUS
    )


#: Every engine hive has: h11 (pure Python, the reference) and httptools (llhttp, in C).
ENGINES: Final = ("h11", "httptools")


def available_engines() -> list[str]:
    """Names of the engines that can run here, fastest first."""
    names = []
    try:
        import httptools  # noqa: F401
    except ImportError:
        pass
    else:
        names.append("httptools")
    names.append("h11")
    return names


def get_engine(name: str) -> EngineFactory:
    """The engine factory called ``name`` ("auto", "h11" or "httptools")."""
    if name == "auto":
        name = available_engines()[0]
    if name == "h11":
        from hive.engine.h11 import H11Engine

        return H11Engine
    if name == "httptools":
        from hive.engine.fast import HttptoolsEngine

        return HttptoolsEngine
    raise ValueError(f"unknown HTTP engine {name!r} (choose from auto, h11, httptools)")


def status_line(status: int, reason: bytes) -> bytes:
    """``HTTP/1.1 200 OK`` and its CRLF."""
    return b"HTTP/1.1 %d %s\r\n" % (status, reason)


def header_lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    """Header fields as bytes, each line ending in CRLF (no blank line after them)."""
    return b"".join([b"%s: %s\r\n" % pair for pair in headers])


def encode_head(plan: ResponsePlan) -> bytes:
    """The status line and headers of ``plan`` as bytes, in one buffer."""
    return status_line(plan.status, plan.reason) + header_lines(plan.headers) + b"\r\n"


# Control characters other than HTAB: RFC 9110 allows a recipient to keep them; refusing them
# closes a door to smuggling and log injection at the cost of nothing legitimate.
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

# RFC 9110 uri-host [ ":" port ]: an IP literal in brackets, or a reg-name / IPv4 address.
_HOST = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?")


def check_target(method: bytes, target: bytes) -> ProtocolError | None:
    """Whether a request target has a form hive serves (RFC 9112, section 3.2).

    origin-form (``/path``), absolute-form (``http://host/path``), and ``*`` for OPTIONS.
    authority-form is for CONNECT, which a server that is not a forward proxy refuses.
    A fragment (``#...``) is no part of any form: a client must not send one, and one that
    does gets 400 rather than a query string with the fragment in it.
    """
    if b"#" in target:
        return ProtocolError(400, "fragment in request target")
    if target[:1] == b"/":
        return None
    if target == b"*":
        return None if method == b"OPTIONS" else ProtocolError(400, "'*' is for OPTIONS only")
    scheme = target[:8].lower()
    if scheme.startswith((b"http://", b"https://")):
        return None
    return ProtocolError(400, "invalid request target")


# RFC 9112 section 7.1.1: chunk = chunk-size [ chunk-ext ] CRLF, where
#   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
# a name is a token and a value a token or a quoted-string.  So white space may come before
# a ";" or around "=", never after the size alone nor at the end of the line, and no CR,
# NUL or other control byte is anywhere but in the CRLF (a bare CR is invalid, 2.2).
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,20})(?:[ \t]*;[ \t]*"
    + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + _TOKEN
    + rb"|"
    + _QUOTED
    + rb"))?)*\r\n"
)


def chunk_size(line: bytes) -> int | None:
    """The size a chunk line (its CRLF included) gives, or None if it is not one.

    Extensions are checked against the grammar and then dropped, as h11 drops them.
    """
    match = _CHUNK_LINE.fullmatch(line)
    return int(match[1], 16) if match is not None else None


# A Content-Length field line of a raw head (every header line follows a LF).
_LENGTH_FIELD = re.compile(rb"\n(?i:content-length):([^\n]*)")


def check_length_fields(head: bytes) -> ProtocolError | None:
    """Refuse a raw head with more than one Content-Length value, equal or not.

    RFC 9112 section 6.3 lets a recipient either merge ``Content-Length: 5, 5`` (or two
    equal fields) into one value or refuse it.  hive refuses, as nginx does: a sender that
    repeats the length is broken or probing, and a proxy in front may have read it
    differently.  h11 merges equal values before hive sees its headers, so engines call
    this on the bytes, before h11 parses them.
    """
    fields = _LENGTH_FIELD.findall(head)
    if len(fields) > 1 or (fields and b"," in fields[0]):
        return ProtocolError(400, "more than one Content-Length")
    return None


def check_head(
    http_version: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[bool, bool, int | None] | ProtocolError:
    """Checks every engine makes on a parsed head, for request-smuggling safety.

    Returns (keep_alive, expect_continue, content_length) or the error to answer.
    Engines parse the syntax; this decides what the headers mean, once for all engines.
    """
    if http_version != b"1.1" and http_version != b"1.0":
        return ProtocolError(505, "HTTP version not supported")
    content_length: int | None = 0
    seen_length = False
    chunked = False
    hosts = 0
    connection: list[bytes] = []
    expect_continue = False
    for name, value in headers:
        if _CTL.search(value) is not None:
            return ProtocolError(400, "control character in a header value")
        if name == b"host":
            hosts += 1
            if _HOST.fullmatch(value) is None:
                return ProtocolError(400, "invalid Host header")
        elif name == b"content-length":
            if not value.isdigit() or len(value) > 18:
                return ProtocolError(400, "invalid Content-Length")
            if seen_length:
                # Even an equal one: see check_length_fields.
                return ProtocolError(400, "more than one Content-Length")
            seen_length = True
            content_length = int(value)
        elif name == b"transfer-encoding":
            if chunked or value.lower() != b"chunked":
                return ProtocolError(501, "only Transfer-Encoding: chunked is supported")
            chunked = True
        elif name == b"connection":
            connection.extend(token.strip().lower() for token in value.split(b","))
        elif name == b"expect":
            if value.lower() != b"100-continue":
                return ProtocolError(417, "unsupported expectation")
            expect_continue = http_version == b"1.1"
    if hosts > 1:
        return ProtocolError(400, "more than one Host header")
    if hosts == 0 and http_version == b"1.1":
        return ProtocolError(400, "missing Host header")
    if chunked:
        if seen_length:
            return ProtocolError(400, "both Content-Length and Transfer-Encoding")
        if http_version == b"1.0":
            return ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
        content_length = None
    if http_version == b"1.1":
        keep_alive = b"close" not in connection
    else:
        keep_alive = b"keep-alive" in connection and b"close" not in connection
    return keep_alive, expect_continue, content_length


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled (hive._compiled); subclassed
class ResponseFramer:
    """Response bytes for every engine: one serializer, so engines cannot frame differently.

    Plans come from `plan_response`, whose headers are already checked (hive's Headers
    refuse CR, LF and NUL), so framing is plain concatenation.
    """

    __slots__ = ("_chunked",)

    def __init__(self) -> None:
        self._chunked = False

    def informational(self, status: int, reason: bytes) -> bytes:
        return status_line(status, reason) + b"\r\n"

    def start_response(self, plan: ResponsePlan) -> bytes:
        self._chunked = plan.chunked
        return encode_head(plan)

    def body(self, data: bytes) -> bytes:
        if self._chunked:
            # An empty chunk would end the body early: send nothing for it.
            return b"%x\r\n%s\r\n" % (len(data), data) if data else b""
        return data

    def end_response(self) -> bytes:
        if self._chunked:
            self._chunked = False
            return b"0\r\n\r\n"
        return b""
