"""Events from a networking program to 1,000 open live pages: the push latency.

    .venv/bin/python -m loadtests.live_fanout [--pages 1000] [--events 40] [--interval 0.5]

Starts the chat example (``python -m examples.chat``: the TCP chat server with its live
control panel embedded by ``hive.listen``, one process) on free loopback ports, opens
``--pages`` panels with the browser-free client (``hive.live.client.LiveClient``: the
page's GET with Basic credentials, its WebSocket, hello), then has a real TCP chat
client say ``--events`` lines, one every ``--interval`` seconds. Each line is an event
of the chat server; the panel's Log element is subscribed to it and pushes its new HTML
to every page. The figure is, over every (event, page), the time from the line being
written to the TCP socket to the push carrying it arriving at that page's WebSocket:
p50, p90, p99 and max, and the server's CPU per pushed page.

The client side (1,000 WebSockets, uvloop) runs in this process on the same two cores,
so its own reading is in the figure: it is an upper bound on what a browser would see.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import psutil

from hive.live.client import LiveClient, basic_auth
from loadtests.common import ROOT, cpu_seconds

PASSWORD = "bench"


def start_chat() -> tuple[subprocess.Popen[str], int, int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "examples.chat",
            *("--chat", "127.0.0.1:0", "--web", "127.0.0.1:0", "--password", PASSWORD),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    chat = re.search(r":(\d+)$", proc.stdout.readline().strip())
    web = re.search(r"127.0.0.1:(\d+)/", proc.stdout.readline())
    assert chat and web, "the chat example did not start"
    return proc, int(chat.group(1)), int(web.group(1))


async def open_pages(port: int, count: int, concurrency: int) -> list[LiveClient]:
    gate = asyncio.Semaphore(concurrency)
    url = f"http://127.0.0.1:{port}/"
    headers = basic_auth("admin", PASSWORD)

    async def one() -> LiveClient:
        async with gate:
            return await LiveClient.open(url, headers=headers, timeout=60)

    return await asyncio.gather(*(one() for _ in range(count)))


async def measure(args: argparse.Namespace) -> None:
    proc, chat_port, web_port = start_chat()
    server = psutil.Process(proc.pid)
    try:
        started = time.monotonic()
        pages = await open_pages(web_port, args.pages, args.concurrency)
        print(f"{len(pages)} pages open in {time.monotonic() - started:.1f}s", flush=True)
        arrivals: dict[str, list[float]] = {}

        pushes = [0]

        def watcher(message: dict[str, Any]) -> None:
            html = message.get("html")
            if html:
                pushes[0] += 1
            if html and "bench-" in html:
                now = time.perf_counter()
                for marker in re.findall(r"bench-\d+", html):
                    seen = arrivals.setdefault(marker, [])
                    if len(seen) < len(pages) and marker == latest[0]:
                        seen.append(now)

        latest = [""]
        for page in pages:
            page.on_message = watcher
            page.keep = False
            page.discard()
        reader, writer = await asyncio.open_connection("127.0.0.1", chat_port)
        await reader.readline()  # the welcome
        await asyncio.sleep(1.0)  # let the join's pushes go by
        latencies: list[float] = []
        missed = 0
        cpu_before = cpu_seconds(server)
        client_before = time.process_time()
        pushes[0] = 0
        for number in range(1, args.events + 1):
            marker = f"bench-{number}"
            latest[0] = marker
            sent = time.perf_counter()
            writer.write(f"{marker}\r\n".encode())
            await writer.drain()
            deadline = time.monotonic() + 10
            while len(arrivals.get(marker, ())) < len(pages) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            got = arrivals.get(marker, [])
            missed += len(pages) - len(got)
            latencies += [arrival - sent for arrival in got]
            await asyncio.sleep(args.interval)
        cpu = cpu_seconds(server) - cpu_before
        client_cpu = time.process_time() - client_before
        pushed = pushes[0]
        writer.close()
        for page in pages:
            page.on_message = None
        await asyncio.gather(*(page.close() for page in pages), return_exceptions=True)
    finally:
        proc.terminate()
        proc.wait(20)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    print(
        f"events: {args.events} to {args.pages} pages, {len(latencies)} pushes timed,"
        f" {missed} missed"
    )
    print(
        f"event -> push arrival: p50 {pct(50):.1f} ms  p90 {pct(90):.1f} ms"
        f"  p99 {pct(99):.1f} ms  max {latencies[-1] * 1000:.1f} ms"
        f"  (mean {statistics.fmean(latencies) * 1000:.1f} ms)"
    )
    print(
        f"server CPU: {cpu:.2f}s for {pushed} pushes (the lines' and the 1/s traffic"
        f" figures'), {cpu / max(pushed, 1) * 1e6:.0f} us a push; load average"
        f" {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"client CPU (this process, the 1,000 WebSockets): {client_cpu:.2f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * args.pages + 256)), hard))
    socket.setdefaulttimeout(60)
    try:
        import uvloop
    except ImportError:
        asyncio.run(measure(args))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(measure(args))


if __name__ == "__main__":
    main()
