"""The reference engine: h11, in pure Python.

h11 parses strictly; hive uses it for the request side only.  Responses are framed by the
shared `ResponseFramer` (h11's own send path costs as much again as its parser, and hive's
plans and headers are already checked), so each exchange gets a fresh h11 parser that
starts from the bytes the last one held back.  That also gives HTTP/1.0 clients
keep-alive, which h11 itself does not offer.

The fast path.  Driving an `h11.Connection` costs some 25 us per request, mostly in its
state machine, event objects and line-by-line parsing, where hive's checks cost 1 us.  The
usual request is a head that comes whole, every line ending in CRLF, with no body or a
Content-Length one.  For it the engine matches h11's grammar (from ``h11._abnf``) over the
whole head at once, builds the `RequestHead` itself and slices the body from the input,
without a Connection.  A head is taken this way only if h11 would give exactly the same
request: the head fits h11's request-line and header-field rules; it has no
Transfer-Encoding and at most one Content-Length (h11 rewrites those fields); it is within
the limits; and `check_target` and `check_head` accept it.  Anything else (a chunked
body, an error of any kind, a bare-LF line end) goes to an h11.Connection fed the same
bytes, so its events and errors are h11's own.  For what comes after a fast-path request
and before `next_cycle` (more bytes, or the end of input, which h11 treats by the state
the request left it in), an h11.Connection is brought to the same point by replaying the
head and as many body bytes, and h11 decides.

Where h11 is more lenient than RFC 9112, the engine checks the bytes before h11 sees
them: a raw head with more than one Content-Length value is refused (h11 would merge
``5, 5``), and the chunk lines of a chunked body pass through `_ChunkLines`, which checks
them against RFC 9112's grammar (`chunk_size`) and gives h11 each one as its bare size.

``h11._abnf`` is not public API: the fast path is used only with the h11 versions it was
checked against (0.14 to 0.16), and only if h11's grammar strings are the ones it was
derived from; otherwise every exchange goes through h11.Connection, as it did before.
tests/unit/test_engine_h11_speed.py checks that both paths give the same events (errors
with the same reason) for any bytes, split into feeds any way.
"""

from __future__ import annotations

import re

import h11

from hive.engine import (
    END,
    BodyData,
    Event,
    HeadLimits,
    ProtocolError,
    RequestHead,
    ResponseFramer,
    check_head,
    check_length_fields,
    check_target,
    chunk_size,
)

_OBS_FOLD = re.compile(rb"\n[ \t]")
_BLANK_LINE = re.compile(rb"\n\r?\n")

#: h11 versions whose receive side the fast path was checked against.
_CHECKED_VERSIONS = ("0.14.", "0.15.", "0.16.")

# h11's grammar for a request line and a header field, as in h11/_abnf.py (the same from
# 0.14 to 0.16).  The fast path is built from these and used only if h11's are the same.
_H11_REQUEST_LINE = (
    r"(?P<method>[-!#$%&'*+.^_`|~0-9a-zA-Z]+) (?P<target>[\x21-\x7e]+)"
    r" HTTP/(?P<http_version>[0-9]\.[0-9])"
)
_H11_HEADER_FIELD = (
    r"(?P<field_name>[-!#$%&'*+.^_`|~0-9a-zA-Z]+):[ \t]*"
    r"(?P<field_value>([^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*"
)

# A whole head whose lines end in CRLF, in that grammar: the request line; header fields,
# at most one of them Content-Length and none Transfer-Encoding (h11 rewrites those two:
# it merges equal Content-Lengths and lowercases a coding); the blank line.  A field is a
# token, a colon, and bytes other than NUL, CR, LF, VT and FF: h11's header_field matches
# exactly those (white space around the value is [ \t]*, inside it [ \t]+), and its value
# is what is left once spaces and tabs are stripped from both ends.  One character class
# is several times faster than h11's nested groups on a long value.  A field cannot end
# early (a value has no CR), so the possessive quantifiers change nothing but the time a
# head takes to fail.
_FIELDS = (
    rb"(?:\r\n(?!(?i:content-length|transfer-encoding):)"
    rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+:[^\x00\n\r\x0b\x0c]*+)*+"
)
_FAST_HEAD = re.compile(
    _H11_REQUEST_LINE.encode("ascii")
    + _FIELDS
    + rb"(?:\r\n(?i:content-length):[^\x00\n\r\x0b\x0c]*+"
    + _FIELDS
    + rb")?\r\n\r\n"
)

# Bytes fed to h11 at a time when it is brought up to a body the fast path has read.
_REPLAY_CHUNK = 65536

