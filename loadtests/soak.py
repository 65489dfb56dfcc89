"""Soak: a million requests through one worker; its resident memory must grow by < 5%.

    .venv/bin/python -m loadtests.soak --requests 1000000

Warms the worker up (so that caches and allocator pools are filled), reads its resident
memory, then drives wrk until the request count is reached and reads it again.
"""

from __future__ import annotations

import argparse

import psutil

from loadtests.common import running_hive, wrk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--path", default="/hello")
    args = parser.parse_args()
    with running_hive("--workers", "1") as hive:
        worker = psutil.Process(hive.process.pid).children()[0]
        url = hive.url(args.path)
        wrk(url, 5, args.connections)
        before = worker.memory_info().rss
        served = 0
        rounds = 0
        while served < args.requests and rounds < 100:
            result = wrk(url, 10, args.connections)
            served += result.requests
            rounds += 1
            if result.failures:
                raise SystemExit(f"{result.failures} failures: {result.output}")
        after = worker.memory_info().rss
    growth = (after - before) / before * 100
    print(f"requests          {served}")
    print(f"worker RSS        {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB ({growth:+.2f}%)")
    print("PASS" if growth < 5 else "FAIL")
    raise SystemExit(0 if growth < 5 else 1)


if __name__ == "__main__":
    main()
