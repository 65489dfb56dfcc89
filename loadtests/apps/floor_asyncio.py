"""Floor: a bare uvloop Protocol answering each request head with a canned response.

No parsing: it counts head ends (CRLF CRLF) and writes that many responses at once, and
closes after answering a head that asks for ``Connection: close``.  It does not read
bodies.  What any Python server on this event loop costs at the very least.

    python -m loadtests.apps.floor_asyncio --port 8080
"""

from __future__ import annotations

import argparse
import asyncio
from typing import cast

import uvloop

HEAD_END = b"\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"
RESPONSE_CLOSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
    b"Connection: close\r\n\r\nHello, world!"
)


class CannedProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        data = self.pending + data
        count = data.count(HEAD_END)
        if not count:
            self.pending = data
            return
        self.pending = data[data.rindex(HEAD_END) + 4 :]
        if b"Connection: close" in data or b"connection: close" in data:
            self.transport.write(RESPONSE_CLOSE)
            self.transport.close()
        else:
            self.transport.write(RESPONSE * count)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(CannedProtocol, "127.0.0.1", port, backlog=2048)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
