"""Operations as users meet them: the ops endpoint, metrics, config layers, logs and TLS.

Every test runs real ``hive run`` processes on 127.0.0.1, port 0, with the ops endpoint
on its own port 0, and talks to them with http.client (and ``openssl`` for a certificate).
Workers push their stats once a second, so numbers are polled until they settle, bounded.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import ROOT, HiveProcess

pytestmark = pytest.mark.timeout(60)

EXAMPLE = "examples.site:root"
BIND = ("--bind", "127.0.0.1:0", "--metrics-bind", "127.0.0.1:0")
OPS_LINE = r"ops endpoint on http://127\.0\.0\.1:(\d+)/metrics"
#: How long numbers may take to show up in /metrics (stats come once a second).
SETTLE = 15.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Spawn(Protocol):
    """The ``spawn`` fixture: start ``hive run ARGS`` and (by default) wait until it listens."""

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, wait: bool = True
    ) -> HiveProcess: ...


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start ``hive run ARGS`` (with extra environment variables); stopped by pid after."""
    started: list[HiveProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, wait: bool = True) -> HiveProcess:
        process = HiveProcess(list(args), cwd=ROOT, env=env)
        started.append(process)
        if wait:
            process.wait_listening()
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


# -- helpers ---------------------------------------------------------------------------------


def eventually(check: Callable[[], bool], what: str, timeout: float = SETTLE) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def ops_port(server: HiveProcess) -> int:
    line = server.wait_for_output(OPS_LINE)
    match = re.search(OPS_LINE, line)
    assert match is not None
    return int(match.group(1))


def ops_get(
    server: HiveProcess,
    path: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    timeout: float = 10.0,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request to the ops endpoint: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", ops_port(server), timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.msg, response.read()
    finally:
        conn.close()


def scrape(server: HiveProcess) -> Samples:
    """/metrics in the Prometheus text format, parsed: (sample name, labels) -> value."""
    status, _headers, body = ops_get(server, "/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode("utf-8"))
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (sample, _labels), v in samples.items() if sample == name)


def requests_by_code(samples: Samples) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["method"], dict(labels)["code"]): v
        for (name, labels), v in samples.items()
        if name == "hive_http_requests_total"
    }


