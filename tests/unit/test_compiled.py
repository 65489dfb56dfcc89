"""The two builds (hive/_compiled.py): which one runs, and what compiling must not change.

`make test` runs the suite twice, with HIVE_EXPECT_BUILD=python on the sources and
HIVE_EXPECT_BUILD=mypyc on a copy whose hot modules mypyc compiled; every test here then
checks the compiled classes too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hive
from hive._accesslog import AccessLog
from hive._compiled import MODULES, build
from hive.engine import ResponseFramer, ResponsePlan
from hive.http_headers import Headers
from hive.iweb import IRequest
from hive.resource import Resource
from hive.server import Request, Site
from tests.unit.harness import Harness


def test_the_build_is_the_one_asked_for() -> None:
    expected = os.environ.get("HIVE_EXPECT_BUILD")
    if not expected:
        pytest.skip("HIVE_EXPECT_BUILD is not set (make test sets it)")
    assert build() == expected


def test_every_compiled_module_is_a_source_file() -> None:
    root = Path(hive.__file__).parent.parent
    for path in MODULES:
        assert (root / path).is_file(), path


class MyHeaders(Headers):
    """A user's Headers, as Twisted programs subclass it."""

    def names(self) -> list[bytes]:
        return sorted(self._raw)


def test_headers_can_be_subclassed() -> None:
    headers = MyHeaders._from_pairs([(b"b", b"2"), (b"a", b"1"), (b"a", b"3")])
    assert type(headers) is MyHeaders
    assert headers.names() == [b"a", b"b"]
    assert headers.getRawHeaders(b"a") == [b"1", b"3"]
    copied = headers.copy()
    assert type(copied) is MyHeaders
    assert copied == headers


class Shouting(ResponseFramer):
    """An engine's serializer made outside hive's compiled modules."""

    def body(self, data: bytes) -> bytes:
        return super().body(data.upper())


def test_the_response_framer_can_be_subclassed() -> None:
    framer = Shouting()
    plan = ResponsePlan(200, b"OK", [(b"Content-Length", b"2")], True, False, 2, True)
    assert framer.start_response(plan) == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
    assert framer.body(b"hi") == b"HI"


class TaggedRequest(Request):
    tag = b"mine"


class TaggedSite(Site):
    requestFactory = TaggedRequest


class Echo(Resource):
    isLeaf = True

    def render_GET(self, request: IRequest) -> bytes:
        assert isinstance(request, TaggedRequest)
        request.note = b"set by the application"  # type: ignore[attr-defined]
        return bytes(request.tag + b" " + request.note)  # type: ignore[attr-defined]


def test_user_subclasses_of_request_site_and_resource_serve() -> None:
    response = Harness(TaggedSite(Echo())).get("/")
    assert response.status == 200
    assert response.body == b"mine set by the application"


class Lines(AccessLog):
    """An access log kept in memory, as a test or an embedding application might make."""

    def __init__(self) -> None:
        super().__init__("memory", None, None)
        self.lines: list[bytes] = []

    def log_bytes(self, line: bytes) -> None:
        self.lines.append(line)


def test_the_access_log_can_be_subclassed() -> None:
    log = Lines()
    Harness(Site(Echo(), access_log=log, requestFactory=TaggedRequest)).get("/x")
    (line,) = log.lines
    assert line.startswith(b"192.0.2.7 - - [")
    assert line.endswith(b'"GET /x HTTP/1.1" 200 27 "-" "-"\n')
