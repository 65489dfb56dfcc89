"""Fan-out, measured: one message to 10,000 Server-Sent Events clients over 2 workers.

``hive run --workers 2`` serves loadtests/apps/bus_app.py: /events is an
EventSourceResource on channel "fanout", /publish publishes its body there. The clients
are this script's own light client: ``--client-procs`` processes, each one epoll loop of
plain sockets over loopback. Once all are open, the script publishes ``--rate``
broadcasts a second for ``--seconds``, each carrying its send time; every client notes
when each broadcast reached it. Printed: p50 and p99 over broadcasts of the time until
*all* clients had it (the last one), the same over every delivery, and the workers' and
the supervisor's CPU per delivered message. The clients run on the same machine, so their
own lag is in the figures.

    .venv/bin/python -m loadtests.fanout --clients 10000 --rate 10 --seconds 30
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import multiprocessing
import os
import resource
import select
import socket
import time
from multiprocessing.connection import Connection
from typing import Any

import psutil

from loadtests.common import running_hive

REQUEST = b"GET /events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
MARK = b"data: B"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def clients(port: int, count: int, pipe: Connection) -> None:
    """One client process: open ``count`` streams, say so, read until told to stop, and
    send back {broadcast: [latency in s, ...]} and the number of streams the server ended."""
    poller = select.epoll()
    socks: dict[int, socket.socket] = {}
    buffers: dict[int, bytes] = {}
    waiting = 0
    for n in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.connect(("127.0.0.1", port))
        socks[sock.fileno()] = sock
        buffers[sock.fileno()] = b""
        poller.register(sock.fileno(), select.EPOLLOUT)
        waiting += 1
        if waiting >= 250 or n == count - 1:  # in steps, under the listen backlog
            waiting = _open(socks, buffers, poller, waiting)
    pipe.send("open")
    got: dict[int, list[float]] = {}
    ended = 0
    while not pipe.poll():
        for fd, _events in poller.poll(0.05):
            sock = socks[fd]
            chunk = sock.recv(65536)
            if not chunk:
                ended += 1
                poller.unregister(fd)
                continue
            data = buffers[fd] + chunk
            cut = data.rfind(b"\n")
            buffers[fd] = data[cut + 1 :]
            arrived = time.time_ns()
            start = data.find(MARK, 0, cut + 1)
            while start >= 0:
                end = data.find(b"\n", start)
                number, stamp = data[start + len(MARK) : end].split(b" ")
                got.setdefault(int(number), []).append((arrived - int(stamp)) / 1e9)
                start = data.find(MARK, end, cut + 1)
    pipe.send((got, ended))
    for sock in socks.values():
        sock.close()


def _open(
    socks: dict[int, socket.socket], buffers: dict[int, bytes], poller: select.epoll, waiting: int
) -> int:
    deadline = time.monotonic() + 60
    while waiting:
        if time.monotonic() > deadline:
            raise SystemExit(f"{waiting} clients did not open")
        for fd, events in poller.poll(1.0):
            sock = socks[fd]
            if events & select.EPOLLOUT:
                sock.send(REQUEST)
                poller.modify(fd, select.EPOLLIN)
                continue
            buffers[fd] += sock.recv(65536)
            head, found, rest = buffers[fd].partition(b"\r\n\r\n")
            if found:
                if not head.startswith(b"HTTP/1.1 200"):
                    raise SystemExit(f"bad answer: {head[:200]!r}")
                buffers[fd] = rest
                waiting -= 1
    return 0


def publish(port: int, body: bytes) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/publish", body=body)
        conn.getresponse().read()
    finally:
        conn.close()


def run(count: int, rate: float, seconds: float, workers: int, procs: int) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = count * 2 + 1000
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))  # hive inherits it
    with running_hive("--workers", str(workers), app="loadtests.apps.bus_app:root") as hive:
        supervisor = psutil.Process(hive.process.pid)
        worker_procs = supervisor.children()
        context = multiprocessing.get_context("fork")
        pipes = []
        children = []
        for n in range(procs):
            ours, theirs = context.Pipe()
            share = count // procs + (1 if n < count % procs else 0)
            child = context.Process(target=clients, args=(hive.port, share, theirs))
            child.start()
            pipes.append(ours)
            children.append(child)
        for pipe in pipes:
            if not pipe.poll(300):
                raise SystemExit("the clients did not open in time")
            assert pipe.recv() == "open"
        time.sleep(1.0)
        load_before = os.getloadavg()[0]
        cpu_workers = sum(sum(p.cpu_times()[:2]) for p in worker_procs)
        cpu_supervisor = sum(supervisor.cpu_times()[:2])
        rss_before = sum(p.memory_info().rss for p in worker_procs)
        total = int(seconds * rate)
        started = time.monotonic()
        for sequence in range(1, total + 1):
            time.sleep(max(0.0, started + (sequence - 1) / rate - time.monotonic()))
            publish(hive.port, b"B%d %d" % (sequence, time.time_ns()))
        elapsed = time.monotonic() - started
        time.sleep(5.0)  # the last broadcasts arrive
        cpu_workers = sum(sum(p.cpu_times()[:2]) for p in worker_procs) - cpu_workers
        cpu_supervisor = sum(supervisor.cpu_times()[:2]) - cpu_supervisor
        rss = sum(p.memory_info().rss for p in worker_procs)
        got: dict[int, list[float]] = {}
        ended = 0
        for pipe in pipes:
            pipe.send("stop")
            part, part_ended = pipe.recv()
            ended += part_ended
            for number, latencies in part.items():
                got.setdefault(number, []).extend(latencies)
        for child in children:
            child.join(30)
        load_after = os.getloadavg()[0]
    complete = [max(latencies) for latencies in got.values() if len(latencies) == count]
    every = [latency for latencies in got.values() for latency in latencies]
    deliveries = len(every)
    return {
        "broadcasts": total,
        "complete": len(complete),
        "deliveries": deliveries,
        "ended": ended,
        "elapsed": elapsed,
        "all_p50_ms": percentile(complete, 0.5) * 1000 if complete else float("nan"),
        "all_p99_ms": percentile(complete, 0.99) * 1000 if complete else float("nan"),
        "each_p50_ms": percentile(every, 0.5) * 1000 if every else float("nan"),
        "each_p99_ms": percentile(every, 0.99) * 1000 if every else float("nan"),
        "worker_us": cpu_workers / max(1, deliveries) * 1e6,
        "worker_share": cpu_workers / elapsed * 100,
        "supervisor_ms": cpu_supervisor / max(1, total) * 1000,
        "rss_mb": rss / 1e6,
        "rss_growth_mb": (rss - rss_before) / 1e6,
        "load": (load_before + load_after) / 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=10.0, help="broadcasts a second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--client-procs", type=int, default=2)
    args = parser.parse_args()
    r = run(args.clients, args.rate, args.seconds, args.workers, args.client_procs)
    print(
        f"{args.clients} SSE clients ({args.client_procs} client processes), {args.workers}"
        f" workers, {args.rate:g} broadcasts/s for {args.seconds:g} s;"
        f" load average meanwhile {r['load']:.1f}"
    )
    print(
        f"{r['complete']} of {r['broadcasts']} broadcasts reached every client;"
        f" {r['deliveries']} deliveries; {r['ended']} streams ended by the server"
    )
    rows = [
        ("time until all had it, p50", r["all_p50_ms"], "ms"),
        ("time until all had it, p99", r["all_p99_ms"], "ms"),
        ("per delivery, p50", r["each_p50_ms"], "ms"),
        ("per delivery, p99", r["each_p99_ms"], "ms"),
        ("workers' CPU per delivered message", r["worker_us"], "us"),
        ("workers' CPU, % of one core", r["worker_share"], "%"),
        ("supervisor CPU per broadcast", r["supervisor_ms"], "ms"),
        ("workers' resident memory", r["rss_mb"], "MB"),
    ]
    for label, value, unit in rows:
        print(f"{label:40}{value:>10.1f} {unit}")


if __name__ == "__main__":
    main()
