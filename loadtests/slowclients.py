"""Slow and hostile clients beside normal ones: the normal ones must not notice.

    .venv/bin/python -m loadtests.slowclients --drippers 300 --slow-bodies 50 --non-readers 50

Against ``hive run --workers 1``: hundreds of connections drip their request heads a byte
at a time, others drip request bodies, others ask for a large response and never read it.
Meanwhile a normal client sends requests one after another and the latencies are
recorded; the worker's resident memory is read before and after.  Reports p50/p99 of the
normal requests and the memory growth.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import statistics
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from loadtests.common import Hive, running_hive

APP = """
import asyncio

from hive.resource import Resource
from hive.server import NOT_DONE_YET


class Big(Resource):
    '''Ten megabytes in 64 KiB writes, waiting whenever the client stops reading.'''

    isLeaf = True

    def render_GET(self, request):
        async def send():
            chunk = b"x" * 65536
            try:
                for _ in range(160):
                    request.write(chunk)
                    await request.drain()
            except ConnectionError:
                return
            request.finish()

        asyncio.get_running_loop().create_task(send())
        return NOT_DONE_YET


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request):
        return b"hello"

    render_POST = render_GET


root = Resource()
root.putChild(b"big", Big())
root.putChild(b"hello", Hello())
"""


@dataclass
class Report:
    normal_requests: int
    normal_failures: int
    p50_ms: float
    p99_ms: float
    rss_before: int
    rss_after: int
    slow_connections: int


async def _drip(port: int, data: bytes, interval: float, stop: asyncio.Event) -> None:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    try:
        for byte in data:
            if stop.is_set():
                break
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(interval)
    except OSError:
        pass  # cut off by the server's deadline, as it should be
    finally:
        writer.close()


async def _never_read(port: int, stop: asyncio.Event) -> None:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024)
    except OSError:
        return
    # A tiny receive window: the server's writes back up almost at once.
    writer.write(b"GET /big HTTP/1.1\r\nHost: slow\r\n\r\n")
    await stop.wait()
    writer.close()


async def _slow_clients(port: int, args: argparse.Namespace, stop: asyncio.Event) -> None:
    head = b"GET /hello HTTP/1.1\r\nHost: slow\r\nX-Padding: " + b"p" * 200 + b"\r\n\r\n"
    body_head = b"POST /hello HTTP/1.1\r\nHost: slow\r\nContent-Length: 100000\r\n\r\n"
    tasks = [_drip(port, head, 0.5, stop) for _ in range(args.drippers)]
    tasks += [_drip(port, body_head + b"b" * 1000, 0.2, stop) for _ in range(args.slow_bodies)]
    tasks += [_never_read(port, stop) for _ in range(args.non_readers)]
    await asyncio.gather(*tasks)


def run(hive: Hive, args: argparse.Namespace) -> Report:
    worker = psutil.Process(hive.process.pid).children()[0]
    rss_before = worker.memory_info().rss
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(_slow_clients(hive.port, args, stop),)
    )
    thread.start()
    time.sleep(2.0)  # let the slow clients settle in
    latencies = []
    failures = 0
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", hive.port, timeout=10)
            conn.request("GET", "/hello")
            ok = conn.getresponse().read() == b"hello"
            conn.close()
        except OSError:
            ok = False
        latencies.append(time.perf_counter() - started)
        failures += not ok
        time.sleep(0.01)
    rss_after = worker.memory_info().rss
    loop.call_soon_threadsafe(stop.set)
    thread.join(60)
    loop.close()
    quantiles = statistics.quantiles(latencies, n=100)
    return Report(
        normal_requests=len(latencies),
        normal_failures=failures,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=quantiles[98] * 1000,
        rss_before=rss_before,
        rss_after=rss_after,
        slow_connections=args.drippers + args.slow_bodies + args.non_readers,
    )


def measure(args: argparse.Namespace, workdir: Path) -> Report:
    (workdir / "slowapp.py").write_text(textwrap.dedent(APP))
    options = ["--workers", "1", "--app-dir", str(workdir), "--head-timeout", "30"]
    with running_hive(*options, app="slowapp:root") as hive:
        return run(hive, args)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--drippers", type=int, default=300)
    parser.add_argument("--slow-bodies", type=int, default=50)
    parser.add_argument("--non-readers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    return parser


def main() -> None:
    import tempfile

    args = parser().parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        report = measure(args, Path(workdir))
    print(f"slow connections held open     {report.slow_connections}")
    print(f"normal requests / failures     {report.normal_requests} / {report.normal_failures}")
    print(f"normal latency p50 / p99       {report.p50_ms:.1f} ms / {report.p99_ms:.1f} ms")
    growth = (report.rss_after - report.rss_before) / 1e6
    print(f"worker memory                  {report.rss_before / 1e6:.1f} MB -> +{growth:.1f} MB")


if __name__ == "__main__":
    main()
