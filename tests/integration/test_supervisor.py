"""The supervisor as users meet it: real ``hive run`` processes, real clients, real signals.

Load comes from wrk (one thread, eight connections, a few seconds); every failure message
shows wrk's output and the hive's log, so a red test says what the clients saw and what
the supervisor did.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from hive._compiled import build
from tests.integration.conftest import ROOT, HiveProcess

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")

EXAMPLE = "examples.site:root"
Status = dict[str, Any]


# -- load ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reported."""

    output: str
    returncode: int
    requests: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    non_2xx: int

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts


_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def parse_wrk(output: str, returncode: int = 0) -> WrkResult:
    """Read wrk's report; an absent error line means zero errors of that kind."""
    requests = _REQUESTS.search(output)
    if requests is None:
        raise AssertionError(f"cannot read wrk's output (exit status {returncode}):\n{output}")
    errors = _SOCKET_ERRORS.search(output)
    connect, read, write, timeout = (int(n) for n in errors.groups()) if errors else (0,) * 4
    non_2xx = _NON_2XX.search(output)
    return WrkResult(
        output=output,
        returncode=returncode,
        requests=int(requests.group(1)),
        connect_errors=connect,
        read_errors=read,
        write_errors=write,
        timeouts=timeout,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


class Wrk:
    """``wrk -t1 -c8 -dSECONDSs --latency URL`` in the background, started at once."""

    def __init__(self, url: str, seconds: int, connections: int = 8) -> None:
        self.seconds = seconds
        # wrk's own per-request timeout is 2 s; a busy two-core machine needs more slack, and
        # a request stuck for 5 s still counts as a timeout error.
        self.args = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "--latency",
            url,
        ]
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.result: WrkResult | None = None

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self) -> WrkResult:
        """Wait for wrk to finish (bounded) and parse its report."""
        try:
            output, _ = self.proc.communicate(timeout=self.seconds + 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            output, _ = self.proc.communicate()
            raise AssertionError(f"wrk did not finish in time:\n{output}") from None
        self.result = parse_wrk(output, self.proc.returncode)
        return self.result

    def stop(self, after: float = 1.0) -> WrkResult:
        """Let the load go on ``after`` more seconds, then stop wrk (SIGINT: it stops and
        prints its report) and parse the report.  A test that acts under load starts wrk
        for longer than it could need and stops it when done, so a slow machine makes the
        run longer, never the actions outlast the load."""
        assert self.running, "wrk ended before the test was done with it"
        time.sleep(after)
        self.proc.send_signal(signal.SIGINT)
        return self.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


#: wrk's duration for tests that stop it themselves (Wrk.stop): longer than any test needs.
LONG_LOAD = 90


@contextmanager
def wrk(url: str, seconds: int, connections: int = 8) -> Iterator[Wrk]:
    """A running wrk, always waited for, killed if the test leaves early."""
    load = Wrk(url, seconds, connections)
    try:
        yield load
    finally:
        load.close()


def report(server: HiveProcess, load: Wrk | WrkResult | None = None) -> str:
    """wrk's and hive's output, for failure messages."""
    result = load.result if isinstance(load, Wrk) else load
    text = f"\n--- wrk ---\n{result.output}" if result is not None else ""
    return f"{text}\n--- hive ---\n{server.output()}"


def assert_no_failures(server: HiveProcess, result: WrkResult, minimum: int = 100) -> None:
    assert result.returncode == 0, f"wrk failed{report(server, result)}"
    assert result.requests >= minimum, f"wrk made too few requests{report(server, result)}"
    assert result.socket_errors == 0, f"socket errors under load{report(server, result)}"
    assert result.non_2xx == 0, f"non-2xx responses under load{report(server, result)}"


# -- talking to hive -------------------------------------------------------------------------


def start(hive_run: Any, *args: str, app: str = EXAMPLE) -> HiveProcess:
    server: HiveProcess = hive_run(app, "--bind", "127.0.0.1:0", *args)
    return server


def status(server: HiveProcess) -> Status:
    """``hive status --json`` of ``server``."""
    result = server.ctl("status", "--json", timeout=30)
    assert result.returncode == 0, f"hive status failed: {result.stderr}{report(server)}"
    data: Status = json.loads(result.stdout)
    return data


def ready(data: Status) -> list[dict[str, Any]]:
    return [w for w in data["workers"] if w["state"] == "ready"]


def pids(data: Status) -> set[int]:
    return {w["pid"] for w in data["workers"]}


def wait_status(
    server: HiveProcess,
    what: str,
    predicate: Callable[[Status], bool],
    timeout: float = 15.0,
    load: Wrk | None = None,
) -> Status:
    """Poll ``hive status`` until ``predicate`` holds; fail with the last status if not."""
    deadline = time.monotonic() + timeout
    last: Status | None = None
    while True:
        last = status(server)
        if predicate(last):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not within {timeout:g} s: {what}\nlast status: {json.dumps(last)}"
                f"{report(server, load)}"
            )
        time.sleep(0.1)


