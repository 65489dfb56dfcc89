"""Floor: a bare uvloop Protocol parsing each request with httptools (llhttp, in C).

It keeps the URL and the header fields, as any server must, counts the body, answers
``Hello, world!`` (a POST: the body's length) and honours keep-alive; the responses to one
read go out in one write.  What a Python server on httptools costs at the very least.

    python -m loadtests.apps.floor_httptools --port 8080
"""

from __future__ import annotations

import argparse
import asyncio
from typing import cast

import httptools
import uvloop

from loadtests.apps import HELLO


def response(body: bytes, keep_alive: bool) -> bytes:
    connection = b"" if keep_alive else b"Connection: close\r\n"
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body),
        connection,
        body,
    )


HELLO_RESPONSE = response(HELLO, True)


class ParsingProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body_length = 0
        self.out: list[bytes] = []
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.headers = []
        self.body_length = 0

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body_length += len(body)

    def on_message_complete(self) -> None:
        keep_alive = self.parser.should_keep_alive()
        if self.parser.get_method() == b"POST":
            self.out.append(response(b"%d" % self.body_length, keep_alive))
        elif keep_alive:
            self.out.append(HELLO_RESPONSE)
        else:
            self.out.append(response(HELLO, False))
        self.closing = not keep_alive

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError:
            self.out.append(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.closing = True
        if self.out:
            self.transport.write(b"".join(self.out))
            self.out.clear()
        if self.closing:
            self.transport.close()


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(ParsingProtocol, "127.0.0.1", port, backlog=2048)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
