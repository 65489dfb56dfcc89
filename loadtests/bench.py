"""The "Performance" benchmark: hive against its peers, in server CPU time per request.

Each server runs alone on 127.0.0.1 with one worker process; for each scenario it is
checked once (the answer must be right), warmed up with wrk, then driven by wrk
(``-t1 -c64 --latency``) while psutil reads the CPU time (user + system) of the server's
whole process tree right before and right after the run.  CPU time per request is the
headline: on a shared machine it moves far less than requests per second, which depend
on how much CPU the load generator and the neighbours leave over.  Then hive alone: two
workers against one, the supervisor's own CPU, and how evenly requests spread over two
workers at three connection counts.  Not a test.

    .venv/bin/python -m loadtests.bench --seconds 8
    .venv/bin/python -m loadtests.bench --only hive,uvicorn-httptools --scenarios hello
    .venv/bin/python -m loadtests.bench --only hive,twisted --scenarios template

Servers: hive (httptools + uvloop, its access log on, to a file: hive's default),
hive-nolog (--no-access-log), hive-h11, twisted (epoll reactor), uvicorn-h11 (asyncio),
uvicorn-httptools (uvloop), granian-asgi (its access log off: its default),
granian-asgi-log, granian-rsgi, granian-wsgi, gunicorn-sync, and two floors:
floor-asyncio (a canned answer, no parsing) and floor-httptools (llhttp parses, Python
answers).  After the tables, the targets of the issue "Performance, second round", each
met or not in this run.  --only also takes hive-workers and
hive-spread, the two hive-only sections (they measure the hello scenario).
The apps are in loadtests/apps/, the wrk scripts in loadtests/wrk/.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from loadtests.common import ROOT, Hive, WrkResult, cpu_seconds, free_port, wrk

HELLO = b"Hello, world!"
WRK_SCRIPTS = ROOT / "loadtests" / "wrk"
STATIC_NAME = "1m.bin"
STATIC_CONTENT = bytes(range(256)) * 4096  # 1 MiB
START_TIMEOUT = 30.0  # a server must accept connections within this
CHECK_TIMEOUT = 30.0  # and answer the check request within this
STOP_TIMEOUT = 15.0  # after SIGTERM; then SIGKILL
STATUS_INTERVAL = 1.1  # hive workers report their counters every second


# -- scenarios ------------------------------------------------------------------------------


def _template_page() -> bytes:
    """What /template answers: hive.template and twisted.web.template give the same bytes."""
    import asyncio

    import hive.template
    from loadtests.apps.template_page import pages, table_rows

    page = pages(hive.template)["iteration"](table_rows())
    return b"<!DOCTYPE html>\n" + asyncio.run(hive.template.flattenString(None, page))


TEMPLATE_PAGE = _template_page()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    path: str
    method: str = "GET"
    script: str | None = None  # a lua file in loadtests/wrk
    headers: tuple[str, ...] = ()
    expect: bytes = HELLO  # the body the check request must get back
    body: bytes = b""  # what the check request sends
    # At most this many connections (wrk's -c): a page that costs milliseconds would
    # otherwise wait in line past wrk's timeout, and the slower server count nothing.
    max_connections: int | None = None

    def connections(self, wanted: int) -> int:
        return min(wanted, self.max_connections or wanted)


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("hello", "GET /hello, keep-alive", "/hello"),
        Scenario(
            "hello-close",
            "GET /hello, a new connection per request (Connection: close)",
            "/hello",
            headers=("Connection: close",),
        ),
        Scenario(
            "deep", "GET /deep/1/.../10: ten levels of getChild", "/deep/1/2/3/4/5/6/7/8/9/10"
        ),
        Scenario(
            "post64k",
            "POST /post with a 64 KiB body; the answer is its length",
            "/post",
            method="POST",
            script="post64k.lua",
            expect=b"65536",
            body=b"x" * 65536,
        ),
        Scenario(
            "static1m",
            f"GET /static/{STATIC_NAME}: a 1 MiB file",
            f"/static/{STATIC_NAME}",
            expect=STATIC_CONTENT,
        ),
        Scenario("wsgi", "GET /wsgi from a WSGI hello app", "/wsgi"),
        Scenario("asgi", "GET /asgi from a bare ASGI callable", "/asgi"),
        Scenario(
            "fastapi",
            "GET /fastapi/json: a FastAPI endpoint answering JSON",
            "/fastapi/json",
            expect=b'{"message":"Hello, world!"}',
        ),
        Scenario(
            "template",
            "GET /template: a 1,000-row table rendered from a template (renderElement)",
            "/template",
            expect=TEMPLATE_PAGE,
            max_connections=4,
        ),
        Scenario(
            "pipeline",
            "GET /hello, 16 requests pipelined per connection (latency: per batch)",
            "/hello",
            script="pipeline.lua",
        ),
    ]
}


# -- servers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    name: str
    description: str
    command: Callable[[int, Path], list[str]]  # (port, work directory) -> argv
    requires: tuple[str, ...] = ()  # modules that must be importable
    not_applicable: Mapping[str, str] = field(default_factory=dict)  # scenario -> why
    skipped: Mapping[str, str] = field(default_factory=dict)  # scenario -> what is missing
    root: Path = ROOT  # the source tree it runs from (cwd and PYTHONPATH)

    def why_not(self, scenario: str) -> tuple[str, str] | None:
        if scenario in self.skipped:
            return "skipped", self.skipped[scenario]
        if scenario in self.not_applicable:
            return "n/a", self.not_applicable[scenario]
        return None


PYTHON = sys.executable
NO_TREE = {
    "deep": "answers the path directly: no resource tree",
    "template": "no twisted.web.template (loadtests.template compares Jinja2 in-process)",
}
NOT_WSGI = {"wsgi": "not a WSGI server"}
NOT_ASGI = {"asgi": "not an ASGI server", "fastapi": "not an ASGI server"}


def hive_command(*options: str, access_log: bool = True) -> Callable[[int, Path], list[str]]:
    """hive as a user runs it: with its access log (on by default), here to a file."""

    def command(port: int, workdir: Path) -> list[str]:
        log = ["--access-log", str(workdir / "access.log")] if access_log else ["--no-access-log"]
        return [
            PYTHON, "-m", "hive", "run", "loadtests.apps.hive_app:root",
            "--bind", f"127.0.0.1:{port}", *log,
            "--control", str(workdir / "hive.ctl"), *options,
        ]  # fmt: skip

    return command


def uvicorn_command(http: str, loop: str) -> Callable[[int, Path], list[str]]:
    def command(port: int, workdir: Path) -> list[str]:
        return [
            PYTHON, "-m", "uvicorn", "loadtests.apps.asgi_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--http", http, "--loop", loop, "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip

    return command


def granian_command(interface: str, access_log: bool = False) -> Callable[[int, Path], list[str]]:
    """granian as its users run it: access log off (its default), or on, to stdout."""
    loop = [] if interface == "wsgi" else ["--loop", "uvloop"]
    module = {"asgi": "asgi_app", "rsgi": "rsgi_app", "wsgi": "wsgi_app"}[interface]
    log = "--access-log" if access_log else "--no-access-log"

    def command(port: int, workdir: Path) -> list[str]:
        return [
            PYTHON, "-m", "granian", f"loadtests.apps.{module}:app",
            "--interface", interface, "--workers", "1", *loop,
            "--host", "127.0.0.1", "--port", str(port), "--http", "1", "--no-ws",
            "--backlog", "2048", log, "--log-level", "warning",
        ]  # fmt: skip

    return command


def module_command(module: str) -> Callable[[int, Path], list[str]]:
    def command(port: int, workdir: Path) -> list[str]:
        return [PYTHON, "-m", module, "--port", str(port)]

    return command


def gunicorn_command(port: int, workdir: Path) -> list[str]:
    return [
        PYTHON, "-m", "gunicorn", "-w", "1", "-k", "sync", "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning", "loadtests.apps.wsgi_app:app",
    ]  # fmt: skip


HIVE_MISSING: dict[str, str] = {}
FLOOR = {
    "deep": "a floor: no resource tree",
    "template": "a floor: answers hello only",
    "static1m": "a floor: answers hello only",
    "wsgi": "a floor: not a WSGI server",
    "asgi": "a floor: not an ASGI server",
    "fastapi": "a floor: not an ASGI server",
}

SERVERS = [
    Server(
        "hive",
        "hive, httptools + uvloop",
        hive_command("--workers", "1", "--http", "httptools", "--loop", "uvloop"),
        requires=("httptools", "uvloop"),
        skipped=HIVE_MISSING,
    ),
    Server(
        "hive-nolog",
        "hive, httptools + uvloop, --no-access-log",
        hive_command("--workers", "1", "--http", "httptools", "--loop", "uvloop", access_log=False),
        requires=("httptools", "uvloop"),
        skipped=HIVE_MISSING,
    ),
    Server(
        "hive-h11",
        "hive, h11 + uvloop",
        hive_command("--workers", "1", "--http", "h11", "--loop", "uvloop"),
        requires=("uvloop",),
        skipped=HIVE_MISSING,
    ),
    Server(
        "twisted",
        "Twisted Web, epoll reactor (static.File, WSGIResource)",
        module_command("loadtests.apps.twisted_app"),
        requires=("twisted",),
        not_applicable=NOT_ASGI,
    ),
    Server(
        "uvicorn-h11",
        "uvicorn, h11 + asyncio",
        uvicorn_command("h11", "asyncio"),
        requires=("uvicorn",),
        not_applicable={
            **NO_TREE,
            **NOT_WSGI,
            "static1m": "uvicorn has no static file facility (that is Starlette's)",
        },
    ),
    Server(
        "uvicorn-httptools",
        "uvicorn, httptools + uvloop",
        uvicorn_command("httptools", "uvloop"),
        requires=("uvicorn", "httptools", "uvloop"),
        not_applicable={
            **NO_TREE,
            **NOT_WSGI,
            "static1m": "uvicorn has no static file facility (that is Starlette's)",
        },
    ),
    Server(
        "granian-asgi",
        "granian ASGI, uvloop (static: http.response.pathsend)",
        granian_command("asgi"),
        requires=("granian", "uvloop"),
        not_applicable={**NO_TREE, **NOT_WSGI},
    ),
    Server(
        "granian-asgi-log",
        "granian ASGI, uvloop, --access-log (to stdout, a file here)",
        granian_command("asgi", access_log=True),
        requires=("granian", "uvloop"),
        not_applicable={**NO_TREE, **NOT_WSGI},
    ),
    Server(
        "granian-rsgi",
        "granian RSGI, uvloop (static: response_file)",
        granian_command("rsgi"),
        requires=("granian", "uvloop"),
        not_applicable={**NO_TREE, **NOT_WSGI, **NOT_ASGI},
    ),
    Server(
        "granian-wsgi",
        "granian WSGI (static: the app iterates 64 KiB reads; no wsgi.file_wrapper)",
        granian_command("wsgi"),
        requires=("granian",),
        not_applicable={**NO_TREE, **NOT_ASGI},
    ),
    Server(
        "gunicorn-sync",
        "gunicorn, sync worker (static: wsgi.file_wrapper, sendfile)",
        gunicorn_command,
        requires=("gunicorn",),
        not_applicable={**NO_TREE, **NOT_ASGI},
    ),
    Server(
        "floor-asyncio",
        "floor: uvloop Protocol, canned response, no parsing",
        module_command("loadtests.apps.floor_asyncio"),
        requires=("uvloop",),
        not_applicable={**FLOOR, "post64k": "a floor: does not read bodies"},
    ),
    Server(
        "floor-httptools",
        "floor: uvloop Protocol, httptools parses, Python answers",
        module_command("loadtests.apps.floor_httptools"),
        requires=("httptools", "uvloop"),
        not_applicable=FLOOR,
    ),
]
SECTIONS = ("hive-workers", "hive-spread")
SPREAD_CONNECTIONS = ((8, "25%"), (16, "50%"), (64, "100%"))


# -- running a server -----------------------------------------------------------------------


class BenchError(Exception):
    """A server that would not start or answered wrongly; recorded, and the run goes on."""


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def tree(self) -> psutil.Process:
        return psutil.Process(self.process.pid)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def running(server: Server, static_dir: Path) -> Iterator[Running]:
    """The server on a free port, accepting connections; stopped by pid when done."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{server.name}-"))
    log_path = workdir / "server.log"
    env = {**os.environ, "BENCH_STATIC_DIR": str(static_dir), "PYTHONPATH": str(server.root)}
    try:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                server.command(port, workdir),
                cwd=server.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    except OSError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise BenchError(f"cannot start: {exc}") from exc
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise BenchError(f"exited with status {process.returncode}:\n{log_tail(log_path)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(f"not listening after {START_TIMEOUT:.0f} s") from None
                time.sleep(0.05)
        yield Running(process, port, workdir)
    finally:
        stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, SIGKILL after STOP_TIMEOUT; then make sure no child outlives it (by pid)."""
    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
    _, alive = psutil.wait_procs(family, timeout=STOP_TIMEOUT)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(alive, timeout=STOP_TIMEOUT)


def check(port: int, scenario: Scenario) -> str | None:
    """One request by http.client: BenchError unless the answer is right.

    Returns a note when the server closes a connection the client wanted kept alive.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CHECK_TIMEOUT)
    try:
        headers = dict(h.split(": ", 1) for h in scenario.headers)
        connection.request(scenario.method, scenario.path, scenario.body or None, headers)
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise BenchError(f"check request failed: {exc!r}") from exc
    finally:
        connection.close()
    if response.status != 200 or body != scenario.expect:
        shown = body[:60] if len(body) < 1000 else f"{len(body)} bytes"
        raise BenchError(f"check request: status {response.status}, body {shown!r}")
    if response.will_close and "Connection: close" not in scenario.headers:
        return "closes the connection after every response (no keep-alive)"
    return None