def serving(count: int, generation: int = 1) -> Callable[[Status], bool]:
    """Exactly ``count`` workers, all ready, all of ``generation``, and nothing else."""

    def check(data: Status) -> bool:
        workers = data["workers"]
        return (
            data["phase"] == "running"
            and data["generation"] == generation
            and len(workers) == count
            and all(w["state"] == "ready" and w["generation"] == generation for w in workers)
        )

    return check


def wait_serving(
    server: HiveProcess, count: int, generation: int = 1, timeout: float = 15.0
) -> Status:
    return wait_status(
        server,
        f"{count} ready worker(s) of generation {generation}",
        serving(count, generation),
        timeout,
    )


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(server: HiveProcess, pids: set[int], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(gone(pid) for pid in pids):
            return
        time.sleep(0.05)
    alive = sorted(pid for pid in pids if not gone(pid))
    raise AssertionError(f"still alive after {timeout:g} s: {alive}{report(server)}")


def write_module(path: Path, source: str) -> None:
    """Write an application module so that the next import surely reads it again.

    The source's mtime is moved forward each time: a rewrite of the same size within the
    same second would otherwise leave the cached bytecode looking current.
    """
    stamp = path.stat().st_mtime + 10 if path.exists() else time.time()
    path.write_text(source)
    os.utime(path, (stamp, stamp))


# -- applications ----------------------------------------------------------------------------

VERSIONED_APP = """
from hive._compiled import build
from hive.resource import Resource


class Version(Resource):
    isLeaf = True

    def render_GET(self, request):
        return {body!r}


root = Version()
"""

BLOCKING_APP = """
import time

from hive.resource import Resource


class Block(Resource):
    isLeaf = True

    def render_GET(self, request):
        time.sleep(60)  # blocks the worker's event loop: no heartbeats any more
        return b"never"


class Other(Resource):
    isLeaf = True

    def render_GET(self, request):
        return b"other"


root = Resource()
root.putChild(b"block", Block())
root.putChild(b"other", Other())
"""

PID_APP = """
import os

from hive.resource import Resource


class Pid(Resource):
    isLeaf = True

    def render_GET(self, request):
        return str(os.getpid()).encode()


root = Pid()
"""


# -- reload ----------------------------------------------------------------------------------


def test_reload_under_load_loses_no_request(hive_run: Any) -> None:
    """Two reloads while wrk runs: no socket error, no error status, new workers after."""
    server = start(hive_run, "--workers", "2", "--no-access-log")
    first = wait_serving(server, 2)
    earlier = pids(first)
    with wrk(f"{server.url}/hello", LONG_LOAD) as load:
        for generation in (2, 3):
            time.sleep(1.0)
            result = server.ctl("reload", timeout=60)
            assert result.returncode == 0, f"reload failed: {result.stderr}{report(server)}"
            assert f"reloaded: generation {generation} serving" in result.stdout, result.stdout
            data = status(server)
            assert data["generation"] == generation
            new = {w["pid"] for w in ready(data) if w["generation"] == generation}
            assert len(new) == 2 and not new & earlier, f"{data}{report(server)}"
            earlier |= new
        outcome = load.stop()
    assert_no_failures(server, outcome)
    after = wait_serving(server, 2, generation=3)
    assert pids(after) == new, f"{after}{report(server)}"
    wait_gone(server, earlier - new, timeout=10)


def test_reload_to_broken_code_keeps_the_old_generation(hive_run: Any, tmp_path: Path) -> None:
    """A reload whose new code cannot import fails loudly; the old workers keep serving."""
    module = tmp_path / "versioned.py"
    write_module(module, VERSIONED_APP.format(body=b"v1"))
    server = start(hive_run, "--workers", "2", "--app-dir", str(tmp_path), app="versioned:root")
    first = wait_serving(server, 2)
    assert get(server.port, "/") == (200, b"v1")

    broken = [
        (VERSIONED_APP.format(body=b"v1") + "\ndef broken(:\n", "syntax error"),
        ("import no_such_module_here\n" + VERSIONED_APP.format(body=b"v1"), "no_such_module_here"),
    ]
    for source, error in broken:
        write_module(module, source)
        result = server.ctl("reload", timeout=60)
        assert result.returncode != 0, f"reload of broken code succeeded{report(server)}"
        assert "reload failed" in result.stderr and error in result.stderr.lower(), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        for _ in range(4):
            assert get(server.port, "/") == (200, b"v1"), report(server)
        # The failed generation's workers are gone; the first ones are untouched.
        data = wait_serving(server, 2)
        assert pids(data) == pids(first), f"{data}{report(server)}"

    write_module(module, VERSIONED_APP.format(body=b"v2"))
    result = server.ctl("reload", timeout=60)
    assert result.returncode == 0, f"reload failed: {result.stderr}{report(server)}"
    # A failed reload commits nothing: the generation number is not used up.
    assert "reloaded: generation 2 serving" in result.stdout, result.stdout
    for _ in range(4):
        assert get(server.port, "/") == (200, b"v2"), report(server)
    wait_serving(server, 2, generation=2)


def test_sighup_reloads(hive_run: Any) -> None:
    server = start(hive_run)
    first = wait_serving(server, 1)
    server.signal(signal.SIGHUP)
    after = wait_serving(server, 1, generation=2)
    assert not pids(after) & pids(first)
    server.wait_for_output("reloaded: generation 2 serving")
    assert get(server.port, "/hello") == (200, b"Hello, world!")


# -- replacing workers -----------------------------------------------------------------------


def test_killed_worker_is_replaced_under_load(hive_run: Any) -> None:
    """SIGKILL one of two workers while wrk runs: only its connections fail."""
    server = start(hive_run, "--workers", "2", "--no-access-log")
    first = wait_serving(server, 2)
    victim = next(w["pid"] for w in first["workers"] if w["slot"] == 0)
    with wrk(f"{server.url}/hello", LONG_LOAD) as load:
        time.sleep(1.5)
        os.kill(victim, signal.SIGKILL)
        wait_status(
            server,
            f"a new ready worker in slot 0 instead of {victim}",
            lambda data: (
                victim not in pids(data)
                and any(w["slot"] == 0 for w in ready(data))
                and len(ready(data)) == 2
            ),
            timeout=10,
        )
        outcome = load.stop()
    assert outcome.returncode == 0, report(server, outcome)
    assert outcome.requests >= 100, report(server, outcome)
    # At most the connections that were open on the killed worker fail, once each.
    assert outcome.socket_errors <= 8, report(server, outcome)
    assert outcome.non_2xx == 0, report(server, outcome)
    server.wait_for_output(f"worker {victim} \\(slot 0\\) died \\(signal 9\\)")
    for _ in range(10):
        assert get(server.port, "/hello") == (200, b"Hello, world!"), report(server)


def test_blocked_worker_is_killed_and_replaced(hive_run: Any, tmp_path: Path) -> None:
    """A render that blocks the event loop silences the worker; it is replaced."""
    write_module(tmp_path / "blocking.py", BLOCKING_APP)
    server = start(hive_run, "--timeout", "2", "--app-dir", str(tmp_path), app="blocking:root")
    first = wait_serving(server, 1)
    (blocked,) = pids(first)
    outcome: list[object] = []

    def fetch() -> None:
        try:
            outcome.append(get(server.port, "/block", timeout=30))
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(exc)

    thread = threading.Thread(target=fetch, daemon=True)
    thread.start()
    after = wait_status(
        server,
        f"a new ready worker instead of the blocked {blocked}",
        lambda data: blocked not in pids(data) and len(ready(data)) == 1,
        timeout=15,
    )
    assert pids(after) != {blocked}
    assert get(server.port, "/other") == (200, b"other"), report(server)
    thread.join(20)
    assert not thread.is_alive(), "the blocked request was never cut off"
    assert len(outcome) == 1 and isinstance(outcome[0], Exception), outcome
    server.wait_for_output(f"worker {blocked} .*silent")
    assert gone(blocked)


def test_max_requests_recycles_the_worker(hive_run: Any, tmp_path: Path) -> None:
    """Keep-alive clients see Connection: close from a recycled worker, never an error."""
    write_module(tmp_path / "pidapp.py", PID_APP)
    server = start(
        hive_run,
        "--max-requests",
        "50",
        "--no-access-log",
        "--app-dir",
        str(tmp_path),
        app="pidapp:root",
    )
    first = wait_serving(server, 1)
    (original,) = pids(first)
    served_by: list[int] = []
    failures: list[str] = []
    closes = 0
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline and (len(served_by) < 300 or len(set(served_by)) < 3):
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                failures.append(f"request {len(served_by)}: {exc!r}")
                conn.close()  # the next request opens a new connection
                continue
            if response.status != 200:
                failures.append(f"request {len(served_by)}: status {response.status}")
            served_by.append(int(body))
            if response.will_close:
                closes += 1  # http.client reconnects on the next request
            time.sleep(0.01)
    finally:
        conn.close()
    assert not failures, f"{failures}{report(server)}"
    assert len(served_by) >= 300
    assert len(set(served_by)) >= 2, f"the worker was never recycled{report(server)}"
    assert closes >= 1, "a recycled worker's keep-alive connection was never closed"
    after = wait_status(
        server,
        f"{original} recycled",
        lambda data: original not in pids(data) and len(ready(data)) == 1,
    )
    assert pids(after) != {original}
    wait_gone(server, {original}, timeout=10)
    server.wait_for_output(f"recycling worker {original} .*max_requests")


# -- scaling ---------------------------------------------------------------------------------


def test_scale_up_and_down_under_load(hive_run: Any) -> None:
    server = start(hive_run, "--no-access-log")
    first = wait_serving(server, 1)
    with wrk(f"{server.url}/hello", LONG_LOAD) as load:
        time.sleep(1.0)
        result = server.ctl("scale", "2")
        assert result.returncode == 0, f"{result.stderr}{report(server)}"
        assert "scaling to 2 worker(s)" in result.stdout
        up = wait_status(
            server,
            "2 ready workers in slots 0 and 1",
            lambda data: data["target"] == 2 and {w["slot"] for w in ready(data)} == {0, 1},
        )
        time.sleep(1.0)
        result = server.ctl("scale", "1")
        assert result.returncode == 0, f"{result.stderr}{report(server)}"
        down = wait_status(
            server,
            "1 ready worker and nothing else",
            lambda data: data["target"] == 1 and serving(1)(data),
        )
        outcome = load.stop()
    assert_no_failures(server, outcome)
    wait_gone(server, (pids(first) | pids(up)) - pids(down), timeout=10)


# -- the supervisor process ------------------------------------------------------------------


def test_no_orphans_when_the_supervisor_is_killed(hive_run: Any) -> None:
    server = start(hive_run, "--workers", "2")
    data = wait_serving(server, 2)
    # `python -m hive run` execs nothing: the process the fixture started is the supervisor.
    assert data["pid"] == server.pid
    workers = pids(data)
    for pid in workers:
        assert psutil.Process(pid).ppid() == server.pid
    server.signal(signal.SIGKILL)
    assert server.wait(10) == -signal.SIGKILL
    wait_gone(server, workers, timeout=15)
    # Nobody holds the listening sockets any more.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_status_table_stop_and_status_without_hive(hive_run: Any, tmp_path: Path) -> None:
    server = start(hive_run, "--workers", "2")
    data = wait_serving(server, 2)
    result = server.ctl("status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"hive supervisor pid {server.pid}, generation 1, {build()} build"), (
        result.stdout
    )
    assert lines[1].split() == [
        "SLOT", "PID", "GEN", "STATE", "REQUESTS", "MEMORY", "CPU", "UPTIME"
    ]  # fmt: skip
    rows = [line.split() for line in lines[2:]]
    assert [(row[0], row[1], row[2], row[3]) for row in rows] == [
        (str(w["slot"]), str(w["pid"]), "1", "ready") for w in data["workers"]
    ], result.stdout

    result = server.ctl("stop")
    assert result.returncode == 0, f"{result.stderr}{report(server)}"
    assert result.stdout.strip() == "stopping"
    assert server.wait(20) == 0, report(server)
    wait_gone(server, pids(data), timeout=5)

    missing = str(tmp_path / "nothing-here.ctl")
    for after in (server.ctl("status"), run_hive("status", "--control", missing)):
        assert after.returncode != 0
        lines = after.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hive: error: no hive is running"), (
            after.stderr
        )
        assert after.stdout == ""


