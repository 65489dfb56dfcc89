from __future__ import annotations

import calendar
import io
import os
import re
import select
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive._accesslog import (
    BUFFER_LIMIT,
    AccessLog,
    AccessLogError,
    Entry,
    combined_bytes,
    combined_line,
    entry_of,
    json_bytes,
    json_line,
)
from hive._clock import CLOCK
from hive.address import IPv4Address, UNIXAddress
from hive.engine import RequestHead
from hive.resource import Resource
from hive.server import Request
from tests.unit.harness import Harness

WHEN = float(calendar.timegm((2000, 10, 10, 13, 55, 36, 0, 0, 0)))

# host ident user [time] "request" status length "referer" "agent"
QUOTED = r'"((?:[^"\\]|\\.)*)"'
COMBINED = re.compile(
    rf"(\S+) - (\S+) \[([^\]]+)\] {QUOTED} (\d{{3}}) (\d+|-) {QUOTED} {QUOTED}",
    re.ASCII,
)


def line(**overrides: object) -> str:
    fields: dict[str, object] = {
        "host": "127.0.0.1",
        "user": "frank",
        "when": WHEN,
        "method": b"GET",
        "uri": b"/a",
        "version": b"HTTP/1.1",
        "status": 200,
        "length": 2326,
        "referer": b"http://ref/",
        "user_agent": b"curl/8.0",
    }
    fields.update(overrides)
    return combined_line(Entry(**fields))  # type: ignore[arg-type]


# -- the line -------------------------------------------------------------------------------


def test_combined_line_format() -> None:
    assert line() == (
        '127.0.0.1 - frank [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.1" 200 2326 '
        '"http://ref/" "curl/8.0"'
    )


def test_missing_fields_are_dashes() -> None:
    text = line(user=None, length=None, referer=None, user_agent=None)
    assert text == '127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.1" 200 - "-" "-"'
    assert line(user="").startswith("127.0.0.1 - - [")


def test_zero_length_is_not_a_dash() -> None:
    assert ' 204 0 "' in line(status=204, length=0)


def test_bare_version_gets_http_prefix() -> None:
    assert '"GET /a HTTP/1.0"' in line(version=b"1.0")


def test_unparsed_request_line_is_a_dash() -> None:
    assert '] "-" 400 ' in line(method=b"", uri=b"", version=b"", status=400)


def test_time_is_utc_with_zero_padding() -> None:
    when = calendar.timegm((2024, 1, 2, 3, 4, 5, 0, 0, 0)) + 0.999
    assert "[02/Jan/2024:03:04:05 +0000]" in line(when=when)
    assert "[02/Jan/2024:03:04:06 +0000]" in line(when=when + 0.002)
    assert "[10/Oct/2000:13:55:36 +0000]" in line()


def test_quotes_backslashes_and_control_bytes_are_escaped() -> None:
    text = line(uri=b'/a"b\\c\r\nX\x00\x7f', user_agent=b'x" "y')
    assert '"GET /a\\"b\\\\c\\x0d\\x0aX\\x00\\x7f HTTP/1.1"' in text
    assert text.endswith('"x\\" \\"y"')
    assert "\n" not in text
    assert "\r" not in text


def test_non_ascii_is_escaped_as_bytes() -> None:
    text = line(uri="/caf\u00e9".encode(), referer=b"\xff")
    assert "/caf\\xc3\\xa9" in text
    assert '"\\xff"' in text
    assert text.isascii()


def test_host_and_user_are_escaped_and_cannot_contain_spaces() -> None:
    text = line(host="1.2.3.4 - x", user='j\u00f6 "\n\u20ac')
    assert text.startswith('1.2.3.4\\x20-\\x20x - j\\xc3\\xb6\\x20\\"\\x0a\\xe2\\x82\\xac [')
    assert COMBINED.fullmatch(text)


def test_forged_line_cannot_appear() -> None:
    forged = b'/ HTTP/1.1" 200 1 "-" "-"\n10.0.0.1 - admin [01/Jan/2000:00:00:00 +0000] "GET /'
    text = line(uri=forged)
    match = COMBINED.fullmatch(text)
    assert match is not None
    assert match.group(1) == "127.0.0.1"
    assert match.group(5) == "200"


@given(
    uri=st.binary(max_size=64),
    referer=st.none() | st.binary(max_size=32),
    agent=st.none() | st.binary(max_size=32),
    user=st.none() | st.text(max_size=16),
    host=st.text(max_size=16),
)
def test_any_input_gives_one_parseable_ascii_line(
    uri: bytes, referer: bytes | None, agent: bytes | None, user: str | None, host: str
) -> None:
    text = line(uri=uri, referer=referer, user_agent=agent, user=user, host=host)
    assert text.isascii()
    assert text.isprintable()
    match = COMBINED.fullmatch(text)
    assert match is not None
    assert match.group(5) == "200"
    assert match.group(6) == "2326"


# -- the log --------------------------------------------------------------------------------


def test_disabled_when_target_is_none() -> None:
    assert AccessLog.open(None) is None


