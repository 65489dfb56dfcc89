"""A client that goes away during a NOT_DONE_YET answer is noticed (issue 16), under hive run.

The long poll below writes nothing until it is told the client left; the time it was told
goes to a file, so the test measures how long the server took to notice.
"""

from __future__ import annotations

import socket
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import HiveProcess

APP = """
import asyncio, time
from hive.resource import Resource
from hive.server import NOT_DONE_YET

NOTICED = {noticed!r}


class Poll(Resource):
    isLeaf = True

    def render_GET(self, request):
        def gone(future):
            if future.exception() is not None:
                with open(NOTICED, "a") as out:
                    out.write(f"{{time.time()}}\\n")

        request.notifyFinish().add_done_callback(gone)
        return NOT_DONE_YET


class Slow(Resource):
    isLeaf = True

    async def render_GET(self, request):
        await asyncio.sleep(0.1)
        return b"slow answer"


root = Resource()
root.putChild(b"poll", Poll())
root.putChild(b"slow", Slow())
"""


@pytest.fixture
def server(hive_run: Any, tmp_path: Path, engine: str) -> tuple[HiveProcess, Path, Path]:
    noticed = tmp_path / "noticed"
    access = tmp_path / "access.log"
    (tmp_path / "goneapp.py").write_text(textwrap.dedent(APP.format(noticed=str(noticed))))
    process = hive_run(
        "goneapp:root",
        "--bind",
        "127.0.0.1:0",
        "--app-dir",
        str(tmp_path),
        "--http",
        engine,
        "--access-log",
        str(access),
    )
    return process, noticed, access


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_long_poll_learns_within_a_second_that_its_client_left(
    server: tuple[HiveProcess, Path, Path],
) -> None:
    process, noticed, access = server
    with socket.create_connection(("127.0.0.1", process.port), timeout=10) as sock:
        sock.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)  # the request is under way, nothing written
        assert not noticed.exists()
        closed_at = time.time()
    wait_for(noticed.exists)
    told_at = float(noticed.read_text().split()[0])
    assert told_at - closed_at < 1.0
    # The access log (flushed once a second) says the client went away, not 200.
    wait_for(lambda: access.exists() and "/poll" in access.read_text())
    line = next(line for line in access.read_text().splitlines() if "/poll" in line)
    assert '"GET /poll HTTP/1.1" 499 ' in line


def test_half_closed_client_still_gets_a_prompt_answer(
    server: tuple[HiveProcess, Path, Path],
) -> None:
    """``shutdown(SHUT_WR)`` after a whole request: answers ready within the grace arrive."""
    process, _noticed, _access = server
    for path in (b"/slow", b"/nothing-here"):
        with socket.create_connection(("127.0.0.1", process.port), timeout=10) as sock:
            sock.sendall(b"GET " + path + b" HTTP/1.0\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        status = int(data.split(b" ", 2)[1])
        assert status == (200 if path == b"/slow" else 404), data[:200]
        if path == b"/slow":
            assert data.endswith(b"slow answer")
