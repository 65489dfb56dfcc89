"""The parts of ``twisted.web.http`` that applications use: status codes, reason
phrases, ``CACHED``, HTTP date helpers, the access log formatters (`combinedLogFormatter`,
`proxiedLogFormatter`) and `HTTPFactory` for programs with a Request class of their own.

Twisted's date functions take a parameter named ``msSinceEpoch`` that is in fact
seconds since the epoch, as returned by ``time.time()``; hive keeps the name and
the meaning.
"""

from __future__ import annotations

import calendar
import datetime
import enum
import re
import time
from collections.abc import Callable
from typing import Any, Final

from zope.interface import provider

from hive.address import UNIXAddress
from hive.iweb import IAccessLogFormatter, IRequest

_CONTINUE: Final = 100
SWITCHING: Final = 101

OK: Final = 200
CREATED: Final = 201
ACCEPTED: Final = 202
NON_AUTHORITATIVE_INFORMATION: Final = 203
NO_CONTENT: Final = 204
RESET_CONTENT: Final = 205
PARTIAL_CONTENT: Final = 206
MULTI_STATUS: Final = 207

MULTIPLE_CHOICE: Final = 300
MOVED_PERMANENTLY: Final = 301
FOUND: Final = 302
SEE_OTHER: Final = 303
NOT_MODIFIED: Final = 304
USE_PROXY: Final = 305
TEMPORARY_REDIRECT: Final = 307
PERMANENT_REDIRECT: Final = 308

BAD_REQUEST: Final = 400
UNAUTHORIZED: Final = 401
PAYMENT_REQUIRED: Final = 402
FORBIDDEN: Final = 403
NOT_FOUND: Final = 404
NOT_ALLOWED: Final = 405
NOT_ACCEPTABLE: Final = 406
PROXY_AUTH_REQUIRED: Final = 407
REQUEST_TIMEOUT: Final = 408
CONFLICT: Final = 409
GONE: Final = 410
LENGTH_REQUIRED: Final = 411
PRECONDITION_FAILED: Final = 412
REQUEST_ENTITY_TOO_LARGE: Final = 413
REQUEST_URI_TOO_LONG: Final = 414
UNSUPPORTED_MEDIA_TYPE: Final = 415
REQUESTED_RANGE_NOT_SATISFIABLE: Final = 416
EXPECTATION_FAILED: Final = 417
IM_A_TEAPOT: Final = 418
MISDIRECTED_REQUEST: Final = 421
UNPROCESSABLE_CONTENT: Final = 422
UPGRADE_REQUIRED: Final = 426
PRECONDITION_REQUIRED: Final = 428
TOO_MANY_REQUESTS: Final = 429
REQUEST_HEADER_FIELDS_TOO_LARGE: Final = 431

INTERNAL_SERVER_ERROR: Final = 500
NOT_IMPLEMENTED: Final = 501
BAD_GATEWAY: Final = 502
SERVICE_UNAVAILABLE: Final = 503
GATEWAY_TIMEOUT: Final = 504
HTTP_VERSION_NOT_SUPPORTED: Final = 505
INSUFFICIENT_STORAGE_SPACE: Final = 507
NOT_EXTENDED: Final = 510
NETWORK_AUTHENTICATION_REQUIRED: Final = 511

# Phrases from RFC 9110 where it defines the code, else from the defining RFC.
RESPONSES: Final[dict[int, bytes]] = {
    _CONTINUE: b"Continue",
    SWITCHING: b"Switching Protocols",
    OK: b"OK",
    CREATED: b"Created",
    ACCEPTED: b"Accepted",
    NON_AUTHORITATIVE_INFORMATION: b"Non-Authoritative Information",
    NO_CONTENT: b"No Content",
    RESET_CONTENT: b"Reset Content",
    PARTIAL_CONTENT: b"Partial Content",
    MULTI_STATUS: b"Multi-Status",
    MULTIPLE_CHOICE: b"Multiple Choices",
    MOVED_PERMANENTLY: b"Moved Permanently",
    FOUND: b"Found",
    SEE_OTHER: b"See Other",
    NOT_MODIFIED: b"Not Modified",
    USE_PROXY: b"Use Proxy",
    TEMPORARY_REDIRECT: b"Temporary Redirect",
    PERMANENT_REDIRECT: b"Permanent Redirect",
    BAD_REQUEST: b"Bad Request",
    UNAUTHORIZED: b"Unauthorized",
    PAYMENT_REQUIRED: b"Payment Required",
    FORBIDDEN: b"Forbidden",
    NOT_FOUND: b"Not Found",
    NOT_ALLOWED: b"Method Not Allowed",
    NOT_ACCEPTABLE: b"Not Acceptable",
    PROXY_AUTH_REQUIRED: b"Proxy Authentication Required",
    REQUEST_TIMEOUT: b"Request Timeout",
    CONFLICT: b"Conflict",
    GONE: b"Gone",
    LENGTH_REQUIRED: b"Length Required",
    PRECONDITION_FAILED: b"Precondition Failed",
    REQUEST_ENTITY_TOO_LARGE: b"Content Too Large",
    REQUEST_URI_TOO_LONG: b"URI Too Long",
    UNSUPPORTED_MEDIA_TYPE: b"Unsupported Media Type",
    REQUESTED_RANGE_NOT_SATISFIABLE: b"Range Not Satisfiable",
    EXPECTATION_FAILED: b"Expectation Failed",
    IM_A_TEAPOT: b"I'm a teapot",
    MISDIRECTED_REQUEST: b"Misdirected Request",
    UNPROCESSABLE_CONTENT: b"Unprocessable Content",
    UPGRADE_REQUIRED: b"Upgrade Required",
    PRECONDITION_REQUIRED: b"Precondition Required",
    TOO_MANY_REQUESTS: b"Too Many Requests",
    REQUEST_HEADER_FIELDS_TOO_LARGE: b"Request Header Fields Too Large",
    INTERNAL_SERVER_ERROR: b"Internal Server Error",
    NOT_IMPLEMENTED: b"Not Implemented",
    BAD_GATEWAY: b"Bad Gateway",
    SERVICE_UNAVAILABLE: b"Service Unavailable",
    GATEWAY_TIMEOUT: b"Gateway Timeout",
    HTTP_VERSION_NOT_SUPPORTED: b"HTTP Version Not Supported",
    INSUFFICIENT_STORAGE_SPACE: b"Insufficient Storage",
    NOT_EXTENDED: b"Not Extended",
    NETWORK_AUTHENTICATION_REQUIRED: b"Network Authentication Required",
}

