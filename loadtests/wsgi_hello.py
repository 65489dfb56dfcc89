"""Server CPU time per request of a WSGI hello app under wrk, for several ``--threads``.

Starts ``hive run --wsgi loadtests.wsgi_hello:app`` once per thread count (one worker),
warms it up, drives it with wrk and reads the server's CPU time (user + system, the
supervisor and its worker) with psutil, as loadtests.hello does.  ``--baseline`` also
measures the example site's resource /hello, the same answer without WSGI.  Not a test.

    .venv/bin/python -m loadtests.wsgi_hello --threads 10,0 --seconds 10 --baseline
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from typing import Any

import psutil

from loadtests.common import cpu_seconds, running_hive, wrk

HELLO = b"Hello, world!"


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI hello app: what a framework's plain-text view comes down to."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [HELLO]


def measure(options: list[str], app_spec: str, path: str, args: argparse.Namespace) -> str:
    cpus = sorted(os.sched_getaffinity(0))
    if args.pin:
        os.sched_setaffinity(0, cpus[:1])  # hive (and its threads) inherit the first CPU
    with running_hive(*options, app=app_spec) as hive:
        if args.pin:
            os.sched_setaffinity(0, cpus[1:])  # wrk gets the others
        url = hive.url(path)
        wrk(url, args.warmup, args.connections)
        process = psutil.Process(hive.process.pid)
        before = cpu_seconds(process)
        result = wrk(url, args.seconds, args.connections)
        used = cpu_seconds(process) - before
    os.sched_setaffinity(0, cpus)
    return (
        f"{used / result.requests * 1e6:9.1f} us/request  {result.requests / result.seconds:8.0f}"
        f" requests/s  p99 {result.p99:>8}  failures {result.failures}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", default="10,0", help="thread counts, comma-separated")
    parser.add_argument("--http", default="auto", help="hive's engine")
    parser.add_argument("--loop", default="auto", help="hive's event loop")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="measure each setting this often")
    parser.add_argument("--baseline", action="store_true", help="also the resource /hello")
    parser.add_argument(
        "--pin", action="store_true", help="hive on the first CPU, wrk on the others (steadier)"
    )
    args = parser.parse_args()
    common = ["--http", args.http, "--loop", args.loop, "--workers", "1"]
    print(f"engine={args.http} loop={args.loop} connections={args.connections}")
    for _ in range(args.rounds):
        for threads in args.threads.split(","):
            options = [*common, "--wsgi", "--threads", threads.strip()]
            line = measure(options, "loadtests.wsgi_hello:app", "/", args)
            print(f"wsgi --threads {threads.strip():>3}  {line}", flush=True)
        if args.baseline:
            line = measure(common, "examples.site:root", "/hello", args)
            print(f"resource /hello     {line}", flush=True)


if __name__ == "__main__":
    main()
