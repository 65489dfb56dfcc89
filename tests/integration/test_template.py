"""The example site's templated page under a real ``hive run``, with real clients."""

from __future__ import annotations

import http.client
import socket
import time
from typing import Any

import pytest

from tests.integration.conftest import HiveProcess

EXAMPLE = "examples.site:root"


@pytest.fixture(params=["h11", "httptools"])
def site(request: pytest.FixtureRequest, hive_run: Any) -> HiveProcess:
    server: HiveProcess = hive_run(EXAMPLE, "--bind", "127.0.0.1:0", "--http", request.param)
    return server


def test_the_templated_page(site: HiveProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    connection.request("GET", "/team?name=%3Cscript%3Ealert(1)%3C/script%3E")
    response = connection.getresponse()
    body = response.read()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert body.startswith(b'<!DOCTYPE html>\n<html lang="en">')
    assert b"<title>The team</title>" in body
    assert b"Hello, <b>&lt;script&gt;alert(1)&lt;/script&gt;</b>." in body
    assert body.count(b"<tr><td>") == 3 and b"<td>Grace</td><td>compilers</td>" in body
    assert "Tomorrow: sunny, 21 \u00b0C.".encode() in body
    assert b"<script>" not in body
    # The connection is kept alive after a streamed page.
    connection.request("GET", "/hello")
    assert connection.getresponse().read() == b"Hello, world!"
    connection.close()


def test_the_index_links_to_it(site: HiveProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    connection.request("GET", "/")
    assert b'href="/team?name=Ada"' in connection.getresponse().read()
    connection.close()


def test_a_client_that_leaves_mid_page_does_not_disturb_the_server(hive_run: Any) -> None:
    server: HiveProcess = hive_run(EXAMPLE, "--bind", "127.0.0.1:0")
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /team HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")  # the head, then gone
    time.sleep(0.2)  # the renderers' waits are over by now
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/team")
    assert b"Margaret" in connection.getresponse().read()
    connection.close()
    assert "Traceback" not in server.output()
