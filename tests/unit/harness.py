"""An in-memory connection: the real Site, Request and Connection, with a list for a socket.

Responses are read back with the standard library's http.client, an independent parser.
"""

from __future__ import annotations

import asyncio
import http.client
import io
from typing import Any

from hive.address import IPv4Address
from hive.engine import HeadLimits, get_engine
from hive.iweb import IResource
from hive.resource import Resource
from hive.server import NOT_DONE_YET, Request, Site
from hive.worker.connection import Connection, ConnectionLimits, Driven


class Held(Resource):
    """A leaf that keeps every request open (NOT_DONE_YET) for the test to answer."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []

    def render_GET(self, request: Request) -> Any:
        self.requests.append(request)
        return NOT_DONE_YET


class MemoryTransport:
    """Records what a Connection writes; the Transport protocol in memory."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.data += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class Response:
    def __init__(self, raw: http.client.HTTPResponse) -> None:
        self.status = raw.status
        self.reason = raw.reason
        self.headers = raw.headers
        self.body = raw.read()
        self.version = raw.version

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.headers.items()} {self.body[:80]!r}>"


class Harness:
    """One connection to ``root`` (a resource or a Site)."""

    def __init__(
        self,
        root: IResource | Site,
        *,
        engine: str = "h11",
        limits: ConnectionLimits | None = None,
        head_limits: HeadLimits | None = None,
        now: float = 0.0,
    ) -> None:
        self.site = root if isinstance(root, Site) else Site(root)
        self.transport = MemoryTransport()
        self.connection = Connection(
            get_engine(engine)(head_limits or HeadLimits()),
            self.site,
            self.transport,
            limits or ConnectionLimits(),
            now,
            clock=lambda: self.now,
            peer=IPv4Address("TCP", "192.0.2.7", 5555),
            host=IPv4Address("TCP", "127.0.0.1", 8080),
            on_switch=self._switched,
        )
        #: What the driver feeds: the connection, or the protocol it switched to (101).
        self.driven: Driven = self.connection
        self._read = 0
        self.now = now

    def _switched(self, switched: Driven) -> None:
        self.driven = switched

    def send(self, data: bytes, now: float | None = None) -> None:
        if now is not None:
            self.now = now
        self.driven.data_received(data, self.now)

    def responses(self, method: str = "GET") -> list[Response]:
        """Every complete response written since the last call."""
        out = []
        data = bytes(self.transport.data[self._read :])
        buffer = _Unclosable(data)
        while buffer.tell() < len(data):
            raw = http.client.HTTPResponse(_Sock(buffer), method=method)  # type: ignore[arg-type]
            raw.begin()
            out.append(Response(raw))
        self._read += buffer.tell()
        return out

    def response(self, method: str = "GET") -> Response:
        (one,) = self.responses(method)
        return one

    def get(
        self, target: str = "/", headers: dict[str, str] | None = None, method: str = "GET"
    ) -> Response:
        lines = [f"{method} {target} HTTP/1.1", "Host: example.com"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return self.response(method)


class _Unclosable(io.BytesIO):
    """http.client closes the file after a body; the next response is in it too."""

    def close(self) -> None:
        pass


class _Sock:
    def __init__(self, buffer: io.BytesIO) -> None:
        self.buffer = buffer

    def makefile(self, mode: str) -> io.BytesIO:
        return self.buffer


def run(coro: Any) -> Any:
    """Run a coroutine on a fresh event loop."""
    return asyncio.run(coro)


async def settle(rounds: int = 5) -> None:
    """Let scheduled tasks run."""
    for _ in range(rounds):
        await asyncio.sleep(0)
