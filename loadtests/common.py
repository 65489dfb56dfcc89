"""What the load scripts share: a hive process on a free loopback port, and wrk."""

from __future__ import annotations

import http.client
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of a process and all its children."""
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


@dataclass
class Hive:
    process: subprocess.Popen[bytes]
    port: int
    control: str

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hive", *args, "--control", self.control],
            capture_output=True,
            text=True,
            timeout=120,
        )


@contextmanager
def running_hive(*args: str, app: str = "examples.site:root") -> Iterator[Hive]:
    """``hive run APP`` on a free port, stopped (SIGTERM, then SIGKILL) when done."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="hive-load-")
    control = f"{workdir}/hive.ctl"
    command = [sys.executable, "-m", "hive", "run", app, "--bind", f"127.0.0.1:{port}"]
    command += ["--no-access-log", "--control", control, *args]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        # The supervisor listens before its workers are up: wait for an answer, which
        # only a worker gives.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"hive exited with status {process.returncode}")
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                connection.request("GET", "/")
                connection.getresponse().read()
                break
            except OSError:
                time.sleep(0.05)
            finally:
                # A probe that timed out while the workers start is closed too: left to
                # the garbage collector it is a ResourceWarning, an error under pytest.
                connection.close()
        else:
            raise SystemExit("hive did not start")
        yield Hive(process, port, control)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class WrkResult:
    requests: int
    seconds: float
    socket_errors: int
    non_2xx: int
    p50: str
    p99: str
    output: str

    @property
    def failures(self) -> int:
        return self.socket_errors + self.non_2xx


def start_wrk(
    url: str,
    seconds: int,
    connections: int,
    *,
    script: Path | None = None,
    headers: Sequence[str] = (),
) -> subprocess.Popen[str]:
    """wrk on one thread; `script` is a lua file, `headers` are ``Name: value`` lines."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    return subprocess.Popen([*command, url], stdout=subprocess.PIPE, text=True)


def finish_wrk(process: subprocess.Popen[str], seconds: int) -> WrkResult:
    try:
        output, _ = process.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=10)
        raise
    requests = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    if not requests:
        raise SystemExit(f"cannot read wrk's output:\n{output}")
    duration = float(requests.group(2)) / (1000 if requests.group(3) == "ms" else 1)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    latency = re.search(r"50%\s+(\S+)[\s\S]*?99%\s+(\S+)", output)
    return WrkResult(
        requests=int(requests.group(1)),
        seconds=duration,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        p50=latency.group(1) if latency else "?",
        p99=latency.group(2) if latency else "?",
        output=output,
    )


def wrk(
    url: str,
    seconds: int,
    connections: int,
    *,
    script: Path | None = None,
    headers: Sequence[str] = (),
) -> WrkResult:
    process = start_wrk(url, seconds, connections, script=script, headers=headers)
    return finish_wrk(process, seconds)