# What a chunked request's h11.Connection is brought to before its body: a head h11 takes
# as the one it parsed (HTTP/1.1, chunked), with or without keep-alive.
_CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
_CHUNKED_HEAD_CLOSE = _CHUNKED_HEAD[:-2] + b"Connection: close\r\n\r\n"


class _ChunkLines:
    """Between a chunked body and h11: each chunk line checked and reduced to its size.

    h11 reads chunk extensions as ``;`` and any bytes but LF, white space after the size
    alone, and none before a ``;``; RFC 9112 (section 7.1.1) says otherwise on all three.
    So h11 is given the body with every chunk line checked by `chunk_size` and rewritten
    as its bare size; chunk data, the CRLF after it, and everything from the last chunk on
    (trailers, the next request) pass unchanged and stay h11's to judge.
    """

    __slots__ = ("_left", "_limit", "held")

    def __init__(self, limit: int) -> None:
        #: An unfinished chunk line, from earlier feeds.
        self.held = b""
        # Bytes of chunk data, and the CRLF after it, still to pass through.
        self._left = 0
        # An unfinished line longer than this is 431, as h11 bounds its buffer.
        self._limit = limit

    def feed(self, data: bytes) -> tuple[bytes, ProtocolError | None, bool]:
        """(the bytes for h11, an error in the bytes after those, whether the last chunk
        line has passed: every later byte goes to h11 as it is)."""
        out: list[bytes] = []
        pos = 0
        size = len(data)
        while pos < size:
            left = self._left
            if left:
                take = min(left, size - pos)
                out.append(data[pos : pos + take])
                pos += take
                self._left = left - take
                continue
            held = self.held
            if held[-1:] == b"\r" and data[pos : pos + 1] == b"\n":
                stop = pos + 1  # the CRLF was split between two feeds
            else:
                stop = data.find(b"\r\n", pos) + 2
                if stop < 2:
                    self.held = held + data[pos:]
                    if len(self.held) > self._limit:
                        return b"".join(out), ProtocolError(431, "chunk header too large"), False
                    break
            line = held + data[pos:stop]
            self.held = b""
            pos = stop
            length = chunk_size(line)
            if length is None:
                return b"".join(out), ProtocolError(400, "illegal chunk header"), False
            out.append(b"%x\r\n" % length)
            if not length:
                out.append(data[pos:])
                return b"".join(out), None, True
            self._left = length + 2
        return b"".join(out), None, False


def _fast_path_usable() -> bool:
    """Whether the installed h11 is one the fast path was checked against."""
    # h11 sets __version__ but does not export it for type checkers.
    if not str(getattr(h11, "__version__", "")).startswith(_CHECKED_VERSIONS):
        return False
    try:
        from h11._abnf import header_field, request_line
    except ImportError:  # pragma: no cover - present in every checked version
        return False
    return request_line == _H11_REQUEST_LINE and header_field == _H11_HEADER_FIELD


