"""Memory of idle keep-alive connections: an idle worker, then N idle connections on it.

    .venv/bin/python -m loadtests.idle --connections 10000

Each connection sends one request, reads the answer and stays open, idle.  Reports the
worker's resident memory idle, and after the connections (the target: under 40 MB idle,
under 100 MB more for 10,000 connections).  Needs a file descriptor limit above N for
both processes (``ulimit -n``).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time

import psutil

from loadtests.common import Hive, running_hive


async def _open(port: int, count: int) -> list[asyncio.StreamWriter]:
    writers = []
    request = b"GET /hello HTTP/1.1\r\nHost: idle\r\n\r\n"
    for start in range(0, count, 500):
        batch = []
        for _ in range(min(500, count - start)):
            batch.append(asyncio.open_connection("127.0.0.1", port))
        for reader, writer in await asyncio.gather(*batch):
            writer.write(request)
            writers.append(writer)
            await reader.readuntil(b"Hello, world!")
    return writers


def measure(hive: Hive, count: int) -> tuple[int, int]:
    worker = psutil.Process(hive.process.pid).children()[0]
    time.sleep(1.0)
    idle = worker.memory_info().rss
    loop = asyncio.new_event_loop()
    writers = loop.run_until_complete(_open(hive.port, count))
    time.sleep(2.0)
    loaded = worker.memory_info().rss
    for writer in writers:
        writer.close()
    loop.close()
    return idle, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    options = ["--workers", "1", "--keep-alive-timeout", "600"]
    with running_hive(*options) as hive:
        idle, loaded = measure(hive, args.connections)
    growth = (loaded - idle) / 1e6
    print(f"idle worker: {idle / 1e6:.1f} MB")
    print(f"with {args.connections} idle connections: {loaded / 1e6:.1f} MB (+{growth:.1f} MB)")


if __name__ == "__main__":
    main()
