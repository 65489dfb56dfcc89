"""hive.twcgi: the CGI environment and the reading of a script's headers (the scripts
themselves run in tests/integration/test_scripts.py: they are processes)."""

from __future__ import annotations

from typing import Any

import pytest

from hive import twcgi
from hive.iweb import IRequest
from hive.resource import Resource
from hive.server import Request
from tests.unit.harness import Harness, Held


class Environ(twcgi.CGIScript):
    def render(self, request: IRequest) -> bytes:
        self.seen = self.environment(request)
        return b""


def environ_of(target: str, headers: dict[str, str], body: bytes = b"") -> dict[str, str]:
    script = Environ("/srv/cgi/env.cgi")
    root = Resource()
    root.putChild(b"env.cgi", script)
    lines = [f"POST {target} HTTP/1.1", "Host: example.org:8080", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    Harness(root).send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return script.seen


def test_the_cgi_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("HIVE_TEST_SECRET", "s3cret")
    env = environ_of(
        "/env.cgi/extra/path?a=1&b=2",
        {"Content-Type": "text/plain", "X-Thing": "yes", "Cookie": "c=1"},
        b"hello",
    )
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == "/env.cgi"
    assert env["SCRIPT_FILENAME"] == "/srv/cgi/env.cgi"
    assert env["PATH_INFO"] == "/extra/path"
    assert env["QUERY_STRING"] == "a=1&b=2"
    assert env["REQUEST_URI"] == "/env.cgi/extra/path?a=1&b=2"
    assert env["SERVER_NAME"] == "example.org"
    assert env["SERVER_PORT"] == "8080"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "192.0.2.7"
    assert env["CONTENT_LENGTH"] == "5" and env["CONTENT_TYPE"] == "text/plain"
    assert env["HTTP_X_THING"] == "yes" and env["HTTP_COOKIE"] == "c=1"
    assert env["HTTPS"] == "off"
    assert env["PATH"] == "/usr/bin:/bin"
    assert "HIVE_TEST_SECRET" not in env  # only passEnvironment reaches a script


def test_headers_that_would_pose_as_others_are_dropped() -> None:
    env = environ_of("/env.cgi", {"Proxy": "http://evil/", "X_Forwarded_For": "1.2.3.4"})
    assert "HTTP_PROXY" not in env and "PROXY" not in env  # httpoxy
    assert "HTTP_X_FORWARDED_FOR" not in env


def answer_with(head: bytes, line_end: bytes = b"\r\n") -> tuple[bool, Any, Request]:
    held = Held()
    Harness(held).send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    request = held.requests[0]
    return twcgi._apply_headers(head, line_end, request), request.code, request


def test_a_script_s_headers() -> None:
    ok, code, request = answer_with(b"Status: 404 Not Here\r\nContent-Type: text/plain")
    assert ok and code == 404
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"text/plain"]
    ok, code, request = answer_with(b"Location: /elsewhere\nX-A: 1", b"\n")
    assert ok and code == 302
    # A Status line wins over the Location's 302, whatever the order.
    assert answer_with(b"Location: /x\r\nStatus: 301 Moved")[1] == 301
    ok, code, request = answer_with(b"Server: evil\r\nDate: never\r\nno colon here")
    assert ok and code == 200 and not request.responseHeaders.hasHeader(b"server")
    assert answer_with(b"X-Bad: a\x00b")[0] is False