class H11Engine(ResponseFramer):
    """An `Engine` whose parser is h11.

    Between exchanges and on the fast path there is no h11.Connection (``_conn`` is None):
    ``_buf`` holds the bytes received and not yet parsed; ``_spent`` the head the fast path
    took, until `next_cycle`; ``_length`` its Content-Length; ``_left`` the body bytes
    still to come.
    """

    __slots__ = (
        "_buf",
        "_chunk_error",
        "_chunks",
        "_conn",
        "_failed",
        "_left",
        "_length",
        "_limits",
        "_max_count",
        "_max_head",
        "_max_line",
        "_spent",
    )

    #: Whether whole heads may skip h11.Connection (see the module docstring).
    fast = _fast_path_usable()

    def __init__(self, limits: HeadLimits) -> None:
        super().__init__()
        self._limits = limits
        self._max_line = limits.max_request_line
        self._max_head = limits.max_head_bytes
        self._max_count = limits.max_header_count
        self._conn: h11.Connection | None = None
        self._buf = b""
        self._spent: bytes | None = None
        self._length = 0
        self._left = 0
        self._failed = False
        # While h11 reads a chunked body: what stands between it and the input.
        self._chunks: _ChunkLines | None = None
        # An error found there, in the bytes after those h11 was given.
        self._chunk_error: ProtocolError | None = None

    def _new_parser(self) -> h11.Connection:
        # The head limit is enforced exactly in _check_raw_head; h11's own is a backstop,
        # set past it so that it never answers first.
        limit = self._max_head + 4
        return h11.Connection(h11.SERVER, max_incomplete_event_size=limit)

    def feed(self, data: bytes) -> list[Event]:
        if self._failed:
            return []
        conn = self._conn
        if conn is None:
            if data:
                if self._spent is None:
                    # The start of an exchange: as a fresh h11 parser would be.
                    return self._start(self._buf + data if self._buf else bytes(data))
                if self._left:
                    return self._body(bytes(data), [])
            # End of input, or bytes after a fast-path request: h11 decides.
            conn = self._conn = self._resume()
        self._receive(conn, data)
        return self._events()

    def next_cycle(self) -> list[Event]:
        if self._failed:
            return []
        conn = self._conn
        if conn is None:
            pending = self._buf
            self._spent = None
            self._left = 0
        else:
            pending, _closed = conn.trailing_data
            self._conn = None
            if self._chunks is not None:
                pending += self._chunks.held
                self._chunks = None
            self._chunk_error = None
        self._buf = b""
        if not pending:
            return []
        return self._start(pending)

    def holds_input(self) -> bool:
        conn = self._conn
        if conn is None:
            return bool(self._buf)
        return bool(conn.trailing_data[0])

    def _start(self, buf: bytes) -> list[Event]:
        """Begin an exchange on ``buf``, all the bytes received since the last one."""
        if self.fast:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                head = self._fast_head(buf, end)
                if head is not None:
                    end += 4
                    self._spent = buf[:end]
                    # Not None: the fast path takes no chunked body.
                    length = self._length = head.content_length or 0
                    if not length:
                        self._buf = buf[end:]
                        return [head, END]
                    self._left = length
                    self._buf = b""
                    if end == len(buf):
                        return [head]
                    return self._body(buf[end:], [head])
            # What the slow path checks first, on every feed of an unfinished head.
            error = self._check_raw_head(buf)
            if error is not None:
                return self._fail([], error)
            if end < 0 and len(buf) <= self._max_head + 4 and _BLANK_LINE.search(buf) is None:
                # Not a whole head yet, and h11 would wait for more (neither its first byte
                # nor its size is wrong: both were just checked).
                self._buf = buf
                return []
        # Anything else is h11's to parse, from the same bytes.
        self._buf = b""
        conn = self._conn = self._new_parser()
        conn.receive_data(buf)
        return self._events(checked=self.fast)

    def _fast_head(self, buf: bytes, end: int) -> RequestHead | None:
        """The head ``buf[:end + 4]`` if the fast path can take it, else None (see above)."""
        match = _FAST_HEAD.fullmatch(buf, 0, end + 4)
        if match is None:
            return None
        line_end = match.end("http_version")
        # _check_raw_head's limits, for a head whose lines all end in CRLF.
        if line_end > self._max_line or end + 2 > self._max_head:
            return None
        headers: list[tuple[bytes, bytes]] = []
        if line_end < end:
            # Each line is a token, a colon and the value with its white space around.
            for line in buf[line_end + 2 : end].split(b"\r\n"):
                name, _, value = line.partition(b":")
                headers.append((name.lower(), value.strip(b" \t")))
            if len(headers) > self._max_count:
                return None
        method, target, version = match.group("method", "target", "http_version")
        # A Content-Length that check_head accepts is digits only, as h11 keeps it.
        result = check_target(method, target) or check_head(version, headers)
        if isinstance(result, ProtocolError):
            return None
        keep_alive, expect_continue, content_length = result
        return RequestHead(
            method, target, version, headers, keep_alive, expect_continue, content_length
        )

    def _body(self, data: bytes, events: list[Event]) -> list[Event]:
        """Body bytes of a fast-path request: as h11 gives them, one piece per feed."""
        left = self._left
        if len(data) < left:
            self._left = left - len(data)
            events.append(BodyData(data))
            return events
        self._left = 0
        self._buf = data[left:]
        events.append(BodyData(data[:left]))
        events.append(END)
        return events

    def _resume(self) -> h11.Connection:
        """An h11 parser in the state the fast path stands for."""
        conn = self._new_parser()
        spent = self._spent
        if spent is not None:
            # Give h11 the head again, and as many body bytes as it would have seen (their
            # value does not matter to it), then the end of the message if it came.
            self._spent = None
            conn.receive_data(spent)
            event = conn.next_event()
            assert type(event) is h11.Request
            done = self._length - self._left
            while done:
                size = min(done, _REPLAY_CHUNK)
                conn.receive_data(bytes(size))
                event = conn.next_event()
                assert type(event) is h11.Data and len(event.data) == size
                done -= size
            if not self._left:
                event = conn.next_event()
                assert type(event) is h11.EndOfMessage
            self._left = 0
        if self._buf:
            conn.receive_data(self._buf)
            self._buf = b""
        return conn

    def _events(self, checked: bool = False) -> list[Event]:
        """Events from h11; ``checked`` if its bytes just passed `_check_raw_head`."""
        conn = self._conn
        assert conn is not None
        events: list[Event] = []
        while True:
            if checked:
                checked = False
            elif conn.their_state is h11.IDLE:
                error = self._check_raw_head(conn.trailing_data[0])
                if error is not None:
                    return self._fail(events, error)
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                return self._fail(events, ProtocolError(exc.error_status_hint, str(exc)))
            if event is h11.NEED_DATA or event is h11.PAUSED:
                if self._chunk_error is not None:
                    return self._fail(events, self._chunk_error)
                return events
            if isinstance(event, h11.Data):
                events.append(BodyData(bytes(event.data)))
            elif isinstance(event, h11.EndOfMessage):
                events.append(END)
                return events
            elif isinstance(event, h11.Request):
                head = self._head(event)
                if isinstance(head, ProtocolError):
                    return self._fail(events, head)
                events.append(head)
                if head.content_length is None:
                    conn = self._chunked_body(conn, head.keep_alive)
            else:  # pragma: no cover - h11 gives a server no other event
                return events

    def _chunked_body(self, conn: h11.Connection, keep_alive: bool) -> h11.Connection:
        """A parser for the chunked body that follows in ``conn``, behind `_ChunkLines`."""
        rest, closed = conn.trailing_data
        conn = self._conn = self._new_parser()
        conn.receive_data(_CHUNKED_HEAD if keep_alive else _CHUNKED_HEAD_CLOSE)
        event = conn.next_event()
        assert type(event) is h11.Request
        self._chunks = _ChunkLines(self._max_head + 4)
        if rest:
            self._receive(conn, rest)
        if closed:
            self._receive(conn, b"")
        return conn

    def _receive(self, conn: h11.Connection, data: bytes) -> None:
        """Give h11 ``data`` (b"": the end of input), through `_ChunkLines` if it is on."""
        chunks = self._chunks
        if chunks is None:
            conn.receive_data(data)
            return
        if not data:
            # h11 answers an unfinished chunked body at the end of input.
            self._chunks = None
            if chunks.held:
                conn.receive_data(chunks.held)
            conn.receive_data(b"")
            return
        out, error, done = chunks.feed(data)
        if out:
            conn.receive_data(out)
        if error is not None or done:
            self._chunks = None
            self._chunk_error = error

    def _head(self, event: h11.Request) -> RequestHead | ProtocolError:
        headers = list(event.headers)
        if len(headers) > self._max_count:
            return ProtocolError(431, "too many header fields")
        result = check_target(event.method, event.target) or check_head(event.http_version, headers)
        if isinstance(result, ProtocolError):
            return result
        keep_alive, expect_continue, content_length = result
        return RequestHead(
            event.method,
            event.target,
            event.http_version,
            headers,
            keep_alive,
            expect_continue,
            content_length,
        )

    def _check_raw_head(self, pending: bytes) -> ProtocolError | None:
        """What h11 does not check: request line and head length, obs-fold, and
        repeated Content-Length values (which h11 would merge)."""
        if not pending:
            return None
        if pending[0] < 0x21:
            # A control byte or a space cannot start a request line, however long.
            return ProtocolError(400, "invalid request line")
        limits = self._limits
        limit = limits.max_request_line
        line_end = pending.find(b"\n", 0, limit + 2)
        if line_end < 0:
            if len(pending) > limit + 1:
                return ProtocolError(414, "request line too long")
            return None
        if line_end > limit + (pending[line_end - 1 : line_end] == b"\r"):
            return ProtocolError(414, "request line too long")
        # The head size counts the request line and the fields, not the blank line.
        blank = _BLANK_LINE.search(pending, line_end - 1, limits.max_head_bytes + 4)
        if blank is None:
            if len(pending) > limits.max_head_bytes + 2:
                return ProtocolError(431, "request head too large")
            return None
        head_end = blank.start()
        if head_end + 1 > limits.max_head_bytes:
            return ProtocolError(431, "request head too large")
        if _OBS_FOLD.search(pending, line_end, head_end + 1):
            return ProtocolError(400, "obsolete line folding in header")
        # Before h11, which would merge Content-Length: 5, 5 into one value.
        return check_length_fields(pending[line_end : head_end + 1])

    def _fail(self, events: list[Event], error: ProtocolError) -> list[Event]:
        self._failed = True
        events.append(error)
        return events
