"""The fast engine: llhttp, through httptools, parses request heads in C.

The engine frames messages itself and gives llhttp one complete request head at a time:

* It finds the end of a head (its first blank line, as h11 does) in the raw bytes, so the
  request-line (414) and head-size (431) limits are checked on exact counts, whatever the
  feed boundaries and however many requests one feed carries.
* llhttp parses the head through callbacks; the `RequestHead` is built once, and
  `check_head` decides keep-alive, body framing, Host and Expect, as for every engine.
* Bodies are framed here from `check_head`'s answer: a Content-Length body is sliced from
  the input, a chunked body goes through a small decoder that follows h11's grammar.
  httptools reports no byte offsets, so an llhttp fed whole buffers could not tell where a
  pipelined head starts; with llhttp on heads only, that position is always known.
* Responses are framed by the shared `ResponseFramer`.

Parity with h11, the reference engine:

* Where llhttp is stricter than h11 (methods it does not know, lower-case methods, control
  characters in header values, bare LF line ends, versions such as HTTP/3.7, repeated
  Content-Length values, some request-target forms, ``PRI``), h11 itself judges the
  head again, so the request or the error status is the same.  Only such heads pay for h11;
  `check_length_fields` comes first, since h11 would merge equal Content-Length values.
* Where llhttp is more lenient (several spaces between the parts of the request line),
  the line's length is compared with its parts, and h11 judges the odd ones.
* A head with several faults gets the status the h11 engine gives: h11's own checks on
  Content-Length, Transfer-Encoding and Host come before the header count and
  `check_head`.  They are only run when a head fails, so they cost nothing otherwise.
* Upgrade and CONNECT requests are ordinary requests: hive does not switch protocols.

Differences from the h11 engine, each deliberate:

* All the requests a feed carries are parsed at once; `next_cycle` returns [].
* After a request that does not keep the connection alive, further bytes are ignored,
  where h11 answers them with 400 on a later feed.  The connection closes after the
  response anyway and must not process further requests (RFC 9112, section 9.6).
* Every answer is the same however the bytes were split into feeds (given
  ``max_head_bytes > max_request_line + 1``).  Hence a head whose first byte is a control
  character or a space is 400 at once, even when its first line is also too long (the
  h11 engine says 414 if that line came whole); and an unfinished head is 431 only when
  it is more than two bytes over ``max_head_bytes``, since those two bytes may be the
  blank line, which is not counted (the h11 engine says 431 a byte or two sooner for a
  head that comes in pieces than for the same head in one feed).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import h11
from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

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

__all__ = ["HttptoolsEngine"]

# What the input is expected to be: a request head, a Content-Length body, or the parts of
# a chunked body (size line, data, the CRLF after the data, trailer section).
_HEAD = 0
_BODY = 1
_CHUNK_LINE = 2
_CHUNK_DATA = 3
_CHUNK_END = 4
_TRAILER = 5
_DONE = 6

_OBS_FOLD = re.compile(rb"\n[ \t]")
# h11's grammar for what llhttp is not asked about: trailer fields (chunk lines follow
# RFC 9112's, through `chunk_size`, on both engines).
_BLANK_LINE = re.compile(rb"\n\r?\n")
_FIELD = re.compile(
    rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+:[ \t]*(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?[ \t]*"
)
_FOLD = re.compile(rb"[ \t]+")


def _head_end(src: bytes | bytearray, start: int) -> int:
    """The end of the first blank line (``\\n\\n`` or ``\\n\\r\\n``) from ``start``, or -1."""
    crlf = src.find(b"\n\r\n", start)
    if crlf < 0:
        bare = src.find(b"\n\n", start)
        return bare + 2 if bare >= 0 else -1
    bare = src.find(b"\n\n", start, crlf + 1)
    return bare + 2 if bare >= 0 else crlf + 3


def _valid_trailers(section: bytes) -> bool:
    """Whether a trailer section is valid for h11 (the fields are then dropped, as h11 does)."""
    lines = [line[:-1] if line.endswith(b"\r") else line for line in section.split(b"\n")]
    fields: list[bytes] = []
    for line in lines[:-2]:
        fold = _FOLD.match(line)
        if fold is None:
            fields.append(line)
        elif not fields:
            return False
        else:
            fields[-1] += b" " + line[fold.end() :]
    return all(_FIELD.fullmatch(field) for field in fields)


def _h11_head(
    head: bytes, line_end: int
) -> tuple[bytes, bytes, bytes, list[tuple[bytes, bytes]]] | ProtocolError:
    """Judge a head llhttp refused, or may have read too leniently, with h11."""
    if _OBS_FOLD.search(head, line_end):
        return ProtocolError(400, "obsolete line folding in header")
    # Before h11, which would merge Content-Length: 5, 5 into one value.
    error = check_length_fields(head[line_end:])
    if error is not None:
        return error
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head) + 1)
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError as exc:
        return ProtocolError(exc.error_status_hint, str(exc))
    if not isinstance(event, h11.Request):  # pragma: no cover - the head is complete
        return ProtocolError(400, "malformed request head")
    return event.method, event.target, event.http_version, list(event.headers)


def _h11_error(version: bytes, headers: list[tuple[bytes, bytes]]) -> ProtocolError | None:
    """The error h11 finds in a head while parsing it, before the engine's own checks.

    Only asked when a head fails the header count or `check_head`, to give the error the
    h11 engine gives when a head has several: a head that passes `check_head` passes these.
    """
    hosts = 0
    length = None
    coded = False
    for name, value in headers:
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            if length is not None or b"," in value:
                return ProtocolError(400, "more than one Content-Length")
            value = value.strip()
            if not value.isdigit() or len(value) > 20:
                return ProtocolError(400, "bad Content-Length")
            length = value
        elif name == b"transfer-encoding":
            if coded or value.lower() != b"chunked":
                return ProtocolError(501, "only Transfer-Encoding: chunked is supported")
            coded = True
    if hosts > 1 or (hosts == 0 and version == b"1.1"):
        return ProtocolError(400, "missing or repeated Host header")
    return None


class HttptoolsEngine(ResponseFramer):
    """An `Engine` whose parser is llhttp, through httptools."""

    __slots__ = (
        "_buf",
        "_headers",
        "_keep_alive",
        "_left",
        "_line_ok",
        "_max_count",
        "_max_head",
        "_max_line",
        "_parser",
        "_state",
    )

    #: Every request fed is parsed at once: `next_cycle` has nothing to give.
    holds_back: ClassVar[bool] = False

    def __init__(self, limits: HeadLimits) -> None:
        super().__init__()
        self._max_line = limits.max_request_line
        self._max_head = limits.max_head_bytes
        self._max_count = limits.max_header_count
        # llhttp, made when a head needs it; dropped when it is left mid-message (it never
        # sees bodies) or after an error.
        self._parser: Any = None
        self._state = _HEAD
        # The unfinished head, chunk size line or trailer section, across feeds.
        self._buf = bytearray()
        # The request line of the unfinished head in _buf is complete and within limits.
        self._line_ok = False
        # Bytes left of the Content-Length body, of the chunk, or of the CRLF after a chunk.
        self._left = 0
        self._keep_alive = True
        # Filled by llhttp's one callback while a head is parsed.
        self._headers: list[tuple[bytes, bytes]] = []

    # -- llhttp callbacks ----------------------------------------------------------------
    # Only on_header: the target is sliced from the request line (fewer calls into Python
    # per request), and whether llhttp waits for a body follows from check_head's answer.

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value.strip()))

    # -- input ----------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        if self._buf:
            data = self._resume(data, events)
        elif self._state == _DONE:
            return events
        pos = 0
        size = len(data)
        while pos < size:
            state = self._state
            if state == _HEAD:
                # The usual head ends with CRLF CRLF; llhttp refuses a head whose lines end
                # in bare LF, and _head then looks for an earlier blank line.
                end = data.find(b"\n\r\n", pos) + 3
                if end > 2:
                    used = self._head(data if end == size and not pos else data[pos:end], events)
                else:
                    end = _head_end(data, pos)
                    if end < 0:
                        if self._check_partial(data, pos, events):
                            self._buf += memoryview(data)[pos:]
                        break
                    used = self._head(data[pos:end], events, exact=True)
                if used < 0:
                    break
                pos += used
            elif state == _BODY:
                left = self._left
                if size - pos < left:
                    events.append(BodyData(data[pos:] if pos else data))
                    self._left = left - (size - pos)
                    break
                events.append(BodyData(data if left == size else data[pos : pos + left]))
                pos += left
                self._end_message(events)
            elif state == _CHUNK_DATA:
                left = self._left
                if size - pos < left:
                    events.append(BodyData(data[pos:]))
                    self._left = left - (size - pos)
                    break
                events.append(BodyData(data[pos : pos + left]))
                pos += left
                self._state = _CHUNK_END
                self._left = 2
            elif state == _CHUNK_END:
                # h11 checks the CRLF after chunk data byte by byte, as it comes.
                got = data[pos : pos + self._left]
                start = 2 - self._left
                if got != b"\r\n"[start : start + len(got)]:
                    self._fail(events, 400, "malformed chunk footer")
                    break
                pos += len(got)
                self._left -= len(got)
                if not self._left:
                    self._state = _CHUNK_LINE
            elif state == _DONE:
                break
            else:
                # A chunk size line or the trailer section.
                end = self._unit_end(data, pos, pos)
                if end < 0:
                    if self._check_partial(data, pos, events):
                        self._buf += memoryview(data)[pos:]
                    break
                if not self._unit(data[pos:end], events):
                    break
                pos = end
        return events

    def next_cycle(self) -> list[Event]:
        # Every request fed has been parsed already; nothing is held back.
        return []

    def holds_input(self) -> bool:
        # Whole requests are events already; an unfinished one waits in the buffer.
        return bool(self._buf)

    def _resume(self, data: bytes, events: list[Event]) -> bytes:
        """Finish the unit begun in an earlier feed; return the bytes after it."""
        buf = self._buf
        old = len(buf)
        buf += data
        end = self._unit_end(buf, 0, old)
        if end < 0:
            self._check_partial(buf, 0, events)
            return b""
        unit = bytes(buf[:end])
        buf.clear()
        self._line_ok = False
        if self._state == _HEAD:
            done = self._head(unit, events, exact=True) >= 0
        else:
            done = self._unit(unit, events)
        return data[end - old :] if done else b""

    def _unit_end(self, src: bytes | bytearray, begin: int, scan: int) -> int:
        """Where the head, chunk size line or trailer section at ``src[begin:]`` ends, or -1.

        Bytes before ``scan`` were searched by an earlier feed.
        """
        state = self._state
        if state == _HEAD:
            # A blank line may have begun two bytes before.
            return _head_end(src, max(begin, scan - 2))
        if state == _CHUNK_LINE:
            end = src.find(b"\r\n", max(begin, scan - 1))
            return end + 2 if end >= 0 else -1
        # The trailer section: h11 takes an empty line first, then looks for a blank line.
        if src[begin] == 10:
            return begin + 1
        if src[begin : begin + 2] == b"\r\n":
            return begin + 2
        match = _BLANK_LINE.search(src, max(begin, scan - 2))
        return match.end() if match else -1

    def _check_partial(self, src: bytes | bytearray, pos: int, events: list[Event]) -> bool:
        """Checks on an unfinished unit ``src[pos:]``; return False after an error."""
        length = len(src) - pos
        if self._state == _HEAD:
            if src[pos] < 0x21:
                self._fail(events, 400, "illegal request line")
                return False
            if not self._line_ok:
                limit = self._max_line
                line_end = src.find(b"\n", pos, pos + limit + 2)
                if line_end < 0:
                    if length > limit + 1:
                        self._fail(events, 414, "request line too long")
                        return False
                elif line_end - pos > limit + (src[line_end - 1] == 13):
                    self._fail(events, 414, "request line too long")
                    return False
                else:
                    self._line_ok = True
            # Two bytes more may be the start of the blank line that ends the head.
            if length > self._max_head + 2:
                self._fail(events, 431, "request head too large")
                return False
        elif length > self._max_head:
            # h11 bounds an unfinished chunk size line or trailer section the same way.
            self._fail(events, 431, "chunk header or trailers too large")
            return False
        return True

    def _unit(self, unit: bytes, events: list[Event]) -> bool:
        """Handle a complete chunk size line or trailer section."""
        if self._state == _CHUNK_LINE:
            size = chunk_size(unit)
            if size is None:
                self._fail(events, 400, "illegal chunk header")
                return False
            self._left = size
            self._state = _CHUNK_DATA if self._left else _TRAILER
            return True
        if len(unit) > 2 and not _valid_trailers(unit):
            self._fail(events, 400, "illegal trailer field")
            return False
        self._end_message(events)
        return self._state != _DONE

    def _head(self, head: bytes, events: list[Event], exact: bool = False) -> int:
        """Parse a head up to its blank line; return its length, or -1 after an error.

        Unless ``exact``, ``head`` ends at the first CRLF CRLF, and an earlier bare-LF blank
        line is looked for only if llhttp or the size limit object.
        """
        if head[0] < 0x21:
            self._fail(events, 400, "illegal request line")
            return -1
        line_end = head.find(b"\n")
        if line_end > self._max_line + (head[line_end - 1] == 13):
            self._fail(events, 414, "request line too long")
            return -1
        size = len(head)
        # The limit is on the request line and header lines, not the blank line after them.
        if size - 1 - (head[-2] == 13) > self._max_head:
            end = size if exact else _head_end(head, 0)
            if end < size:
                return self._head(head[:end], events, exact=True)
            self._fail(events, 431, "request head too large")
            return -1
        parser = self._parser
        if parser is None:
            parser = self._parser = HttpRequestParser(self)
        headers: list[tuple[bytes, bytes]] = []
        self._headers = headers
        upgrade = False
        try:
            parser.feed_data(head)
        except HttpParserUpgrade:
            # llhttp stops after an Upgrade or CONNECT head and is then ready for the next
            # message: the body, if any, is framed here like any other.
            upgrade = True
        except HttpParserError:
            parser = self._parser = None
        if parser is not None:
            method = parser.get_method()
            # llhttp accepts only CRLF line ends: the line is method SP target SP HTTP/x.y.
            start = len(method) + 1
            version_at = line_end - 10
            # llhttp also takes several spaces between the parts, and HTTP/0.9's line with
            # no version; h11 takes neither and judges such lines.  (No slice here ends
            # before it starts: compiled, hive/_compiled.py, such a slice of bytes fails.)
            if version_at <= start:
                parser = None
            else:
                target = head[start:version_at]
                if (
                    b" " in target
                    or head[len(method)] != 32
                    or head[version_at : line_end - 4] != b" HTTP/"
                ):
                    parser = None
                version = head[line_end - 4 : line_end - 1]
        if parser is None:
            if not exact:
                end = _head_end(head, 0)
                if end < size:
                    return self._head(head[:end], events, exact=True)
            parsed = _h11_head(head, line_end)
            if isinstance(parsed, ProtocolError):
                self._fail(events, parsed.status, parsed.reason)
                return -1
            method, target, version, headers = parsed
        if len(headers) > self._max_count:
            error = _h11_error(version, headers) or ProtocolError(431, "too many header fields")
            self._fail(events, error.status, error.reason)
            return -1
        # check_target passes origin-form at once unless it has a fragment.
        odd = target[:1] != b"/" or b"#" in target
        bad_target = check_target(method, target) if odd else None
        result = bad_target or check_head(version, headers)
        if isinstance(result, ProtocolError):
            error = _h11_error(version, headers) or result
            self._fail(events, error.status, error.reason)
            return -1
        keep_alive, expect_continue, length = result
        if length != 0 or upgrade:
            # llhttp now waits for a body it will never see, or for what an upgrade brings.
            self._parser = None
        if length is None:
            # As h11 does: a transfer-coding name is case-insensitive.
            headers = [
                (name, value.lower()) if name == b"transfer-encoding" else (name, value)
                for name, value in headers
            ]
            self._state = _CHUNK_LINE
        elif length:
            self._state = _BODY
            self._left = length
        events.append(
            RequestHead(method, target, version, headers, keep_alive, expect_continue, length)
        )
        self._keep_alive = keep_alive
        if length == 0:
            events.append(END)
            if not keep_alive:
                self._state = _DONE
        return size

    def _end_message(self, events: list[Event]) -> None:
        events.append(END)
        # Nothing after a request that closes the connection is a request (RFC 9112, 9.6).
        self._state = _HEAD if self._keep_alive else _DONE

    def _fail(self, events: list[Event], status: int, reason: str) -> None:
        self._state = _DONE
        self._parser = None
        self._buf.clear()
        events.append(ProtocolError(status, reason))
