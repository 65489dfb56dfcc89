"""hive's own Python cost per request, without sockets: the hot path's figure.

Feeds the same hello request many times through the real engine, Connection and Site
(the benchmark's resource tree), with a transport that only counts bytes, and prints
the best of several rounds in µs per request; ``--profile`` prints where the time goes
(cProfile, which inflates every figure by some four times).  ``--access-log combined``
(or ``json``) writes the access log, as ``hive run`` does by default, to a file in a
temporary directory.  Not a test.

    .venv/bin/python -m loadtests.inprocess --engine httptools --wsgi
    .venv/bin/python -m loadtests.inprocess --asgi       # the bare ASGI callable, on uvloop
    .venv/bin/python -m loadtests.inprocess --behind-proxy   # nginx's headers, trusted
    .venv/bin/python -m loadtests.inprocess --access-log combined

An ASGI request is answered in a task: each request is fed, then the loop runs until the
connection is idle again (the loop's own cost per turn is in the figure, as it is in a
server's).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from hive._accesslog import AccessLog
from hive._forwarded import TrustedProxies
from hive.address import IPv4Address
from hive.engine import HeadLimits, get_engine
from hive.server import Site
from hive.worker.connection import Connection, ConnectionLimits
from loadtests.apps.hive_app import root

#: What wrk sends.
REQUEST = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
#: What ops/nginx.conf sends for a client of https://example.org/app/.
PROXIED = (
    b"GET %s HTTP/1.1\r\nHost: example.org\r\nX-Forwarded-For: 203.0.113.9\r\n"
    b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: example.org\r\n"
    b"X-Forwarded-Prefix: /app\r\n\r\n"
)


class _Counting:
    """A transport that keeps nothing."""

    written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def close(self) -> None:
        raise RuntimeError("the connection closed: the request was not answered as expected")

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _rounds(
    engine: str, path: bytes, count: int, rounds: int, profile: bool, site: Site
) -> float:
    loop = asyncio.get_running_loop()
    connection = Connection(
        get_engine(engine)(HeadLimits()),
        site,
        _Counting(),
        ConnectionLimits(),
        loop.time(),
        clock=loop.time,
        peer=IPv4Address("TCP", "127.0.0.1", 40000),
        host=IPv4Address("TCP", "127.0.0.1", 8080),
    )
    request = (PROXIED if site.trusted_proxies is not None else REQUEST) % path
    feed = connection.data_received

    in_task = path.startswith((b"/asgi", b"/fastapi"))

    async def run() -> float:
        started = time.perf_counter()
        if in_task:
            for _ in range(count):
                feed(request, 0.0)
                while not connection.idle:
                    await asyncio.sleep(0)
        else:
            for _ in range(count):
                feed(request, 0.0)
        return (time.perf_counter() - started) / count * 1e6

    await run()
    best = min([await run() for _ in range(rounds)])
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await run()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return best


async def _main(args: argparse.Namespace) -> None:
    path = b"/wsgi" if args.wsgi else b"/hello"
    if args.asgi:
        path = b"/asgi"
    elif args.fastapi:
        path = b"/fastapi/json"
    if args.wsgi:
        from hive.wsgi import set_default_threads

        set_default_threads(0)  # on the loop: a thread's hand-off is not Python's cost here
    site = Site(root)
    if args.behind_proxy:
        site.trusted_proxies = TrustedProxies(["127.0.0.1"])
    with tempfile.TemporaryDirectory(prefix="inprocess-") as workdir:
        if args.access_log:
            site.access_log = AccessLog.open(str(Path(workdir) / "access.log"))
            site.access_log_format = args.access_log
        try:
            best = await _rounds(args.engine, path, args.requests, args.rounds, args.profile, site)
        finally:
            if site.access_log is not None:
                site.access_log.close()
    via = " behind a trusted proxy" if args.behind_proxy else ""
    log = f" access-log={args.access_log}" if args.access_log else ""
    label = f"engine={args.engine} path={path.decode()}{via}{log}"
    print(f"{label}  {best:.2f} µs per request (best round)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", default="httptools", help="h11 or httptools")
    parser.add_argument("--wsgi", action="store_true", help="the WSGI hello app, on the loop")
    parser.add_argument("--asgi", action="store_true", help="the bare ASGI callable")
    parser.add_argument("--fastapi", action="store_true", help="the FastAPI JSON endpoint")
    parser.add_argument("--requests", type=int, default=20000, help="per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--behind-proxy",
        action="store_true",
        help="nginx's forwarding headers, from a trusted proxy (--forwarded-allow)",
    )
    parser.add_argument(
        "--access-log", choices=("combined", "json"), help="write the access log in this format"
    )
    args = parser.parse_args()
    if args.asgi or args.fastapi:
        import uvloop  # the loop an ASGI request's task runs on in the server

        uvloop.run(_main(args))
    else:
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