@dataclass(frozen=True)
class Reply:
    """A response, read."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes


def fetch(
    server: HiveProcess,
    path: str,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request to the server on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.msg, response.read())
    finally:
        conn.close()


def send_hellos(server: HiveProcess, count: int) -> None:
    for _ in range(count):
        assert fetch(server, "/hello").status == 200


def worker_pids(server: HiveProcess) -> list[int]:
    result = server.ctl("status", "--json", timeout=30)
    assert result.returncode == 0, result.stderr
    return [worker["pid"] for worker in json.loads(result.stdout)["workers"]]


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``hive run ARGS`` to completion (for start-up errors); no --workers added."""
    with tempfile.TemporaryDirectory(prefix="hive-test-") as workdir:
        return subprocess.run(
            [sys.executable, "-m", "hive", "run", *args, "--control", f"{workdir}/hive.ctl"],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The run failed with exactly one ``hive: error:`` line on stderr; return it."""
    assert result.returncode != 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hive: error: "), result.stderr
    return lines[0]


# -- 1. /metrics counts what was sent --------------------------------------------------------


def test_metrics_count_exactly_what_was_sent(spawn: Spawn) -> None:
    """7 GET 200, 3 GET 404 and 2 POST 302 show up exactly, over two workers."""
    server = spawn(EXAMPLE, *BIND, "--workers", "2", "--no-access-log")
    eventually(lambda: value(scrape(server), "hive_workers", state="ready") == 2, "2 ready")
    send_hellos(server, 7)
    for _ in range(3):
        assert fetch(server, "/missing").status == 404
    for _ in range(2):
        response = fetch(
            server,
            "/guestbook",
            method="POST",
            body="name=Ada&text=hi",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status == 302
    expected = {("GET", "200"): 7.0, ("GET", "404"): 3.0, ("POST", "302"): 2.0}
    eventually(lambda: requests_by_code(scrape(server)) == expected, f"counts {expected}")
    time.sleep(1.5)  # another round of stats: the numbers stay put
    samples = scrape(server)
    assert requests_by_code(samples) == expected
    assert value(samples, "hive_http_request_duration_seconds_count") == 12
    assert value(samples, "hive_http_request_duration_seconds_bucket", le="+Inf") == 12
    assert value(samples, "hive_http_request_duration_seconds_sum") > 0
    assert value(samples, "hive_workers", state="ready") == 2
    assert value(samples, "hive_target_workers") == 2
    assert value(samples, "hive_connections_accepted_total") >= 12
    assert total(samples, "hive_worker_requests_total") == 12
    assert value(samples, "hive_worker_restarts_total", reason="crash") == 0


# -- 2. counters survive a crash and a reload ------------------------------------------------


def test_counters_survive_a_worker_crash_and_a_reload(spawn: Spawn) -> None:
    server = spawn(EXAMPLE, *BIND, "--workers", "1", "--no-access-log")
    seen: list[float] = []

    def requests_total() -> float:
        number = total(scrape(server), "hive_http_requests_total")
        seen.append(number)
        return number

    first, second, third = 5, 4, 3
    send_hellos(server, first)
    eventually(lambda: requests_total() == first, f"{first} requests")
    del seen[:-1]  # from here on, never lower than `first`
    [victim] = worker_pids(server)
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        requests_total()
        pids = worker_pids(server)
        samples = scrape(server)
        return victim not in pids and value(samples, "hive_workers", state="ready") == 1

    eventually(replaced, "a new ready worker")
    send_hellos(server, second)
    eventually(lambda: requests_total() == first + second, f"{first + second} requests")
    samples = scrape(server)
    assert value(samples, "hive_worker_restarts_total", reason="crash") == 1

    result = server.ctl("reload", timeout=60)
    assert result.returncode == 0, result.stderr + server.output()
    send_hellos(server, third)
    everything = first + second + third

    def reloaded() -> bool:
        samples = scrape(server)
        seen.append(total(samples, "hive_http_requests_total"))
        return value(samples, "hive_reloads_total", result="success") == 1 and seen[-1] == (
            everything
        )

    eventually(reloaded, f"a reload and {everything} requests")
    samples = scrape(server)
    assert value(samples, "hive_reloads_total", result="failure") == 0
    assert value(samples, "hive_worker_restarts_total", reason="crash") == 1
    assert value(samples, "hive_generation") == 2
    assert value(samples, "hive_http_request_duration_seconds_count") == everything
    assert min(seen) >= first, seen
    assert seen == sorted(seen), f"the total went down: {seen}"


# -- 3. OpenMetrics ---------------------------------------------------------------------------


def test_openmetrics_when_asked_for(spawn: Spawn) -> None:
    server = spawn(EXAMPLE, *BIND, "--no-access-log")
    send_hellos(server, 2)
    eventually(lambda: total(scrape(server), "hive_http_requests_total") == 2, "2 requests")
    accept = {"Accept": "application/openmetrics-text; version=1.0.0"}
    status, headers, body = ops_get(server, "/metrics", headers=accept)
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode("utf-8")
    assert text.endswith("# EOF\n")
    parsed = openmetrics_families(text)  # type: ignore[no-untyped-call]
    families = {family.name: family for family in parsed}
    requests = families["hive_http_requests"]
    assert requests.type == "counter"
    assert [(s.labels, s.value) for s in requests.samples if s.name.endswith("_total")] == [
        ({"method": "GET", "code": "200"}, 2.0)
    ]
    duration = families["hive_http_request_duration_seconds"]
    assert duration.type == "histogram" and duration.unit == "seconds"
    assert families["hive_workers"].type == "gauge"

    status, headers, _body = ops_get(server, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")


# -- 4. /healthz, /readyz, /status -----------------------------------------------------------


def test_health_ready_status_and_errors(spawn: Spawn) -> None:
    server = spawn(EXAMPLE, *BIND, "--no-access-log")
    status, _headers, body = ops_get(server, "/healthz")
    assert status == 200
    eventually(lambda: ops_get(server, "/readyz")[0] == 200, "/readyz 200")
    status, headers, body = ops_get(server, "/status")
    assert status == 200 and headers["Content-Type"] == "application/json"
    data = json.loads(body)
    assert [worker["state"] for worker in data["workers"]] == ["ready"]
    assert data["pid"] == server.pid
    assert ops_get(server, "/nope")[0] == 404
    assert ops_get(server, "/metrics", method="POST")[0] == 405
    # The request was answered and the endpoint keeps serving.
    assert ops_get(server, "/healthz")[0] == 200


SLOW_IMPORT = """
import time

from hive.resource import Resource

time.sleep(3)


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request):
        return b"awake"


