"""Run the chat server and its control panel in one asyncio program.

    .venv/bin/python -m examples.chat --password s3cret
    # chat: nc 127.0.0.1 7000      panel: http://127.0.0.1:8080/ (admin / s3cret)

The program owns its loop, its signals and its logging; hive serves the panel on that
loop through ``hive.listen`` and leaves all three alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys

import hive
from examples.chat.server import ChatServer
from examples.chat.web import make_site
from hive.address import UNIXAddress


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


async def main(args: argparse.Namespace) -> int:
    chat = ChatServer()
    host, port = await chat.start(*_host_port(args.chat))
    password = args.password or os.environ.get("CHAT_PASSWORD") or secrets.token_urlsafe(9)
    site, ticker = make_site(chat, args.user, password)
    web = await hive.listen(site, args.web)
    panel = web.getHost()
    if isinstance(panel, UNIXAddress):
        where = f"unix:{panel.name!r}"
    else:
        where = f"http://{panel.host if ':' not in panel.host else f'[{panel.host}]'}:{panel.port}/"
    print(f"chat on {host}:{port}", flush=True)
    print(f"panel on {where} (user {args.user})", flush=True)
    if not (args.password or os.environ.get("CHAT_PASSWORD")):
        print(f"password: {password}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    logging.getLogger("examples.chat").info("stopping")
    if ticker is not None:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
    await web.stopListening(timeout=5)
    await chat.stop()
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m examples.chat", description=__doc__)
    parser.add_argument("--chat", default="127.0.0.1:7000", help="the chat's address")
    parser.add_argument("--web", default="127.0.0.1:8080", help="the panel's address")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", help="the panel's password (or $CHAT_PASSWORD)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
