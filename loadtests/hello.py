"""A first measurement: requests per second and server CPU time per request under wrk.

Starts ``hive run`` on a free loopback port, drives it with wrk (Debian package ``wrk``)
after a warm-up, and reads the server's CPU time (user + system, whole process tree) with
psutil.  CPU time per request is the figure to compare: it does not depend on how much of
the machine the load generator takes.  Not a test; the side-by-side benchmark against
peers is issue "Performance".

    .venv/bin/python loadtests/hello.py --http httptools --seconds 10
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(process: psutil.Process) -> float:
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("hive did not start")


def wrk(url: str, seconds: int, connections: int) -> tuple[int, str]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    match = re.search(r"(\d+) requests in", out)
    if not match:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return int(match.group(1)), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--http", default="auto", help="hive's engine")
    parser.add_argument("--loop", default="auto", help="hive's event loop")
    parser.add_argument("--path", default="/hello")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    port = free_port()
    command = [
        sys.executable, "-m", "hive", "run", "examples.site:root",
        "--bind", f"127.0.0.1:{port}", "--no-access-log",
        "--http", args.http, "--loop", args.loop,
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        url = f"http://127.0.0.1:{port}{args.path}"
        wrk(url, args.warmup, args.connections)
        process = psutil.Process(server.pid)
        before = cpu_seconds(process)
        requests, report = wrk(url, args.seconds, args.connections)
        used = cpu_seconds(process) - before
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    latency = re.search(
        r"Latency Distribution\s+50%\s+(\S+)\s+75%\s+\S+\s+90%\s+\S+\s+99%\s+(\S+)", report
    )
    print(f"engine={args.http} loop={args.loop} path={args.path} connections={args.connections}")
    print(f"requests/s        {requests / args.seconds:10.0f}")
    print(f"server CPU/request {used / requests * 1e6:9.1f} us")
    if latency:
        print(f"latency p50 / p99  {latency.group(1)} / {latency.group(2)}")


if __name__ == "__main__":
    main()
