"""The bus on one host, measured: what relaying through the supervisor costs.

One worker of ``hive run --workers 2`` publishes a burst of messages on one channel from
its loop; every worker (the publisher too) subscribes and counts them. Prints the rate at
which both workers had them all, the supervisor's CPU per message relayed (a message in,
one copy out per worker), the workers' CPU per message, and how long ``hive status``
(the control socket, served by the same supervisor loop) took to answer meanwhile.

    .venv/bin/python -m loadtests.relay --count 20000 --size 100
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
from typing import Any

import psutil

from hive.supervisor.control import request
from loadtests.common import Hive, running_hive


def call(hive: Hive, method: str, path: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", hive.port, timeout=30)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        answer: dict[str, Any] = json.loads(response.read())
        return answer
    finally:
        conn.close()


def counts(hive: Hive, workers: int) -> dict[int, dict[str, Any]]:
    """Each worker's count (new connections until every worker answered)."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(200):
        answer = call(hive, "GET", "/flood-count")
        seen[answer["pid"]] = answer
        if len(seen) == workers:
            break
    return seen


def run(count: int, size: int, workers: int) -> dict[str, float]:
    with running_hive("--workers", str(workers), app="loadtests.apps.bus_app:root") as hive:
        supervisor = psutil.Process(hive.process.pid)
        time.sleep(1.0)
        children = supervisor.children()
        before_sup = sum(supervisor.cpu_times()[:2])
        before_workers = sum(sum(c.cpu_times()[:2]) for c in children)
        rtts: list[float] = []
        stop = threading.Event()

        def ping() -> None:
            while not stop.is_set():
                started = time.monotonic()
                request(hive.control, "status", timeout=30)
                rtts.append(time.monotonic() - started)
                time.sleep(0.01)

        pinger = threading.Thread(target=ping, daemon=True)
        pinger.start()
        started = call(hive, "POST", f"/flood?n={count}&size={size}")["started"]
        deadline = time.monotonic() + 120
        while True:
            seen = counts(hive, workers)
            if len(seen) == workers and all(c["count"] >= count for c in seen.values()):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"not delivered in time: {seen}")
            time.sleep(0.05)
        stop.set()
        pinger.join(30)
        sup_cpu = sum(supervisor.cpu_times()[:2]) - before_sup
        workers_cpu = sum(sum(c.cpu_times()[:2]) for c in children) - before_workers
        finished = max(c["last"] for c in seen.values())
        elapsed = finished - started
        return {
            "elapsed": elapsed,
            "rate": count / elapsed,
            "supervisor_us": sup_cpu / count * 1e6,
            "workers_us": workers_cpu / count * 1e6,
            "status_p50_ms": statistics.median(rtts) * 1000 if rtts else 0.0,
            "status_max_ms": max(rtts) * 1000 if rtts else 0.0,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = [run(args.count, args.size, args.workers) for _ in range(args.rounds)]
    print(f"{args.count} messages of {args.size} bytes, {args.workers} workers subscribed")
    print(f"medians of {args.rounds} rounds")
    for key, label in [
        ("rate", "messages/s delivered to every worker"),
        ("supervisor_us", "supervisor CPU per message, us"),
        ("workers_us", "workers' CPU per message, us (all)"),
        ("status_p50_ms", "hive status meanwhile, p50 ms"),
        ("status_max_ms", "hive status meanwhile, max ms"),
    ]:
        print(f"{label:40}{statistics.median(r[key] for r in results):>10.1f}")


if __name__ == "__main__":
    main()
