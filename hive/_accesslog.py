"""The access log: one line per request in the combined log format of Apache and nginx.

Every byte a client controls is escaped, so a request can neither start a new log line nor
break out of a quoted field. Lines are buffered in memory and written in whole lines; the
worker calls `AccessLog.flush` from a timer and at shutdown.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import sys
import time
from typing import TextIO

from hive._clock import CLOCK

__all__ = ["AccessLog", "AccessLogError", "combined_line", "quoted"]

#: `AccessLog.log` writes through once this many characters are buffered.
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


class AccessLogError(OSError):
    """The access log cannot be opened. The message is one line."""


def combined_line(
    *,
    host: str,
    user: str | None,
    when: float,
    method: bytes,
    uri: bytes,
    version: bytes,
    status: int,
    length: int | None,
    referer: bytes | None,
    user_agent: bytes | None,
) -> str:
    """Format one request, without a line end::

        127.0.0.1 - frank [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.1" 200 2326 "-" "curl/8.0"

    `when` is a Unix time, shown in UTC. `version` may be ``b"HTTP/1.1"`` or just ``b"1.1"``.
    None (and an empty user) is shown as "-"; so is a request line that was never parsed.
    """
    request = _request_line(method, uri, version)
    size = "-" if length is None else str(length)
    return (
        f"{_bare(host)} - {_bare(user or '')} [{CLOCK.log_stamp(when)}] "
        f'"{request}" {status} {size} "{quoted(referer)}" "{quoted(user_agent)}"'
    )


def json_line(
    *,
    host: str,
    user: str | None,
    when: float,
    method: bytes,
    uri: bytes,
    version: bytes,
    status: int,
    length: int | None,
    referer: bytes | None,
    user_agent: bytes | None,
    duration: float | None = None,
) -> str:
    """Format one request as a JSON object on one line (``--log-format json``).

    Bytes are decoded as latin-1 and JSON-escaped, so no input can break the line.
    """
    record: dict[str, object] = {
        "time": _iso_time(when),
        "client": host,
        "user": user,
        "method": method.decode("latin-1"),
        "uri": uri.decode("latin-1"),
        "protocol": version.decode("latin-1"),
        "status": status,
        "bytes": length,
        "referer": referer.decode("latin-1") if referer is not None else None,
        "user_agent": user_agent.decode("latin-1") if user_agent is not None else None,
    }
    if duration is not None:
        record["duration_ms"] = round(duration * 1000, 3)
    return json.dumps(record, separators=(",", ":"))


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
        self._buffer: list[str] = []
        self._buffered = 0
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
        if self._closed:
            self.dropped_lines += 1
            return
        self._buffer.append(line)
        self._buffered += len(line) + 1
        if self._buffered >= BUFFER_LIMIT:
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines."""
        if not self._buffer:
            return
        lines = self._buffer
        self._buffer = []
        self._buffered = 0
        lines.append("")
        try:
            self._write("\n".join(lines))
        except (OSError, ValueError) as exc:
            self._write_failed(exc, len(lines) - 1)
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

    def _write(self, text: str) -> None:
        if self._fd is None:
            assert self._stream is not None
            self._stream.write(text)
            self._stream.flush()
            return
        if self._stream is not None:
            # Whatever else was printed to stdout goes out first, keeping the order.
            self._stream.flush()
            # Pipe writes of at most PIPE_BUF bytes are atomic: lines from several workers
            # sharing one stdout pipe then never interleave mid-line.
            _write_all(self._fd, text.encode("utf-8", "backslashreplace"), select.PIPE_BUF)
        else:
            # O_APPEND files: one write(2) per flush keeps each worker's lines whole.
            data = text.encode("utf-8", "backslashreplace")
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


def _write_all(fd: int, data: bytes, chunk: int) -> None:
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