NO_BODY_CODES: Final = frozenset({NO_CONTENT, NOT_MODIFIED})


def reason_phrase(code: int) -> bytes:
    """The reason phrase for a status code, or b"Unknown Status"."""
    return RESPONSES.get(code, b"Unknown Status")


class CachedType(enum.Enum):
    """The type of ``CACHED``; compare with ``is CACHED``."""

    CACHED = "CACHED"

    def __repr__(self) -> str:
        return "CACHED"


CACHED: Final = CachedType.CACHED
"""Returned by ``Request.setLastModified``/``setETag`` when they set a 304 or 412:
the caller should then write no body."""


_WEEKDAYS: Final = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTHS: Final = (
    b"Jan",
    b"Feb",
    b"Mar",
    b"Apr",
    b"May",
    b"Jun",
    b"Jul",
    b"Aug",
    b"Sep",
    b"Oct",
    b"Nov",
    b"Dec",
)
_MONTH_NUMBERS: Final = {month.lower(): number for number, month in enumerate(_MONTHS, 1)}


def datetimeToString(msSinceEpoch: float | None = None) -> bytes:
    """An IMF-fixdate such as b"Sun, 06 Nov 1994 08:49:37 GMT"; default now."""
    when = time.gmtime(time.time() if msSinceEpoch is None else msSinceEpoch)
    # Built by hand: strftime's day and month names follow the C locale.
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _WEEKDAYS[when.tm_wday],
        when.tm_mday,
        _MONTHS[when.tm_mon - 1],
        when.tm_year,
        when.tm_hour,
        when.tm_min,
        when.tm_sec,
    )


def datetimeToLogString(msSinceEpoch: float | None = None) -> str:
    """A Common Log Format timestamp such as "[10/Oct/2000:13:55:36 +0000]"."""
    when = time.gmtime(time.time() if msSinceEpoch is None else msSinceEpoch)
    month = _MONTHS[when.tm_mon - 1].decode("ascii")
    clock = f"{when.tm_hour:02d}:{when.tm_min:02d}:{when.tm_sec:02d}"
    return f"[{when.tm_mday:02d}/{month}/{when.tm_year:04d}:{clock} +0000]"


_WEEKDAY_PREFIX: Final = rb"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?"
_TIME: Final = rb"(\d{1,2}):(\d{2}):(\d{2})"
_IMF_FIXDATE: Final = re.compile(
    _WEEKDAY_PREFIX + rb"(\d{1,2})\s+([a-z]{3})\s+(\d{4})\s+" + _TIME + rb"(?:\s+gmt)?",
    re.IGNORECASE,
)
_RFC850_DATE: Final = re.compile(
    _WEEKDAY_PREFIX + rb"(\d{1,2})-([a-z]{3})-(\d{2}|\d{4})\s+" + _TIME + rb"(?:\s+gmt)?",
    re.IGNORECASE,
)
_ASCTIME_DATE: Final = re.compile(
    _WEEKDAY_PREFIX + rb"([a-z]{3})\s+(\d{1,2})\s+" + _TIME + rb"\s+(\d{4})",
    re.IGNORECASE,
)


def _full_year(two_digits: int) -> int:
    # RFC 9110 section 5.6.7: a year more than 50 years ahead is in the past century.
    this_year = time.gmtime().tm_year
    year = this_year - this_year % 100 + two_digits
    return year - 100 if year > this_year + 50 else year


