"""A first measurement: requests per second and server CPU time per request under wrk.

Starts ``hive run`` on a free loopback port, drives it with wrk (Debian package ``wrk``)
after a warm-up, and reads the server's CPU time (user + system, the supervisor and its
workers) with psutil.  CPU time per request is the figure to compare: it does not depend
on how much of the machine the load generator takes.  Not a test; the side-by-side
benchmark against peers is issue "Performance".

    .venv/bin/python -m loadtests.hello --http httptools --seconds 10
"""

from __future__ import annotations

import argparse

import psutil

from loadtests.common import cpu_seconds, running_hive, wrk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--http", default="auto", help="hive's engine")
    parser.add_argument("--loop", default="auto", help="hive's event loop")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--path", default="/hello")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    options = ["--http", args.http, "--loop", args.loop, "--workers", str(args.workers)]
    with running_hive(*options) as hive:
        url = hive.url(args.path)
        wrk(url, args.warmup, args.connections)
        process = psutil.Process(hive.process.pid)
        before = cpu_seconds(process)
        result = wrk(url, args.seconds, args.connections)
        used = cpu_seconds(process) - before
    print(f"engine={args.http} loop={args.loop} workers={args.workers} path={args.path}")
    print(f"requests/s         {result.requests / result.seconds:10.0f}")
    print(f"server CPU/request {used / result.requests * 1e6:10.1f} us")
    print(f"latency p50 / p99  {result.p50} / {result.p99}")
    print(f"failures           {result.failures}")


if __name__ == "__main__":
    main()
