"""Zero-downtime reloads, measured: requests, failures and p99 with and without reloads.

Runs wrk against ``hive run --workers 2`` twice for the same time: once steady, once with
``hive reload`` called evenly spaced during the run.  Prints requests served, failed
requests (socket errors and non-2xx) and latency for both.

    .venv/bin/python -m loadtests.reload --seconds 30 --reloads 5
"""

from __future__ import annotations

import argparse
import time

from loadtests.common import WrkResult, finish_wrk, running_hive, start_wrk


def run(seconds: int, reloads: int, connections: int, workers: int) -> WrkResult:
    with running_hive("--workers", str(workers)) as hive:
        load = start_wrk(hive.url("/hello"), seconds, connections)
        started = time.monotonic()
        for n in range(reloads):
            time.sleep(max(0.0, started + seconds * (n + 1) / (reloads + 1) - time.monotonic()))
            done = hive.ctl("reload")
            if done.returncode != 0:
                raise SystemExit(f"reload {n + 1} failed: {done.stderr}")
        return finish_wrk(load, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--reloads", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    steady = run(args.seconds, 0, args.connections, args.workers)
    reloading = run(args.seconds, args.reloads, args.connections, args.workers)
    print(f"{'':24}{'steady':>12}{f'{args.reloads} reloads':>14}")
    print(f"{'requests served':24}{steady.requests:>12}{reloading.requests:>14}")
    print(f"{'failed requests':24}{steady.failures:>12}{reloading.failures:>14}")
    print(f"{'latency p50':24}{steady.p50:>12}{reloading.p50:>14}")
    print(f"{'latency p99':24}{steady.p99:>12}{reloading.p99:>14}")


if __name__ == "__main__":
    main()
