"""Wall-clock time with the forms of the current second that responses and log lines need.

Every response carries a Date header and every access log line a timestamp, both to the
second: `Clock` formats each once a second, not once a request.  One `CLOCK` serves the
process; a Site takes another (``Site(clock=...)``) in tests, which pass a fixed time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from hive.http import datetimeToLogString, datetimeToString

__all__ = ["CLOCK", "Clock"]


class Clock:
    """The time, from ``now`` (``time.time`` unless a test gives another).

    `http_date` returns the same bytes object all through a second, so a caller that
    builds something from it can tell a new second by identity alone.
    """

    __slots__ = ("_date", "_stamp", "now")

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        #: Seconds since the epoch.
        self.now = now
        # (second, its form): one tuple, so a reader (a thread, say) never pairs a second
        # with another second's text.
        self._date: tuple[int, bytes] = (-1, b"")
        self._stamp: tuple[int, str] = (-1, "")

    def http_date(self) -> bytes:
        """The current second as an HTTP date (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
        second = int(self.now())
        cached = self._date
        if cached[0] != second:
            cached = self._date = (second, datetimeToString(second))
        return cached[1]

    def log_stamp(self, when: float) -> str:
        """``when`` as a common log format time; made once for each second in a row."""
        second = int(when)
        cached = self._stamp
        if cached[0] != second:
            cached = self._stamp = (second, datetimeToLogString(second)[1:-1])
        return cached[1]


#: The process's clock.
CLOCK: Final = Clock()