# -- measuring ------------------------------------------------------------------------------


def milliseconds(text: str) -> float | None:
    """wrk's latency ("812.00us", "1.20ms", "2.01s", "1.00m") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        return None
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}[match.group(2)]
    return float(match.group(1)) * scale


def drive(port: int, scenario: Scenario, seconds: int, connections: int) -> WrkResult:
    script = WRK_SCRIPTS / scenario.script if scenario.script else None
    url = f"http://127.0.0.1:{port}{scenario.path}"
    connections = scenario.connections(connections)
    return wrk(url, seconds, connections, script=script, headers=scenario.headers)


def figures(result: WrkResult, cpu: float) -> dict[str, Any]:
    """A row's numbers.  wrk prints a percentile it failed to compute as 0.00us (it does
    under pipelining): shown as "?"."""
    requests = result.requests
    p50, p99 = milliseconds(result.p50), milliseconds(result.p99)
    return {
        "requests": requests,
        "seconds": round(result.seconds, 3),
        "requests_per_second": round(requests / result.seconds, 1) if result.seconds else 0.0,
        "cpu_seconds": round(cpu, 3),
        "cpu_us_per_request": round(cpu / requests * 1e6, 2) if requests else None,
        "p50": result.p50 if p50 else "?",
        "p99": result.p99 if p99 else "?",
        "p50_ms": p50 or None,
        "p99_ms": p99 or None,
        "socket_errors": result.socket_errors,
        "non_2xx": result.non_2xx,
        "errors": result.failures,
    }


def measure(run: Running, scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then one measured wrk run with the server tree's CPU read around it."""
    drive(run.port, scenario, args.warmup, args.connections)
    tree = run.tree
    before = cpu_seconds(tree)
    load_before = os.getloadavg()[0]
    result = drive(run.port, scenario, args.seconds, args.connections)
    used = cpu_seconds(tree) - before
    row = figures(result, used)
    row["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return row


def bench_server(
    server: Server, scenarios: list[Scenario], args: argparse.Namespace, static_dir: Path
) -> list[dict[str, Any]]:
    """Every scenario against one server, started once; a row per scenario."""
    rows: list[dict[str, Any]] = []
    todo = []
    for scenario in scenarios:
        reason = server.why_not(scenario.name)
        if reason:
            rows.append(_row(server, scenario, *reason))
        else:
            todo.append(scenario)
    missing = [m for m in server.requires if importlib.util.find_spec(m) is None]
    if missing and todo:
        why = f"{', '.join(missing)} not installed here (pip install -e '.[fast,bench]')"
        print(f"{server.name}: skipped, {why}", flush=True)
        rows += [_row(server, s, "skipped", why) for s in todo]
        return rows
    if not todo:
        return rows
    print(f"{server.name}: {server.description}", flush=True)
    try:
        with running(server, static_dir) as run:
            for scenario in todo:
                try:
                    note = check(run.port, scenario)
                    row = measure(run, scenario, args)
                except (BenchError, subprocess.SubprocessError, SystemExit) as exc:
                    print(f"  {scenario.name:12} error: {exc}", flush=True)
                    rows.append(_row(server, scenario, "error", str(exc)))
                    continue
                rows.append({**_row(server, scenario, "ok", note), **row})
                print(f"  {scenario.name:12} {_summary(row)}", flush=True)
    except BenchError as exc:  # from starting it: the scenarios catch their own
        print(f"  did not start: {exc}", flush=True)
        rows += [_row(server, s, "error", f"did not start: {exc}") for s in todo]
    return rows


def _row(server: Server, scenario: Scenario, status: str, note: str | None) -> dict[str, Any]:
    return {"server": server.name, "scenario": scenario.name, "status": status, "note": note}


def _summary(row: Mapping[str, Any]) -> str:
    return (
        f"{row['requests_per_second']:9.0f} req/s  {_us(row['cpu_us_per_request'])} CPU µs/req"
        f"  p50 {row['p50']}  p99 {row['p99']}  errors {row['errors']}"
    )


def _us(value: float | None) -> str:
    return "        -" if value is None else f"{value:9.1f}"


# -- hive alone: workers, the supervisor, the spread ----------------------------------------


def hive_server(workers: int) -> Server:
    return Server(
        f"hive-{workers}w",
        f"hive, {workers} workers",
        hive_command("--workers", str(workers), "--http", "httptools", "--loop", "uvloop"),
    )


def worker_counts(run: Running) -> dict[int, int]:
    """Requests served so far by each worker (by pid), once the counters stop moving."""
    hive = Hive(run.process, run.port, str(run.workdir / "hive.ctl"))
    last: dict[int, int] | None = None
    for _ in range(6):
        done = hive.ctl("status", "--json")
        if done.returncode != 0:
            raise BenchError(f"hive status failed: {done.stderr.strip()}")
        counts = {w["pid"]: int(w["requests"]) for w in json.loads(done.stdout)["workers"]}
        if counts == last:
            return counts
        last = counts
        time.sleep(STATUS_INTERVAL)
    raise BenchError("hive's worker counters did not settle")


def bench_hive_workers(args: argparse.Namespace, static_dir: Path) -> list[dict[str, Any]]:
    """hello with one worker, then two: CPU per request, and the supervisor's share.

    The supervisor is the ``hive run`` process, the workers its children.  This section
    reads each process's CPU time from /proc/PID/schedstat, in nanoseconds, where the
    kernel has it: the supervisor uses a few milliseconds a run, below the 10 ms
    resolution of psutil's figures that the other tables use.
    """
    rows = []
    for workers in (1, 2):
        print(f"hive-workers: {workers} worker(s)", flush=True)
        with running(hive_server(workers), static_dir) as run:
            check(run.port, SCENARIOS["hello"])
            drive(run.port, SCENARIOS["hello"], args.warmup, args.connections)
            supervisor = run.tree
            children = supervisor.children(recursive=True)
            before = _own_cpu(supervisor), sum(_own_cpu(c) for c in children)
            result = drive(run.port, SCENARIOS["hello"], args.seconds, args.connections)
            after = _own_cpu(supervisor), sum(_own_cpu(c) for c in children)
        supervisor_cpu = after[0] - before[0]
        workers_cpu = after[1] - before[1]
        row = figures(result, supervisor_cpu + workers_cpu)
        row["workers"] = workers
        row["worker_cpu_us_per_request"] = (
            round(workers_cpu / result.requests * 1e6, 2) if result.requests else None
        )
        row["supervisor_cpu_seconds"] = round(supervisor_cpu, 6)
        row["supervisor_share_of_workers_cpu"] = (
            round(supervisor_cpu / workers_cpu, 6) if workers_cpu else None
        )
        print(
            f"  {'hello':12} {_summary(row)}  supervisor {supervisor_cpu * 1e3:.1f} ms CPU",
            flush=True,
        )
        rows.append(row)
    return rows


def _own_cpu(process: psutil.Process) -> float:
    """CPU seconds of one process (all its threads), not its children."""
    try:
        with open(f"/proc/{process.pid}/schedstat") as stat:
            return int(stat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def bench_hive_spread(args: argparse.Namespace, static_dir: Path) -> list[dict[str, Any]]:
    """Two workers; the coefficient of variation of their request counts per run."""
    rows = []
    print("hive-spread: 2 workers", flush=True)
    with running(hive_server(2), static_dir) as run:
        check(run.port, SCENARIOS["hello"])
        for connections, level in SPREAD_CONNECTIONS:
            drive(run.port, SCENARIOS["hello"], args.warmup, connections)
            before = worker_counts(run)
            cpu_before = cpu_seconds(run.tree)
            result = drive(run.port, SCENARIOS["hello"], args.seconds, connections)
            cpu = cpu_seconds(run.tree) - cpu_before
            after = worker_counts(run)
            if set(before) != set(after):
                raise BenchError(f"workers changed during the run: {before} -> {after}")
            served = [after[pid] - before[pid] for pid in sorted(after)]
            mean = statistics.fmean(served)
            row = figures(result, cpu)
            row |= {
                "connections": connections,
                "load_level": level,
                "per_worker_requests": served,
                "coefficient_of_variation": round(statistics.pstdev(served) / mean, 4)
                if mean
                else None,
            }
            print(
                f"  {connections:3} connections  {_summary(row)}  per worker {served}"
                f"  CV {row['coefficient_of_variation']}",
                flush=True,
            )
            rows.append(row)
    return rows


# -- reporting ------------------------------------------------------------------------------


def median_rows(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per server and scenario: the round with the median CPU time per request
    (the lower middle of an even count), with every round's figure beside it.

    A noisy machine moves single runs by 20% and more; measuring each server in turn,
    several times, and keeping medians keeps the ratios steadier.
    """
    combined = []
    for first in rounds[0]:
        key = (first["server"], first["scenario"])
        same = [row for rows in rounds for row in rows if (row["server"], row["scenario"]) == key]
        measured = [row for row in same if row.get("cpu_us_per_request") is not None]
        if not measured:
            combined.append(first)
            continue
        ordered = sorted(measured, key=lambda row: row["cpu_us_per_request"])
        middle = dict(ordered[(len(ordered) - 1) // 2])
        if len(rounds) > 1:
            middle["rounds_cpu_us_per_request"] = [row["cpu_us_per_request"] for row in measured]
        combined.append(middle)
    return combined


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each row's CPU µs/request over hive's in the same scenario (>1: hive is cheaper)."""
    hive = {
        r["scenario"]: r["cpu_us_per_request"]
        for r in rows
        if r["server"] == "hive" and r["status"] == "ok" and r.get("cpu_us_per_request")
    }
    for row in rows:
        base = hive.get(row["scenario"])
        cost = row.get("cpu_us_per_request")
        row["ratio_to_hive"] = round(cost / base, 3) if base and cost else None


def print_tables(
    rows: list[dict[str, Any]], scenarios: list[Scenario], args: argparse.Namespace
) -> None:
    header = (
        f"{'server':18} {'req/s':>9} {'CPU µs/req':>11} {'p50':>9} {'p99':>9} {'errors':>7}"
        f" {'peer/hive':>9}"
    )
    for scenario in scenarios:
        chosen = [r for r in rows if r["scenario"] == scenario.name]
        if not chosen:
            continue
        connections = scenario.connections(args.connections)
        print(f"\n== {scenario.name}: {scenario.description}; {connections} connections ==")
        print(header)
        for row in chosen:
            if row["status"] != "ok":
                print(f"{row['server']:18} {row['status']}: {row['note']}")
                continue
            ratio = row["ratio_to_hive"]
            print(
                f"{row['server']:18} {row['requests_per_second']:9.0f}"
                f" {_us(row['cpu_us_per_request']):>11} {row['p50']:>9} {row['p99']:>9}"
                f" {row['errors']:7d} {'-' if ratio is None else f'{ratio:.2f}':>9}"
                + (f"  ({row['note']})" if row["note"] else "")
            )


#: (target, scenario, server, peer, factor): met when the server's CPU µs per request
#: times the factor is at most the peer's.
TARGETS = (
    ("hive (access log on) ahead of granian ASGI (log off)", "hello", "hive", "granian-asgi", 1.0),
    ("hive --no-access-log ahead of granian RSGI", "hello", "hive-nolog", "granian-rsgi", 1.0),
    (
        "hive --no-access-log within 2x of the httptools floor",
        "hello",
        "hive-nolog",
        "floor-httptools",
        0.5,
    ),
    ("WSGI hello in threads: hive ahead of granian WSGI", "wsgi", "hive", "granian-wsgi", 1.0),
    ("the h11 engine at least 2x cheaper than Twisted", "hello", "hive-h11", "twisted", 2.0),
)
#: The access log's cost per request in the worker, at most (µs).
LOG_BUDGET = 1.0


def print_targets(rows: list[dict[str, Any]]) -> None:
    """Each target of the issue, with the figures of this run."""
    cost = {
        (r["server"], r["scenario"]): r["cpu_us_per_request"]
        for r in rows
        if r["status"] == "ok" and r.get("cpu_us_per_request")
    }
    lines = []
    with_log, without = cost.get(("hive", "hello")), cost.get(("hive-nolog", "hello"))
    if with_log and without:
        log_cost = with_log - without
        verdict = "met" if log_cost <= LOG_BUDGET else "not met"
        lines.append(
            f"  the access log at most {LOG_BUDGET:.0f} µs per request: {log_cost:.1f} µs"
            f" ({with_log:.1f} - {without:.1f}): {verdict}"
        )
    for target, scenario, server, peer, factor in TARGETS:
        mine, theirs = cost.get((server, scenario)), cost.get((peer, scenario))
        if not mine or not theirs:
            continue
        verdict = "met" if mine * factor <= theirs else "not met"
        lines.append(
            f"  {target}: {server} {mine:.1f} µs, {peer} {theirs:.1f} µs,"
            f" ratio {theirs / mine:.2f}: {verdict}"
        )
    if lines:
        print('\n== targets (issue "Performance, second round") ==')
        print("\n".join(lines))


def print_hive_sections(workers: list[dict[str, Any]], spread: list[dict[str, Any]]) -> None:
    if workers:
        print("\n== hive: 1 worker against 2 (hello, keep-alive) ==")
        print(
            f"{'workers':>7} {'req/s':>9} {'CPU µs/req':>11} {'workers µs/req':>15}"
            f" {'supervisor CPU':>15} {'supervisor/workers':>19} {'p99':>9} {'errors':>7}"
        )
        for row in workers:
            share = row["supervisor_share_of_workers_cpu"]
            print(
                f"{row['workers']:7d} {row['requests_per_second']:9.0f}"
                f" {_us(row['cpu_us_per_request']):>11} {_us(row['worker_cpu_us_per_request']):>15}"
                f" {row['supervisor_cpu_seconds'] * 1e3:12.1f} ms"
                f" {'-' if share is None else f'{share:.3%}':>19} {row['p99']:>9}"
                f" {row['errors']:7d}"
            )
    if spread:
        print("\n== hive: spread of requests over 2 workers (hello, keep-alive) ==")
        print(
            f"{'connections':>11} {'level':>6} {'req/s':>9} {'CPU µs/req':>11}"
            f" {'per worker':>20} {'CV':>7} {'errors':>7}"
        )
        for row in spread:
            served = ", ".join(str(n) for n in row["per_worker_requests"])
            print(
                f"{row['connections']:11d} {row['load_level']:>6} {row['requests_per_second']:9.0f}"
                f" {_us(row['cpu_us_per_request']):>11} {served:>20}"
                f" {row['coefficient_of_variation']:7.3f} {row['errors']:7d}"
            )
        print(
            "(level: 8/16/64 connections, as 25%/50%/100% of the 64-connection load; wrk is"
            " closed-loop, so each count keeps the workers busy: the level is concurrency)"
        )


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in ("hive", "twisted", "uvicorn", "granian", "gunicorn", "httptools", "uvloop", "h11"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    try:
        done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
        found["wrk"] = (done.stdout or done.stderr).split("[")[0].strip()
    except (OSError, subprocess.SubprocessError):
        found["wrk"] = None
    return found


# -- main -----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="per measurement (10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up (2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk's -c (64)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every server this often, in turn, and keep the median (1)",
    )
    parser.add_argument(
        "--only",
        help="servers and sections, comma-separated: "
        + ",".join([s.name for s in SERVERS] + list(SECTIONS)),
    )
    parser.add_argument("--scenarios", help="comma-separated: " + ",".join(SCENARIOS))
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / "loadtests" / "results" / "bench.json",
        help="where the results go (loadtests/results/bench.json)",
    )
    args = parser.parse_args()
    names = {s.name for s in SERVERS} | set(SECTIONS)
    args.only = args.only.split(",") if args.only else sorted(names)
    args.scenarios = args.scenarios.split(",") if args.scenarios else list(SCENARIOS)
    if unknown := set(args.only) - names:
        parser.error(f"unknown server or section {', '.join(sorted(unknown))}")
    if unknown := set(args.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenario {', '.join(sorted(unknown))}")
    if min(args.seconds, args.warmup, args.connections, args.rounds) < 1:
        parser.error("--seconds, --warmup, --connections and --rounds must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    scenarios = [SCENARIOS[name] for name in args.scenarios]
    servers = [s for s in SERVERS if s.name in args.only]
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, "-m", "loadtests.bench", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "versions": versions(),
        "settings": {
            "seconds": args.seconds,
            "warmup": args.warmup,
            "connections": args.connections,
            "rounds": args.rounds,
            "wrk": "-t1 --latency",
            "cpu": "user + system of the server's process tree, read around the measured run",
        },
        "results": [],
        "hive_workers": [],
        "hive_spread": [],
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-static-") as static:
        static_dir = Path(static)
        (static_dir / STATIC_NAME).write_bytes(STATIC_CONTENT)
        try:
            rounds: list[list[dict[str, Any]]] = []
            for number in range(1, args.rounds + 1):
                if args.rounds > 1:
                    print(f"-- round {number} of {args.rounds}", flush=True)
                rows: list[dict[str, Any]] = []
                rounds.append(rows)
                for server in servers:
                    rows += bench_server(server, scenarios, args, static_dir)
                report["results"] = median_rows(rounds)
            sections = {"hive-workers": bench_hive_workers, "hive-spread": bench_hive_spread}
            for name, section in sections.items():
                if name not in args.only or "hello" not in args.scenarios:
                    continue
                key = name.replace("-", "_")
                try:
                    report[key] = section(args, static_dir)
                except (BenchError, subprocess.SubprocessError, SystemExit) as exc:
                    print(f"  {name} error: {exc}", flush=True)
                    report[f"{key}_error"] = str(exc)
        finally:
            add_ratios(report["results"])
            report["elapsed_seconds"] = round(time.monotonic() - started, 1)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    print_tables(report["results"], scenarios, args)
    print_targets(report["results"])
    print_hive_sections(report["hive_workers"], report["hive_spread"])
    print("\nCPU µs/req: the server's CPU time (user + system, every process) per request.")
    print("peer/hive: the row's CPU µs/req over hive's; above 1, hive is cheaper.")
    print(f"{report['elapsed_seconds']:.0f} s; results in {args.json}")


if __name__ == "__main__":
    main()