root = Resource()
root.putChild(b"hello", Hello())
"""


def test_readyz_is_503_until_a_worker_is_ready(spawn: Spawn, tmp_path: Path) -> None:
    (tmp_path / "slowimport.py").write_text(textwrap.dedent(SLOW_IMPORT))
    args = ["slowimport:root", *BIND, "--app-dir", str(tmp_path), "--boot-timeout", "30"]
    server = spawn(*args, "--no-access-log", wait=False)
    ops_port(server)
    status, _headers, body = ops_get(server, "/readyz")
    assert status == 503, body
    assert ops_get(server, "/healthz")[0] == 200
    status, _headers, body = ops_get(server, "/status")
    assert [worker["state"] for worker in json.loads(body)["workers"]] == ["starting"]
    eventually(lambda: ops_get(server, "/readyz")[0] == 200, "/readyz 200", timeout=30)
    server.wait_listening()
    assert fetch(server, "/hello").body == b"awake"


# -- 5. the ops endpoint does not wait for workers -------------------------------------------

BLOCKING = """
import time
from pathlib import Path

from hive.resource import Resource


class Block(Resource):
    isLeaf = True

    def render_GET(self, request):
        Path(__file__).with_name("blocking").touch()
        time.sleep(5)
        return b"finally"


root = Resource()
root.putChild(b"block", Block())
"""


def test_ops_endpoint_answers_while_the_only_worker_is_blocked(
    spawn: Spawn, tmp_path: Path
) -> None:
    (tmp_path / "blockapp.py").write_text(textwrap.dedent(BLOCKING))
    server = spawn("blockapp:root", *BIND, "--app-dir", str(tmp_path), "--no-access-log")
    eventually(lambda: ops_get(server, "/readyz")[0] == 200, "/readyz 200")
    results: list[bytes] = []

    def block() -> None:
        results.append(fetch(server, "/block").body)

    thread = threading.Thread(target=block, daemon=True)
    thread.start()
    try:
        eventually(lambda: (tmp_path / "blocking").exists(), "the worker to block", timeout=10)
        for path in ("/metrics", "/healthz", "/readyz", "/status"):
            started = time.monotonic()
            status, _headers, _body = ops_get(server, path, timeout=5)
            elapsed = time.monotonic() - started
            assert status == 200 and elapsed < 1.0, (path, status, elapsed)
        assert thread.is_alive()  # the worker really was busy all along
    finally:
        thread.join(20)
    assert results == [b"finally"]


# -- 6. configuration: file, environment, flags ---------------------------------------------


def write_config(path: Path, server_header: str, extra: str = "") -> None:
    path.write_text(
        textwrap.dedent(
            f"""\
            app = "examples.site:root"
            server_header = "{server_header}"
            workers = 1
            bind = ["127.0.0.1:0"]
            no_access_log = true
            """
        )
        + extra
    )


def server_header(server: HiveProcess) -> str | None:
    return fetch(server, "/hello").headers["Server"]


def test_config_file_environment_and_flags(spawn: Spawn, tmp_path: Path) -> None:
    config = tmp_path / "hive.toml"
    write_config(config, "from-file")
    from_file = spawn("--config", str(config))
    assert server_header(from_file) == "from-file"
    env = {"HIVE_SERVER_HEADER": "from-env"}
    from_env = spawn("--config", str(config), env=env)
    assert server_header(from_env) == "from-env"
    from_flag = spawn("--config", str(config), "--server-header", "from-flag", env=env)
    assert server_header(from_flag) == "from-flag"


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.toml"
    write_config(unknown, "x", extra="nope = 1\n")
    result = run_cli("--config", str(unknown))
    assert assert_one_line_error(result) == (
        f"hive: error: config {unknown}: unknown setting 'nope'"
    )

    bad = tmp_path / "bad.toml"
    bad.write_text('app = "examples.site:root"\nbind = ["127.0.0.1:0"]\nworkers = "many"\n')
    line = assert_one_line_error(run_cli("--config", str(bad)))
    assert line.startswith(f"hive: error: config {bad}: workers") and "many" in line

    result = run_cli(EXAMPLE, "--bind", "127.0.0.1:0", env={"HIVE_WORKERS": "many"})
    line = assert_one_line_error(result)
    assert line.startswith("hive: error: environment: workers") and "many" in line


def test_reload_rereads_the_config_file(spawn: Spawn, tmp_path: Path) -> None:
    config = tmp_path / "hive.toml"
    write_config(config, "before")
    server = spawn("--config", str(config))
    assert server_header(server) == "before"
    write_config(config, "after")
    result = server.ctl("reload", timeout=60)
    assert result.returncode == 0, result.stderr + server.output()
    eventually(lambda: server_header(server) == "after", "the new Server header", timeout=10)
    for _ in range(5):
        assert server_header(server) == "after"

    # A file broken since start: the reload is refused and the old settings keep serving.
    write_config(config, "broken", extra="nope = 1\n")
    result = server.ctl("reload", timeout=60)
    assert result.returncode != 0 and "unknown setting 'nope'" in result.stderr
    assert server_header(server) == "after"


# -- 7, 8. the JSON access log ---------------------------------------------------------------


def wait_for_log(path: Path, count: int) -> list[dict[str, Any]]:
    """The first ``count`` lines of the access log, parsed, once they are written."""
    eventually(lambda: len(read_lines(path)) >= count, f"{count} line(s) in {path}")
    return [json.loads(line) for line in read_lines(path)]


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_json_access_log(spawn: Spawn, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = spawn(EXAMPLE, *BIND, "--log-format", "json", "--access-log", str(log))
    assert fetch(server, "/hello?x=1", headers={"User-Agent": "tester"}).status == 200
    [record] = wait_for_log(log, 1)
    assert record["method"] == "GET" and record["uri"] == "/hello?x=1"
    assert record["status"] == 200 and record["bytes"] == 13
    assert record["client"] == "127.0.0.1" and record["user_agent"] == "tester"

    agent = b'evil" \\n\\r\\u2028{"status": 999} \xe9'
    answer = raw_request(
        server.port,
        b"GET /missing HTTP/1.1\r\nHost: x\r\nUser-Agent: "
        + agent
        + b"\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 404 ")
    records = wait_for_log(log, 2)
    assert len(read_lines(log)) == 2
    assert records[1]["status"] == 404 and records[1]["uri"] == "/missing"
    assert records[1]["user_agent"] == agent.decode("latin-1")


@pytest.mark.parametrize("trusted", [True, False])
def test_forwarded_for_is_believed_only_from_allowed_proxies(
    spawn: Spawn, tmp_path: Path, trusted: bool
) -> None:
    log = tmp_path / "access.log"
    allow = ["--forwarded-allow", "127.0.0.1"] if trusted else []
    server = spawn(EXAMPLE, *BIND, "--log-format", "json", "--access-log", str(log), *allow)
    response = fetch(server, "/hello", headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.status == 200
    [record] = wait_for_log(log, 1)
    assert record["client"] == ("203.0.113.7" if trusted else "127.0.0.1")


# -- 9. TLS -----------------------------------------------------------------------------------


def test_tls(spawn: Spawn, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server = spawn(EXAMPLE, *BIND, "--certfile", str(cert), "--keyfile", str(key))
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    for _ in range(3):
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=10, context=context)
        try:
            conn.request("GET", "/hello")
            response = conn.getresponse()
            assert response.status == 200 and response.read() == b"Hello, world!"
            assert isinstance(conn.sock, ssl.SSLSocket) and conn.sock.version() is not None
        finally:
            conn.close()
    # Plain HTTP on the TLS port does not get a page.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            data = b""
        assert b"Hello, world!" not in data
    # The ops endpoint stays plain HTTP.
    assert ops_get(server, "/healthz")[0] == 200


def test_bad_certificate_is_one_line(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    _cert, key = certificate
    missing = tmp_path / "missing.pem"
    result = run_cli(
        EXAMPLE, "--bind", "127.0.0.1:0", "--certfile", str(missing), "--keyfile", str(key)
    )
    line = assert_one_line_error(result)
    assert str(missing) in line
    assert "Traceback" not in result.stderr

    result = run_cli(EXAMPLE, "--bind", "127.0.0.1:0", "--certfile", str(_cert))
    assert "certfile and keyfile" in assert_one_line_error(result)


# -- 10. SIGUSR1 and the error log -----------------------------------------------------------


def test_sigusr1_reopens_the_access_log(spawn: Spawn, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = spawn(EXAMPLE, *BIND, "--access-log", str(log))
    assert fetch(server, "/hello?n=1").status == 200
    eventually(lambda: len(read_lines(log)) == 1, "the first line")
    log.rename(tmp_path / "access.log.1")
    server.signal(signal.SIGUSR1)
    server.wait_for_output("reopening log files")
    assert fetch(server, "/hello?n=2").status == 200
    eventually(lambda: len(read_lines(log)) == 1, "a new access.log with the second line")
    assert "/hello?n=2" in read_lines(log)[0]
    [old] = read_lines(tmp_path / "access.log.1")
    assert "/hello?n=1" in old


def test_sigusr1_keeps_the_workers(spawn: Spawn, tmp_path: Path) -> None:
    server = spawn(EXAMPLE, *BIND, "--access-log", str(tmp_path / "access.log"))
    eventually(lambda: value(scrape(server), "hive_workers", state="ready") == 1, "a worker")
    before = worker_pids(server)
    server.signal(signal.SIGUSR1)
    server.wait_for_output("reopening log files")
    time.sleep(1.5)
    assert fetch(server, "/hello").status == 200
    assert worker_pids(server) == before
    assert "died" not in server.output()
    assert value(scrape(server), "hive_worker_restarts_total", reason="crash") == 0


def test_error_log_file_and_its_reopening(spawn: Spawn, tmp_path: Path) -> None:
    errors = tmp_path / "error.log"
    server = spawn(EXAMPLE, "--bind", "127.0.0.1:0", "--error-log", str(errors), wait=False)
    eventually(lambda: any("ready: 1 worker(s)" in line for line in read_lines(errors)), "ready")
    match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", errors.read_text())
    assert match is not None
    server.urls = [f"http://127.0.0.1:{match.group(1)}"]
    assert fetch(server, "/hello").status == 200
    assert not any("hive." in line for line in server.stderr_lines), server.output()

    errors.rename(tmp_path / "error.log.1")
    server.signal(signal.SIGUSR1)
    eventually(
        lambda: any("reopening log files" in line for line in read_lines(errors)),
        "the supervisor to log into a new error.log",
    )
    assert "listening on" in (tmp_path / "error.log.1").read_text()
    assert "reopening log files" not in (tmp_path / "error.log.1").read_text()
    assert server.stop() == 0
    assert not any("hive." in line for line in server.stderr_lines), server.output()
