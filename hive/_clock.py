"""Wall-clock time with the forms of the current second that responses and log lines need.

Every response carries a Date header and every access log line a timestamp, both to the
second: `Clock` formats each once a second, not once a request.  One `CLOCK` serves the
process; a Site takes another (``Site(clock=...)``) in tests, which pass a fixed time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, NamedTuple

from hive.http import datetimeToLogString, datetimeToString

__all__ = ["CLOCK", "Clock", "LogStamps"]


class LogStamps(NamedTuple):
    """One second in the forms access log lines show it."""

    second: int
    #: Common log format, without brackets: ``10/Oct/2000:13:55:36 +0000``.
    common: str
    #: The same, as bytes, for lines built as bytes.
    common_bytes: bytes
    #: ISO 8601 in UTC to the second, for JSON lines: ``2000-10-10T13:55:36``.
    iso_bytes: bytes


def _log_stamps(second: int) -> LogStamps:
    common = datetimeToLogString(second)[1:-1]
    t = time.gmtime(second)
    iso = b"%04d-%02d-%02dT%02d:%02d:%02d" % t[:6]
    return LogStamps(second, common, common.encode("ascii"), iso)


class Clock:
    """The time, from ``now`` (``time.time`` unless a test gives another).

    `http_date` returns the same bytes object all through a second, so a caller that
    builds something from it can tell a new second by identity alone.
    """

    __slots__ = ("_date", "_stamps", "now")

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        #: Seconds since the epoch.
        self.now = now
        # (second, its form): one tuple, so a reader (a thread, say) never pairs a second
        # with another second's text.
        self._date: tuple[int, bytes] = (-1, b"")
        self._stamps = LogStamps(-1, "", b"", b"")

    def http_date(self) -> bytes:
        """The current second as an HTTP date (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
        second = int(self.now())
        cached = self._date
        if cached[0] != second:
            cached = self._date = (second, datetimeToString(second))
        return cached[1]

    def log_stamp(self, when: float) -> str:
        """``when`` as a common log format time; made once for each second in a row."""
        return self.log_stamps(when).common

    def log_stamps(self, when: float) -> LogStamps:
        """The second of ``when`` in every form the access log uses; made once for each
        second in a row."""
        second = int(when)
        cached = self._stamps
        if cached[0] != second:
            cached = self._stamps = _log_stamps(second)
        return cached


#: The process's clock.
CLOCK: Final = Clock()
