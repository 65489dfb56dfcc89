"""Twisted's reactor in real workers: installed by the application's import of it, on the
worker's own loop (asyncio and uvloop), so that Twisted's timers, processes and clients
work in resources; Deferred renders; and a worker's stop with Twisted running."""

from __future__ import annotations

import http.client
import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import HiveProcess

APP = '''
import asyncio
import sys

from twisted.internet import reactor, utils
from twisted.internet.task import deferLater
from twisted.web.client import Agent, readBody

from hive.resource import Resource
from hive.server import NOT_DONE_YET


class Later(Resource):
    isLeaf = True

    def render_GET(self, request):
        reactor.callLater(0.3, self.done, request)
        return NOT_DONE_YET

    def done(self, request):
        request.write(b"later")
        request.finish()


class DeferredRender(Resource):
    isLeaf = True

    def render_GET(self, request):
        return deferLater(reactor, 0.2, lambda: b"deferred")


class Process(Resource):
    isLeaf = True

    def render_GET(self, request):
        return utils.getProcessOutput("/bin/echo", ["from", "a", "process"])


class Fetch(Resource):
    """Twisted's own HTTP client, in a worker: fetches /deferred of this server."""

    isLeaf = True

    def render_GET(self, request):
        url = b"http://127.0.0.1:%d/deferred" % request.getHost().port
        return Agent(reactor).request(b"GET", url).addCallback(readBody)


class Treq(Resource):
    """treq, the requests-like client on Twisted, in a worker: fetches /deferred too."""

    isLeaf = True

    def render_GET(self, request):
        import treq

        url = "http://127.0.0.1:%d/deferred" % request.getHost().port
        return treq.get(url).addCallback(treq.content)


class Child(Resource):
    isLeaf = True

    def __init__(self, name):
        super().__init__()
        self.name = name

    def render_GET(self, request):
        return b"child " + self.name


class DeferredChildren(Resource):
    def getChild(self, path, request):
        return deferLater(reactor, 0.1, Child, path)


class Where(Resource):
    isLeaf = True

    def render_GET(self, request):
        loop = type(asyncio.get_running_loop()).__module__
        return f"{reactor.running} {type(reactor).__name__} {loop}".encode()


class Slow(Resource):
    isLeaf = True

    def render_GET(self, request):
        reactor.callLater(1.5, lambda: (request.write(b"finished"), request.finish()))
        return NOT_DONE_YET


root = Resource()
root.putChild(b"later", Later())
root.putChild(b"deferred", DeferredRender())
root.putChild(b"process", Process())
root.putChild(b"fetch", Fetch())
root.putChild(b"treq", Treq())
root.putChild(b"children", DeferredChildren())
root.putChild(b"where", Where())
root.putChild(b"slow", Slow())
'''

PLAIN = """
import sys

from hive.resource import Resource


class Imported(Resource):
    isLeaf = True

    def render_GET(self, request):
        twisted = sorted(name for name in sys.modules if name.startswith("twisted"))
        return repr(twisted).encode()


root = Imported()
"""


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("reactor-app")
    (directory / "reactor_app.py").write_text(textwrap.dedent(APP))
    (directory / "plain_app.py").write_text(textwrap.dedent(PLAIN))
    return directory


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def server(request: pytest.FixtureRequest, app_dir: Path) -> Iterator[HiveProcess]:
    process = HiveProcess(
        ["reactor_app:root", "--bind", "127.0.0.1:0", "--loop", request.param], cwd=app_dir
    )
    process.wait_listening()
    yield process
    process.stop()


def get(port: int, path: str, timeout: float = 15.0) -> tuple[int, bytes, float]:
    began = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read(), time.monotonic() - began
    finally:
        conn.close()


def test_the_reactor_runs_on_the_worker_s_loop(server: HiveProcess) -> None:
    status, body, _ = get(server.port, "/where")
    loop = "uvloop" if "uvloop" in server.args else "asyncio.unix_events"
    assert (status, body) == (200, f"True HiveReactor {loop}".encode())
    server.wait_for_output("Twisted's reactor runs on the worker's event loop")


def test_call_later_and_defer_later(server: HiveProcess) -> None:
    status, body, took = get(server.port, "/later")
    assert (status, body) == (200, b"later") and took >= 0.28
    status, body, took = get(server.port, "/deferred")
    assert (status, body) == (200, b"deferred") and took >= 0.18


def test_get_process_output_again_and_again(server: HiveProcess) -> None:
    for _ in range(5):
        status, body, took = get(server.port, "/process")
        assert (status, body) == (200, b"from a process\n")
        assert took < 1.0  # reaped as it exits, not by the once-a-second tick


def test_a_twisted_client_in_a_worker(server: HiveProcess) -> None:
    assert get(server.port, "/fetch")[:2] == (200, b"deferred")


def test_treq_in_a_worker(server: HiveProcess) -> None:
    assert get(server.port, "/treq")[:2] == (200, b"deferred")


def test_get_child_may_give_a_deferred(server: HiveProcess) -> None:
    assert get(server.port, "/children/abc")[:2] == (200, b"child abc")


def test_requests_on_the_reactor_run_side_by_side(server: HiveProcess) -> None:
    took: list[float] = []
    threads = [
        threading.Thread(target=lambda: took.append(get(server.port, "/later")[2]))
        for _ in range(8)
    ]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(took) == 8 and time.monotonic() - began < 2.0


def test_a_worker_without_twisted_imports_none_of_it(app_dir: Path) -> None:
    process = HiveProcess(["plain_app:root", "--bind", "127.0.0.1:0"], cwd=app_dir)
    try:
        process.wait_listening()
        assert get(process.port, "/")[:2] == (200, b"[]")
    finally:
        process.stop()


def test_stop_waits_for_a_reactor_timer_then_exits_cleanly(app_dir: Path) -> None:
    process = HiveProcess(["reactor_app:root", "--bind", "127.0.0.1:0"], cwd=app_dir)
    try:
        process.wait_listening()
        process.wait_for_output("ready: 1 worker")
        result: list[tuple[int, bytes, float]] = []
        client = threading.Thread(target=lambda: result.append(get(process.port, "/slow")))
        client.start()
        time.sleep(0.5)  # the request is in flight, its timer pending on the reactor
        process.signal(signal.SIGTERM)
        client.join(20)
        assert result and result[0][:2] == (200, b"finished")
        assert process.wait(20) == 0
    finally:
        process.stop()
    output = process.output()
    assert "Traceback" not in output, output
    assert "exited (exit code 0)" in output
