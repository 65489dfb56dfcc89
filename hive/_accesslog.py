"""The access log: one line per request, in the combined log format of Apache and nginx or
as a JSON object.

Every byte a client controls is escaped, so a request can neither start a new log line nor
break out of a quoted field.  Lines are buffered in memory as bytes and written in whole
lines; the worker calls `AccessLog.flush` from a timer and at shutdown.

Two ways to a line, one result.  `combined_line` and `json_line` format an `Entry` and
escape every field: they are the rule.  `combined_bytes` and `json_bytes`, which
`Site.log` calls for each request, read the finished request and format the line as bytes
in one step, then look at it once (`_plain`): when no field held a byte that needs
escaping, which is nearly always, that line is the rule's line; otherwise the rule makes
it.  tests/unit/test_accesslog.py checks that they agree on every escaping case.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import sys
import time
from dataclasses import dataclass
from typing import Final, TextIO

from mypy_extensions import mypyc_attr

from hive._clock import CLOCK, Clock
from hive.address import UNIXAddress
from hive.iweb import IRequest

__all__ = [
    "AccessLog",
    "AccessLogError",
    "Entry",
    "combined_bytes",
    "combined_line",
    "entry_of",
    "json_bytes",
    "json_line",
    "quoted",
]

#: `AccessLog.log` writes through once this many bytes are buffered.
BUFFER_LIMIT = 64 * 1024

# Quoted fields escape control characters, '"', '\' and everything outside ASCII.
# Unquoted fields (host, user) also escape the space, which would split the field.
_QUOTED_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')
_BARE_UNSAFE = re.compile(r'[^\x21-\x7e]|["\\]')


def _escape_table(also: str) -> dict[int, str]:
    table = {code: f"\\x{code:02x}" for code in range(256) if not 0x20 <= code <= 0x7E}
    table.update({ord(char): f"\\x{ord(char):02x}" for char in also})
    table[ord('"')] = '\\"'
    table[ord("\\")] = "\\\\"
    return table


_QUOTED_TABLE = _escape_table("")
_BARE_TABLE = _escape_table(" ")


@mypyc_attr(native_class=False)  # compiled (hive._compiled): a builtin base
class AccessLogError(OSError):
    """The access log cannot be opened. The message is one line."""


@dataclass(slots=True)
class Entry:
    """One request as the access log shows it: what `combined_line` and `json_line` format.

    ``when`` is when the request began (a Unix time, shown in UTC); ``version`` may be
    ``b"HTTP/1.1"`` or just ``b"1.1"``; ``duration`` (seconds) is shown by JSON lines only.
    """

    host: str
    user: str | None
    when: float
    method: bytes
    uri: bytes
    version: bytes
    status: int
    length: int | None
    referer: bytes | None
    user_agent: bytes | None
    duration: float | None = None


def entry_of(request: IRequest, status: int, now: float) -> Entry:
    """What the access log shows of a finished ``request`` answered with ``status``, at
    ``now``."""
    client = request.client
    return Entry(
        host="-" if isinstance(client, UNIXAddress) else client.host,
        user=None,
        when=request.started,
        method=request.method,
        uri=request.uri,
        version=request.clientproto,
        status=status,
        length=request.sentLength,
        referer=request.getHeader(b"referer"),
        user_agent=request.getHeader(b"user-agent"),
        duration=now - request.started,
    )


def combined_line(entry: Entry) -> str:
    """Format one request, without a line end::

        127.0.0.1 - frank [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.1" 200 2326 "-" "curl/8.0"

    None (and an empty user) is shown as "-"; so is a request line that was never parsed.
    """
    request = _request_line(entry.method, entry.uri, entry.version)
    size = "-" if entry.length is None else str(entry.length)
    return (
        f"{_bare(entry.host)} - {_bare(entry.user or '')} [{CLOCK.log_stamp(entry.when)}] "
        f'"{request}" {entry.status} {size} "{quoted(entry.referer)}" '
        f'"{quoted(entry.user_agent)}"'
    )


def json_line(entry: Entry) -> str:
    """Format one request as a JSON object on one line (``--log-format json``).

    Bytes are decoded as latin-1 and JSON-escaped, so no input can break the line.
    """
    record: dict[str, object] = {
        "time": _iso_time(entry.when),
        "client": entry.host,
        "user": entry.user,
        "method": entry.method.decode("latin-1"),
        "uri": entry.uri.decode("latin-1"),
        "protocol": entry.version.decode("latin-1"),
        "status": entry.status,
        "bytes": entry.length,
        "referer": _text(entry.referer),
        "user_agent": _text(entry.user_agent),
    }
    if entry.duration is not None:
        record["duration_ms"] = round(entry.duration * 1000, 3)
    return json.dumps(record, separators=(",", ":"))


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def _iso_time(when: float) -> str:
    t = time.gmtime(when)
    millis = int((when % 1) * 1000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{millis:03d}Z"
    )


def _request_line(method: bytes, uri: bytes, version: bytes) -> str:
    if version and not version.startswith(b"HTTP/"):
        version = b"HTTP/" + version
    parts = [quoted(part) for part in (method, uri, version) if part]
    return " ".join(parts) or "-"


def quoted(value: bytes | None) -> str:
    """``value`` escaped for a quoted access log field; None is "-"."""
    if value is None:
        return "-"
    text = value.decode("latin-1")
    if _QUOTED_UNSAFE.search(text) is None:
        return text
    return text.translate(_QUOTED_TABLE)


def _bare(value: str) -> str:
    if not value:
        return "-"
    if _BARE_UNSAFE.search(value) is None:
        return value
    # Characters beyond latin-1 have no single byte to show, so show their UTF-8 bytes.
    raw = value.encode("utf-8", "surrogatepass").decode("latin-1")
    return raw.translate(_BARE_TABLE)


# -- the line of each request, in one step ---------------------------------------------------

# The bytes a field may hold and still be shown as it is, in a quoted combined field and in
# a JSON string alike: printable ASCII but '"' and '\'.  Deleting them from a line leaves
# the line's own quotes and line end only, unless a field held something else.
_PLAIN: Final = bytes(code for code in range(0x20, 0x7F) if code not in b'"\\')

_COMBINED: Final = b'%s - - [%s] "%s %s %s" %d %d "%s" "%s"\n'
_COMBINED_MARKS: Final = b'""""""\n'

_JSON: Final = (
    b'{"time":"%s.%03dZ","client":"%s","user":null,"method":"%s","uri":"%s",'
    b'"protocol":"%s","status":%d,"bytes":%d,"referer":%s,"user_agent":%s,"duration_ms":%r}\n'
)
_JSON_QUOTES: Final = _JSON.count(b'"')
#: What `_plain` leaves of a JSON line with 0, 1 or 2 of referer and user agent present.
_JSON_MARKS: Final = tuple(b'"' * (_JSON_QUOTES + 2 * present) + b"\n" for present in range(3))


def combined_bytes(request: IRequest, status: int, clock: Clock) -> bytes:
    """The combined line of a finished ``request`` answered with ``status``, line end
    included: the line `combined_line` makes (``clock`` formats the time)."""
    client = request.client
    host = b"-" if isinstance(client, UNIXAddress) else client.host.encode("utf-8", "surrogatepass")
    method = request.method
    uri = request.uri
    version = request.clientproto
    referer = request.getHeader(b"referer")
    agent = request.getHeader(b"user-agent")
    line = _COMBINED % (
        host,
        clock.log_stamps(request.started).common_bytes,
        method,
        uri,
        version,
        status,
        request.sentLength,
        b"-" if referer is None else referer,
        b"-" if agent is None else agent,
    )
    if (
        line.translate(None, _PLAIN) == _COMBINED_MARKS
        and host
        and b" " not in host
        and method
        and uri
        and version[:5] == b"HTTP/"
    ):
        return line
    return _encoded(combined_line(entry_of(request, status, request.started)))


def json_bytes(request: IRequest, status: int, clock: Clock, now: float) -> bytes:
    """The JSON line of a finished ``request`` answered with ``status``, at ``now`` (in
    `Request.started`'s time), line end included: the line `json_line` makes."""
    client = request.client
    host = b"-" if isinstance(client, UNIXAddress) else client.host.encode("utf-8", "surrogatepass")
    started = request.started
    referer = request.getHeader(b"referer")
    agent = request.getHeader(b"user-agent")
    line = _JSON % (
        clock.log_stamps(started).iso_bytes,
        int((started % 1) * 1000),
        host,
        request.method,
        request.uri,
        request.clientproto,
        status,
        request.sentLength,
        b"null" if referer is None else b'"%s"' % referer,
        b"null" if agent is None else b'"%s"' % agent,
        round((now - started) * 1000, 3),
    )
    marks = _JSON_MARKS[(referer is not None) + (agent is not None)]
    if line.translate(None, _PLAIN) == marks:
        return line
    return _encoded(json_line(entry_of(request, status, now)))


def _encoded(line: str) -> bytes:
    return line.encode("utf-8", "backslashreplace") + b"\n"


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled (hive._compiled); subclassed
class AccessLog:
    """A buffered access log on stdout or a file. Use `AccessLog.open`.

    Writing never raises: when a write fails (a full disk, a closed stdout) the lines are
    dropped, counted in `dropped_lines`, and the failure is reported once on stderr until a
    write succeeds again.
    """

    def __init__(self, target: str, fd: int | None, stream: TextIO | None) -> None:
        self.target = target
        #: Lines lost to failed writes.
        self.dropped_lines = 0
        self._fd = fd
        self._stream = stream
        self._owns_fd = target != "-"
        # Whole lines, each with its line end.
        self._buffer = bytearray()
        self._failing = False
        self._dropped_before_failing = 0
        self._closed = False

    @classmethod
    def open(cls, target: str | None) -> AccessLog | None:
        """Open `target`: "-" for stdout, a path to append to, or None for no access log."""
        if target is None:
            return None
        if target == "-":
            return cls._open_stdout()
        return cls(target, _open_append(target), None)

    @classmethod
    def _open_stdout(cls) -> AccessLog:
        stream = sys.stdout
        if stream is None:
            raise AccessLogError("cannot log to stdout: there is no stdout")
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            # A stream without a descriptor (an embedding app, a test capture): use it as is.
            return cls("-", None, stream)
        return cls("-", fd, stream)

    def log(self, line: str) -> None:
        """Add one line (without its line end); written at the next flush."""
        self.log_bytes(line.encode("utf-8", "backslashreplace") + b"\n")

    def log_bytes(self, line: bytes) -> None:
        """Add one line, its line end included; written at the next flush."""
        if self._closed:
            self.dropped_lines += 1
            return
        buffer = self._buffer
        buffer += line
        if len(buffer) >= BUFFER_LIMIT:
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines."""
        data = self._buffer
        if not data:
            return
        self._buffer = bytearray()
        try:
            self._write(data)
        except (OSError, ValueError) as exc:
            self._write_failed(exc, data.count(b"\n"))
        else:
            self._write_succeeded()

    def reopen(self) -> None:
        """Flush, then reopen a file target (after logrotate moved it); no-op for stdout.

        On failure the log keeps writing to the old file and AccessLogError is raised.
        """
        self.flush()
        if not self._owns_fd or self._closed:
            return
        fd = _open_append(self.target)
        old, self._fd = self._fd, fd
        if old is not None:
            os.close(old)

    def close(self) -> None:
        """Flush and close. Lines logged afterwards are dropped."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        if self._owns_fd and self._fd is not None:
            os.close(self._fd)
        self._fd = None

    def _write(self, data: bytearray) -> None:
        if self._fd is None:
            assert self._stream is not None
            self._stream.write(data.decode("utf-8"))
            self._stream.flush()
            return
        if self._stream is not None:
            # Whatever else was printed to stdout goes out first, keeping the order.
            self._stream.flush()
            # Pipe writes of at most PIPE_BUF bytes are atomic: lines from several workers
            # sharing one stdout pipe then never interleave mid-line.
            _write_all(self._fd, data, select.PIPE_BUF)
        else:
            # O_APPEND files: one write(2) per flush keeps each worker's lines whole.
            _write_all(self._fd, data, len(data))

    def _write_failed(self, exc: Exception, lines: int) -> None:
        self.dropped_lines += lines
        if self._failing:
            return
        self._failing = True
        self._dropped_before_failing = self.dropped_lines - lines
        reason = getattr(exc, "strerror", None) or str(exc)
        _report(f"access log {self.target}: cannot write ({reason}); dropping lines")

    def _write_succeeded(self) -> None:
        if self._failing:
            self._failing = False
            count = self.dropped_lines - self._dropped_before_failing
            lines = f"{count} line{'' if count == 1 else 's'}"
            _report(f"access log {self.target}: writing again after dropping {lines}")


def _open_append(path: str) -> int:
    if not path:
        raise AccessLogError("cannot open access log: empty path")
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as exc:
        raise AccessLogError(f"cannot open access log {path!r}: {exc.strerror or exc}") from exc


def _write_all(fd: int, data: bytes | bytearray, chunk: int) -> None:
    """Write all of `data`, in pieces of at most `chunk` bytes cut after a newline."""
    view = memoryview(data)
    start = 0
    while start < len(data):
        end = len(data)
        if end - start > chunk:
            cut = data.rfind(b"\n", start, start + chunk) + 1
            end = cut or data.find(b"\n", start) + 1 or end
        start += os.write(fd, view[start:end])


def _report(message: str) -> None:
    # stderr may be closed or gone too; there is nobody left to tell.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(f"hive: {message}", file=sys.stderr, flush=True)