def test_lines_are_buffered_until_flush(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog.open(str(path))
    assert log is not None
    try:
        log.log("one")
        log.log("two")
        assert path.read_text() == ""
        log.flush()
        assert path.read_text() == "one\ntwo\n"
        log.flush()
        assert path.read_text() == "one\ntwo\n"
    finally:
        log.close()


def test_file_is_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_text("old\n")
    log = AccessLog.open(str(path))
    assert log is not None
    log.log("new")
    log.close()
    assert path.read_text() == "old\nnew\n"


def test_full_buffer_is_written_through(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog.open(str(path))
    assert log is not None
    try:
        entry = "x" * 99
        count = BUFFER_LIMIT // 100 + 1
        for _ in range(count):
            log.log(entry)
        assert path.read_text() == (entry + "\n") * count
        log.log("tail")
        assert path.stat().st_size == count * 100
    finally:
        log.close()
    assert path.read_text().endswith("x\ntail\n")


def test_close_flushes_and_later_lines_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog.open(str(path))
    assert log is not None
    log.log("kept")
    log.close()
    log.close()
    log.log("late")
    log.flush()
    assert path.read_text() == "kept\n"
    assert log.dropped_lines == 1


def test_reopen_follows_a_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    rotated = tmp_path / "access.log.1"
    log = AccessLog.open(str(path))
    assert log is not None
    try:
        log.log("before")
        path.rename(rotated)
        log.reopen()
        log.log("after")
        log.flush()
    finally:
        log.close()
    assert rotated.read_text() == "before\n"
    assert path.read_text() == "after\n"


def test_failed_reopen_keeps_the_old_file(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    path = directory / "access.log"
    log = AccessLog.open(str(path))
    assert log is not None
    try:
        path.unlink()
        directory.rmdir()
        with pytest.raises(AccessLogError, match="cannot open access log"):
            log.reopen()
        log.log("still fine")
        log.flush()
        assert log.dropped_lines == 0
    finally:
        log.close()


@pytest.mark.parametrize("where", ["missing/access.log", "."])
def test_unopenable_path_is_one_line_error(tmp_path: Path, where: str) -> None:
    target = str(tmp_path / where)
    with pytest.raises(AccessLogError) as info:
        AccessLog.open(target)
    message = str(info.value)
    assert message.startswith(f"cannot open access log {target!r}: ")
    assert "\n" not in message
    assert isinstance(info.value, OSError)


def test_empty_path_is_an_error() -> None:
    with pytest.raises(AccessLogError, match="empty path"):
        AccessLog.open("")


def test_stdout_without_a_descriptor(capsys: pytest.CaptureFixture[str]) -> None:
    log = AccessLog.open("-")
    assert log is not None
    log.log("to stdout")
    assert capsys.readouterr().out == ""
    log.flush()
    log.close()
    assert capsys.readouterr().out == "to stdout\n"


def test_stdout_with_a_descriptor(capfd: pytest.CaptureFixture[str]) -> None:
    print("printed first", end="\n", flush=False)
    log = AccessLog.open("-")
    assert log is not None
    log.log("logged second")
    log.close()
    assert capfd.readouterr().out == "printed first\nlogged second\n"


def test_stdout_writes_are_cut_at_lines_for_pipes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sizes: list[int] = []
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        sizes.append(len(data))
        return real_write(fd, data)

    with open(tmp_path / "out", "w") as stream:
        monkeypatch.setattr(sys, "stdout", stream)
        log = AccessLog.open("-")
        assert log is not None
        monkeypatch.setattr(os, "write", write)
        for index in range(200):
            log.log(f"{index:04d}" + "y" * 95)
        log.close()
    assert all(size <= select.PIPE_BUF and size % 100 == 0 for size in sizes)
    assert sum(sizes) == 200 * 100
    assert (tmp_path / "out").read_text().splitlines()[-1] == "0199" + "y" * 95


def test_full_disk_is_reported_once_and_lines_dropped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    log = AccessLog.open("/dev/full")
    assert log is not None
    try:
        log.log("a")
        log.log("b")
        log.flush()
        log.log("c")
        log.flush()
    finally:
        log.close()
    assert log.dropped_lines == 3
    err = capsys.readouterr().err
    assert (
        err
        == "hive: access log /dev/full: cannot write (No space left on device); dropping lines\n"
    )


def test_closed_stdout_never_raises(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    log = AccessLog.open("-")
    assert log is not None
    stream.close()
    log.log("lost")
    log.flush()
    log.close()
    assert log.dropped_lines == 1
    assert "access log -: cannot write" in capsys.readouterr().err


def test_recovery_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Flaky(io.StringIO):
        failing = True

        def write(self, text: str) -> int:
            if self.failing:
                raise OSError(28, "No space left on device")
            return super().write(text)

    stream = Flaky()
    monkeypatch.setattr(sys, "stdout", stream)
    log = AccessLog.open("-")
    assert log is not None
    log.log("lost")
    log.flush()
    stream.failing = False
    log.log("kept")
    log.flush()
    stream.failing = True
    for text in ("lost", "lost", "lost"):
        log.log(text)
        log.flush()
    stream.failing = False
    log.log("kept again")
    log.flush()
    assert stream.getvalue() == "kept\nkept again\n"
    assert log.dropped_lines == 4
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "hive: access log -: cannot write (No space left on device); dropping lines",
        "hive: access log -: writing again after dropping 1 line",
        "hive: access log -: cannot write (No space left on device); dropping lines",
        "hive: access log -: writing again after dropping 3 lines",
    ]


def test_json_line_is_one_escaped_object() -> None:
    import json

    line = json_line(
        Entry(
            host="192.0.2.1",
            user=None,
            when=971186136.25,
            method=b"GET",
            uri=b'/a"\n\x00',
            version=b"HTTP/1.1",
            status=200,
            length=12,
            referer=None,
            user_agent=b"agent\r\nforged: line",
            duration=0.0125,
        )
    )
    assert "\n" not in line
    record = json.loads(line)
    assert record == {
        "time": "2000-10-10T13:55:36.250Z",
        "client": "192.0.2.1",
        "user": None,
        "method": "GET",
        "uri": '/a"\n\x00',
        "protocol": "HTTP/1.1",
        "status": 200,
        "bytes": 12,
        "referer": None,
        "user_agent": "agent\r\nforged: line",
        "duration_ms": 12.5,
    }


# -- the line of each request in one step, against the rule ---------------------------------


def finished(
    uri: bytes = b"/hello",
    *,
    referer: bytes | None = None,
    agent: bytes | None = None,
    host: str | None = None,
    method: bytes = b"GET",
    version: bytes = b"1.1",
    code: int = 200,
    length: int = 13,
) -> Request:
    """A real Request, as the access log sees it once the response is over."""
    headers = [(b"host", b"example.com")]
    if referer is not None:
        headers.append((b"referer", referer))
    if agent is not None:
        headers.append((b"user-agent", agent))
    harness = Harness(Resource())
    head = RequestHead(method, uri, version, headers, True, False, 0)
    request = Request(harness.connection, head, io.BytesIO(), harness.site)
    request.code = code
    request.sentLength = length
    if host is not None:
        request.client = IPv4Address("TCP", host, 40000)
    return request


def general_lines(request: Request, now: float) -> tuple[bytes, bytes]:
    entry = entry_of(request, request.code, now)
    return (
        (combined_line(entry) + "\n").encode("utf-8", "backslashreplace"),
        (json_line(entry) + "\n").encode("utf-8", "backslashreplace"),
    )


def fast_lines(request: Request, now: float) -> tuple[bytes, bytes]:
    return (
        combined_bytes(request, request.code, CLOCK),
        json_bytes(request, request.code, CLOCK, now),
    )


ESCAPING_CASES: list[dict[str, Any]] = [
    {},
    {"referer": b"http://example.com/", "agent": b"Mozilla/5.0 (X11; Linux x86_64)"},
    {"referer": b"-", "agent": b""},
    {"uri": b"/a?b=c&d=%22e%22"},
    {"uri": b'/a"b'},
    {"uri": b"/a\\b"},
    {"uri": b"/caf\xc3\xa9"},
    {"uri": b"/\x7f"},
    {"agent": b'x" "y'},
    {"agent": b"tab\there"},
    {"referer": b"\xff"},
    {"referer": b"line\r\nforged"},
    {"agent": b"nul\x00"},
    {"host": "192.0.2.1 - x"},
    {"host": "caf\u00e9"},
    {"host": "\u20ac"},
    {"host": 'q"uote'},
    {"host": ""},
    {"host": "::1"},
    {"method": b"PROPFIND", "code": 207, "length": 0},
    {"version": b"1.0"},
    {"code": 404, "length": 1234567},
]


@pytest.mark.parametrize("case", ESCAPING_CASES)
def test_the_line_of_a_request_is_the_rules_line(case: dict[str, Any]) -> None:
    request = finished(**case)
    now = request.started + 0.0125
    assert fast_lines(request, now) == general_lines(request, now)


def test_a_request_on_a_unix_socket_shows_a_dash() -> None:
    request = finished()
    request.client = UNIXAddress(b"/run/hive.sock")
    now = request.started
    combined, json_text = fast_lines(request, now)
    assert combined.startswith(b"- - - [")
    assert b'"client":"-"' in json_text
    assert (combined, json_text) == general_lines(request, now)


def test_request_headers_changed_by_the_application_are_logged() -> None:
    request = finished(agent=b"from-the-client")
    request.requestHeaders.setRawHeaders(b"user-agent", [b"from-the-app"])
    combined, _ = fast_lines(request, request.started)
    assert combined.endswith(b'"-" "from-the-app"\n')


@given(
    uri=st.binary(min_size=1, max_size=48),
    referer=st.none() | st.binary(max_size=24),
    agent=st.none() | st.binary(max_size=24),
    host=st.none() | st.text(max_size=12),
    when=st.floats(min_value=0, max_value=4e9),
)
def test_any_request_gives_the_rules_line(
    uri: bytes, referer: bytes | None, agent: bytes | None, host: str | None, when: float
) -> None:
    request = finished(uri, referer=referer, agent=agent, host=host)
    request.started = when
    now = when + 0.25
    assert fast_lines(request, now) == general_lines(request, now)