def run_hive(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hive", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_graceful_stop_finishes_streams_on_every_worker(hive_run: Any) -> None:
    """SIGTERM while 1 s streams are in flight on two workers: they all complete."""
    server = start(hive_run, "--workers", "2")
    wait_serving(server, 2)
    results: list[object] = []

    def fetch() -> None:
        try:
            results.append(get(server.port, "/countdown?from=10", timeout=20))
        except (OSError, http.client.HTTPException) as exc:
            results.append(exc)

    threads = [threading.Thread(target=fetch, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.4)
    server.signal(signal.SIGTERM)
    for thread in threads:
        thread.join(20)
    assert len(results) == 4, report(server)
    for result in results:
        assert isinstance(result, tuple), f"{result!r}{report(server)}"
        assert result[0] == 200 and result[1].endswith(b"liftoff!\n"), result
    assert server.wait(20) == 0, report(server)
    server.wait_for_output("stopping gracefully")


def test_pid_file(hive_run: Any, tmp_path: Path) -> None:
    path = tmp_path / "hive.pid"
    server = start(hive_run, "--pid-file", str(path))
    wait_serving(server, 1)
    assert path.read_text() == f"{server.pid}\n"
    assert server.stop() == 0
    assert not path.exists()


def test_two_hives_cannot_share_a_port(hive_run: Any) -> None:
    """SO_REUSEPORT would let a second hive of ours join the first's port; it must not."""
    first = start(hive_run, "--workers", "2")
    wait_serving(first, 2)
    second: HiveProcess = hive_run(
        EXAMPLE, "--bind", f"127.0.0.1:{first.port}", "--workers", "2", wait=False
    )
    try:
        code = second.wait(30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the second hive started:{report(second)}") from None
    assert code != 0
    errors = [line for line in second.stderr_lines if line.startswith("hive: error: ")]
    assert errors == [
        f"hive: error: cannot listen on 127.0.0.1:{first.port}: address already in use\n"
    ], report(second)
    assert "Traceback" not in second.output()
    assert get(first.port, "/hello") == (200, b"Hello, world!")
