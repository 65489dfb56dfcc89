"""The reference engine: h11, in pure Python.

h11 parses strictly; hive uses it for the request side only.  Responses are framed by the
shared `ResponseFramer` (h11's own send path costs as much again as its parser, and hive's
plans and headers are already checked), so each exchange gets a fresh h11 parser that
starts from the bytes the last one held back.  That also gives HTTP/1.0 clients
keep-alive, which h11 itself does not offer.
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
    check_target,
)

_OBS_FOLD = re.compile(rb"\n[ \t]")
_BLANK_LINE = re.compile(rb"\n\r?\n")


class H11Engine(ResponseFramer):
    """An `Engine` whose parser is h11."""

    __slots__ = ("_conn", "_failed", "_limits")

    def __init__(self, limits: HeadLimits) -> None:
        super().__init__()
        self._limits = limits
        self._conn = self._new_parser()
        self._failed = False

    def _new_parser(self) -> h11.Connection:
        # The head limit is enforced exactly in _check_raw_head; h11's own is a backstop,
        # set past it so that it never answers first.
        limit = self._limits.max_head_bytes + 4
        return h11.Connection(h11.SERVER, max_incomplete_event_size=limit)

    def feed(self, data: bytes) -> list[Event]:
        if self._failed:
            return []
        self._conn.receive_data(data)
        return self._events()

    def next_cycle(self) -> list[Event]:
        if self._failed:
            return []
        pending, _closed = self._conn.trailing_data
        self._conn = self._new_parser()
        if not pending:
            return []
        self._conn.receive_data(pending)
        return self._events()

    def _events(self) -> list[Event]:
        conn = self._conn
        events: list[Event] = []
        while True:
            if conn.their_state is h11.IDLE:
                error = self._check_raw_head()
                if error is not None:
                    return self._fail(events, error)
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                return self._fail(events, ProtocolError(exc.error_status_hint, str(exc)))
            if event is h11.NEED_DATA or event is h11.PAUSED:
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
            else:  # pragma: no cover - h11 gives a server no other event
                return events

    def _head(self, event: h11.Request) -> RequestHead | ProtocolError:
        headers = list(event.headers)
        if len(headers) > self._limits.max_header_count:
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

    def _check_raw_head(self) -> ProtocolError | None:
        """What h11 does not check: request line and head length, obs-fold."""
        pending, _closed = self._conn.trailing_data
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
        return None

    def _fail(self, events: list[Event], error: ProtocolError) -> list[Event]:
        self._failed = True
        events.append(error)
        return events
