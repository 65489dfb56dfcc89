"""WebSocket echo, side by side in one run: server CPU per 64-byte message, and idle memory.

    .venv/bin/python -m loadtests.ws_bench [--seconds 10] [--connections 50] [--idle 10000]

Each server runs one process (hive: one worker) on a free loopback port and echoes at
/echo: hive (hive.websocket), uvicorn with websockets (``--ws websockets``, and its
sans-IO ``websockets-sansio``), and Twisted's own WebSocketResource (on wsproto).  The
client, in this process (uvloop), keeps ``--window`` masked 64-byte text messages in flight
on each connection and counts the echoes; the server's CPU (user + system, its process
tree) over the measured seconds, divided by the messages echoed, is the figure.
Targets (issue 16): hive at most uvicorn's, and half Twisted's or less.

``--idle N`` then opens N WebSockets to hive (and to uvicorn) that stay idle, and reports
the server's resident memory over an idle one (target: under 100 MB for 10,000).  Needs a
file descriptor limit above N (raised to the hard limit here).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil

from loadtests.common import ROOT, cpu_seconds, free_port

PAYLOAD = b"x" * 64
REPLY = 2 + len(PAYLOAD)  # an unmasked server frame: two header bytes and the payload


def client_frame() -> bytes:
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(PAYLOAD))
    return bytes([0x81, 0x80 | len(PAYLOAD)]) + key + masked


def handshake(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
        % (port, key)
    )


@dataclass
class Server:
    name: str
    command: list[str]
    #: Measure this process's children (hive's worker) rather than the process itself.
    worker_child: bool = False


def servers(port: int, control: str) -> list[Server]:
    python = sys.executable
    hive = [python, "-m", "hive", "run", "loadtests.apps.ws_apps:root"]
    hive += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--no-access-log"]
    found = [Server("hive", [*hive, "--control", control], worker_child=True)]
    uvicorn = [python, "-m", "uvicorn", "loadtests.apps.ws_apps:asgi_echo"]
    uvicorn += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    uvicorn += ["--log-level", "warning", "--loop", "uvloop", "--http", "httptools"]
    found.append(Server("uvicorn+websockets", [*uvicorn, "--ws", "websockets"]))
    found.append(Server("uvicorn+websockets-sansio", [*uvicorn, "--ws", "websockets-sansio"]))
    try:
        import twisted.web.websocket  # noqa: F401
    except ImportError:
        pass
    else:
        command = [python, "-m", "loadtests.apps.twisted_ws_app", "--port", str(port)]
        found.append(Server("twisted", command))
    return found


@contextmanager
def running(server: Server, port: int) -> Iterator[psutil.Process]:
    """The server started and listening; yields the process whose CPU and memory count."""
    process = subprocess.Popen(server.command, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"{server.name} did not start") from None
                time.sleep(0.05)
        measured = psutil.Process(process.pid)
        if server.worker_child:
            # The supervisor listens before its worker is forked.
            while not measured.children():
                if time.monotonic() > deadline:
                    raise SystemExit(f"{server.name} started no worker")
                time.sleep(0.05)
            measured = measured.children()[0]
        yield measured
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class EchoClient(asyncio.Protocol):
    """One WebSocket that keeps ``window`` messages in flight and counts the echoes."""

    def __init__(self, port: int, window: int, counter: list[int], opened: asyncio.Future[None]):
        self.port = port
        self.window = window
        self.counter = counter
        self.opened = opened
        self.head = b""
        self.open = False
        self.pending = 0
        self.frame = client_frame()
        self.echoing = window > 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(handshake(self.port))  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        if not self.open:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            head, _, data = self.head.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(RuntimeError(head.decode("latin-1")))
                return
            self.open = True
            if not self.opened.done():
                self.opened.set_result(None)
            if self.echoing:
                self.transport.write(self.frame * self.window)  # type: ignore[union-attr]
        self.pending += len(data)
        count, self.pending = divmod(self.pending, REPLY)
        if count:
            self.counter[0] += count
            if self.echoing:
                self.transport.write(self.frame * count)  # type: ignore[union-attr]

    def stop(self) -> None:
        self.echoing = False
        if self.transport is not None:
            self.transport.close()


async def connect_many(port: int, count: int, window: int, counter: list[int]) -> list[EchoClient]:
    loop = asyncio.get_running_loop()
    clients: list[EchoClient] = []
    for start in range(0, count, 200):
        batch = []
        for _ in range(min(200, count - start)):
            opened: asyncio.Future[None] = loop.create_future()
            client = EchoClient(port, window, counter, opened)
            batch.append(loop.create_connection(lambda c=client: c, "127.0.0.1", port))  # type: ignore[misc]
            clients.append(client)
        await asyncio.gather(*batch)
        await asyncio.gather(*(c.opened for c in clients[start:]))
    return clients


async def echo_run(
    port: int, measured: psutil.Process, connections: int, window: int, seconds: float
) -> tuple[float, float]:
    """(us of server CPU per message, messages per second)."""
    counter = [0]
    clients = await connect_many(port, connections, window, counter)
    await asyncio.sleep(2.0)  # warm up
    cpu0, n0, t0 = cpu_seconds(measured), counter[0], time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, n1, t1 = cpu_seconds(measured), counter[0], time.monotonic()
    for client in clients:
        client.stop()
    await asyncio.sleep(0.5)
    messages = max(n1 - n0, 1)
    return (cpu1 - cpu0) / messages * 1e6, messages / (t1 - t0)


async def idle_run(port: int, measured: psutil.Process, count: int) -> tuple[float, float]:
    """(resident MB idle, resident MB with ``count`` idle WebSockets)."""
    await asyncio.sleep(1.0)
    idle = measured.memory_info().rss / 1e6
    clients = await connect_many(port, count, 0, [0])
    await asyncio.sleep(3.0)
    loaded = measured.memory_info().rss / 1e6
    for client in clients:
        client.stop()
    await asyncio.sleep(1.0)
    return idle, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--idle", type=int, default=0, help="then N idle WebSockets (hive)")
    parser.add_argument("--only", default="", help="comma-separated server names")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    workdir = tempfile.mkdtemp(prefix="hive-ws-bench-")
    try:
        port = free_port()
        chosen = servers(port, f"{workdir}/hive.ctl")
        if args.only:
            chosen = [s for s in chosen if s.name in args.only.split(",")]
        print(
            f"WebSocket echo, 64-byte text messages: {args.connections} connections,"
            f" {args.window} in flight each, {args.seconds:.0f} s measured"
        )
        results: dict[str, float] = {}
        for server in chosen:
            with running(server, port) as measured:
                per_message, rate = asyncio.run(
                    echo_run(port, measured, args.connections, args.window, args.seconds)
                )
            results[server.name] = per_message
            print(f"  {server.name:26s} {per_message:6.1f} us CPU/message  {rate:9.0f} msg/s")
        if "hive" in results:
            for name, value in results.items():
                if name != "hive":
                    print(f"  hive / {name}: {results['hive'] / value:.2f}")
        if args.idle:
            print(f"{args.idle} idle WebSockets on one process:")
            for server in chosen:
                if server.name not in ("hive", "uvicorn+websockets"):
                    continue
                with running(server, port) as measured:
                    idle, loaded = asyncio.run(idle_run(port, measured, args.idle))
                print(
                    f"  {server.name:26s} idle {idle:6.1f} MB, with them {loaded:6.1f} MB"
                    f" (+{loaded - idle:.1f} MB)"
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