def stringToDatetime(s: bytes | str) -> int:
    """Seconds since the epoch for an HTTP date in IMF-fixdate, RFC 850 or asctime form.

    The weekday and the trailing "GMT" may be omitted, as Twisted allows; anything
    else raises ``ValueError``.
    """
    text = s.encode("ascii", "replace") if isinstance(s, str) else s
    text = text.strip()
    if match := _IMF_FIXDATE.fullmatch(text):
        day, month, year, hour, minute, second = match.groups()
        full_year = int(year)
    elif match := _RFC850_DATE.fullmatch(text):
        day, month, year, hour, minute, second = match.groups()
        full_year = _full_year(int(year)) if len(year) == 2 else int(year)
    elif match := _ASCTIME_DATE.fullmatch(text):
        month, day, hour, minute, second, year = match.groups()
        full_year = int(year)
    else:
        raise ValueError(f"not an HTTP date: {s!r}")
    month_number = _MONTH_NUMBERS.get(month.lower())
    if month_number is None:
        raise ValueError(f"not an HTTP date (unknown month): {s!r}")
    fields = (full_year, month_number, int(day), int(hour), int(minute), int(second))
    try:
        datetime.datetime(*fields)
    except ValueError:
        raise ValueError(f"not an HTTP date (out of range): {s!r}") from None
    return calendar.timegm(fields)


# -- access log lines (Twisted's IAccessLogFormatter functions) --------------------------------


@provider(IAccessLogFormatter)
def combinedLogFormatter(timestamp: str, request: IRequest) -> str:
    """Twisted's access log line for ``Site(logFormatter=...)``, the combined log format
    with the client address in quotes::

        "127.0.0.1" - - [30/Jan/2014:00:13:35 +0000] "GET / HTTP/1.1" 200 2753 "-" "curl/8"

    ``timestamp`` comes bracketed from the Site.  Client text is escaped, so no request can
    start a line or leave its quotes.
    """
    client = request.getClientAddress()
    host = client.host if not isinstance(client, UNIXAddress) else "-"
    return _combined(host.encode("latin-1", "replace"), timestamp, request)


@provider(IAccessLogFormatter)
def proxiedLogFormatter(timestamp: str, request: IRequest) -> str:
    """`combinedLogFormatter`, with the client taken from the first X-Forwarded-For address
    (``-`` without one), for a server that only a proxy reaches.  hive's own
    ``--forwarded-allow`` does better: it believes the header only from trusted proxies."""
    forwarded = request.requestHeaders.getRawHeaders(b"x-forwarded-for", [b"-"])[0]
    return _combined(forwarded.split(b",")[0].strip(), timestamp, request)


def _combined(host: bytes, timestamp: str, request: IRequest) -> str:
    from hive._accesslog import quoted  # a cycle at import time: _accesslog needs our dates

    length = request.sentLength
    return '"%s" - - %s "%s %s %s" %d %s "%s" "%s"' % (
        quoted(host),
        timestamp,
        quoted(request.method),
        quoted(request.uri),
        quoted(request.clientproto),
        request.code,
        length or "-",
        quoted(request.getHeader(b"referer") or b"-"),
        quoted(request.getHeader(b"user-agent") or b"-"),
    )


# -- serving with a Request class of one's own (a forward proxy) -------------------------------


class HTTPChannel:
    """Twisted's HTTP connection protocol.  hive's connections speak HTTP themselves: what a
    ported subclass sets, ``requestFactory`` (the Request class its requests are made
    with, as `hive.proxy.Proxy` does), is what hive uses of it."""

    #: A Request subclass (hive.server.Request or one of its subclasses); None for Request.
    requestFactory: Any = None
    factory: HTTPFactory | None = None


class HTTPFactory:
    """Twisted's HTTP server factory, for programs that serve requests with a Request
    class of their own instead of a resource tree (``proxy.Proxy``'s forward proxy).

    ``hive run module:factory`` (an instance, or a class or callable making one) serves
    it: the worker asks ``buildProtocol(None)`` once for the protocol, and makes each
    request with that protocol's ``requestFactory``.  Twisted calls buildProtocol for every
    connection; one whose answer depends on the connection does not port as it is.
    ``logPath`` and ``logFormatter`` are the Site's; ``timeout`` and ``reactor`` are ignored.
    """

    protocol: type[HTTPChannel] = HTTPChannel

    def __init__(
        self,
        logPath: bytes | str | None = None,
        timeout: float | None = None,
        logFormatter: IAccessLogFormatter | Callable[[str, IRequest], str] | None = None,
        reactor: object = None,
    ) -> None:
        self.logPath = logPath
        self.timeout = timeout
        self.logFormatter = logFormatter

    def buildProtocol(self, addr: object) -> HTTPChannel:
        protocol = self.protocol()
        protocol.factory = self
        return protocol
