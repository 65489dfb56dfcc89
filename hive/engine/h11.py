"""The reference engine: h11, in pure Python.

h11 parses strictly and checks every response it frames. It holds the bytes of a
pipelined request back until the current exchange is over (`next_cycle`).

One documented difference from the httptools engine: h11 has no keep-alive for HTTP/1.0,
so an HTTP/1.0 client's connection is closed after each response, even when it asked for
``Connection: keep-alive``.
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
    ResponsePlan,
    check_head,
    encode_head,
)

_OBS_FOLD = re.compile(rb"\n[ \t]")


class H11Engine:
    """An `Engine` on h11."""

    def __init__(self, limits: HeadLimits) -> None:
        self._limits = limits
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head_bytes)
        self._failed = False
        self._raw = False

    def feed(self, data: bytes) -> list[Event]:
        if self._failed:
            return []
        self._conn.receive_data(data)
        return self._events()

    def next_cycle(self) -> list[Event]:
        if self._failed:
            return []
        self._conn.start_next_cycle()
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
                headers = list(event.headers)
                if len(headers) > self._limits.max_header_count:
                    return self._fail(events, ProtocolError(431, "too many header fields"))
                result = check_head(event.http_version, headers)
                if isinstance(result, ProtocolError):
                    return self._fail(events, result)
                keep_alive, expect_continue, content_length = result
                if event.http_version == b"1.0":
                    # h11 always closes an HTTP/1.0 connection after the response.
                    keep_alive = False
                events.append(
                    RequestHead(
                        event.method,
                        event.target,
                        event.http_version,
                        headers,
                        keep_alive,
                        expect_continue,
                        content_length,
                    )
                )
            elif isinstance(event, h11.ConnectionClosed):
                return events
            else:  # pragma: no cover - h11 sends no other event to a server
                return self._fail(events, ProtocolError(400, f"unexpected {event!r}"))

    def _check_raw_head(self) -> ProtocolError | None:
        """Checks on the raw head that h11 does not make: request line length, obs-fold."""
        pending, _closed = self._conn.trailing_data
        if not pending:
            return None
        limits = self._limits
        limit = limits.max_request_line
        line_end = pending.find(b"\n", 0, limit + 2)
        if line_end < 0:
            if len(pending) > limit + 1:
                return ProtocolError(414, "request line too long")
            return None
        if line_end > limit + (pending[line_end - 1 : line_end] == b"\r"):
            return ProtocolError(414, "request line too long")
        head_end = pending.find(b"\n\r\n", line_end - 1, limits.max_head_bytes + 4)
        if head_end < 0:
            head_end = pending.find(b"\n\n", line_end - 1, limits.max_head_bytes + 4)
        if head_end < 0:
            if len(pending) > limits.max_head_bytes:
                return ProtocolError(431, "request head too large")
            return None
        if head_end + 1 > limits.max_head_bytes:
            return ProtocolError(431, "request head too large")
        if _OBS_FOLD.search(pending, line_end, head_end + 1):
            return ProtocolError(400, "obsolete line folding in header")
        return None

    def _fail(self, events: list[Event], error: ProtocolError) -> list[Event]:
        self._failed = True
        events.append(error)
        return events

    def informational(self, status: int, reason: bytes) -> bytes:
        data = self._conn.send(
            h11.InformationalResponse(status_code=status, reason=reason, headers=[])
        )
        return data or b""

    def start_response(self, plan: ResponsePlan) -> bytes:
        conn = self._conn
        if conn.our_state is not h11.SEND_RESPONSE and conn.their_state is not h11.ERROR:
            # No request to answer (a head that timed out half-way): h11 would refuse, so
            # this one response, always fixed-length and closing, is framed by hand.
            self._raw = True
            return encode_head(plan)
        data = conn.send(
            h11.Response(status_code=plan.status, reason=plan.reason, headers=plan.headers)
        )
        return data or b""

    def body(self, data: bytes) -> bytes:
        if self._raw:
            return data
        return self._conn.send(h11.Data(data=data)) or b""

    def end_response(self) -> bytes:
        if self._raw:
            return b""
        return self._conn.send(h11.EndOfMessage()) or b""
