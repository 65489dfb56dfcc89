"""The ops endpoint: /metrics, /healthz, /readyz and /status, served by the supervisor.

It runs on the supervisor's loop, not in the workers, so it answers while every worker is
busy or being replaced.  Requests are parsed with hive's own engine (h11, the strict
one); each connection carries one request and is closed after the answer, which is all a
scraper or a health check needs.  A client gets `CLIENT_TIMEOUT` seconds to send its
request and read the answer.
"""

from __future__ import annotations

import json
import selectors
import socket
from collections.abc import Callable
from dataclasses import dataclass

from hive.engine import END, HeadLimits, ProtocolError, RequestHead, plan_response
from hive.engine.h11 import H11Engine
from hive.http import RESPONSES

__all__ = ["OpsResponse", "OpsServer", "json_response", "text_response"]

CLIENT_TIMEOUT = 10.0
_LIMITS = HeadLimits(max_request_line=4096, max_head_bytes=16384, max_header_count=50)


@dataclass(frozen=True, slots=True)
class OpsResponse:
    status: int
    content_type: bytes
    body: bytes


def text_response(status: int, text: str) -> OpsResponse:
    return OpsResponse(status, b"text/plain; charset=utf-8", text.encode("utf-8"))


def json_response(status: int, data: object) -> OpsResponse:
    body = json.dumps(data, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    return OpsResponse(status, b"application/json", body)


#: Answers a request: (method, path, headers) -> response.
Router = Callable[[bytes, bytes, list[tuple[bytes, bytes]]], OpsResponse]


class _Client:
    __slots__ = ("deadline", "engine", "outgoing", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.engine = H11Engine(_LIMITS)
        self.outgoing = b""
        self.deadline = deadline


class OpsServer:
    """A small HTTP/1.1 server for the selector loop: accept, handle, watched, deadlines."""

    def __init__(self, sock: socket.socket, router: Router) -> None:
        self.sock = sock
        self.router = router
        self._clients: dict[int, _Client] = {}

    def fileno(self) -> int:
        return self.sock.fileno()

    def accept(self, now: float) -> None:
        """Take every pending connection."""
        while True:
            try:
                conn, _address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. out of file descriptors: try again on the next wake-up
            conn.setblocking(False)
            self._clients[conn.fileno()] = _Client(conn, now + CLIENT_TIMEOUT)

    def watched(self) -> dict[int, int]:
        """Client sockets and the events to wait for; make the selector match this."""
        return {
            fd: selectors.EVENT_WRITE if client.outgoing else selectors.EVENT_READ
            for fd, client in self._clients.items()
        }

    def handle(self, fd: int, readable: bool, writable: bool) -> None:
        client = self._clients.get(fd)
        if client is None:
            return
        if readable and not client.outgoing:
            try:
                data = client.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._drop(fd)
                return
            self._receive(client, data)
        if client.outgoing:
            self._send(fd, client)

    def _receive(self, client: _Client, data: bytes) -> None:
        head: RequestHead | None = None
        for event in client.engine.feed(data):
            if isinstance(event, RequestHead):
                head = event
            elif isinstance(event, ProtocolError):
                client.outgoing = _encode(client, None, text_response(event.status, "bad request"))
                return
            elif event is END and head is not None:
                if head.method not in (b"GET", b"HEAD"):
                    response = text_response(405, "use GET")
                else:
                    path = head.target.split(b"?", 1)[0]
                    response = self.router(head.method, path, head.headers)
                client.outgoing = _encode(client, head, response)
                return

    def _send(self, fd: int, client: _Client) -> None:
        try:
            sent = client.sock.send(client.outgoing)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(fd)
            return
        client.outgoing = client.outgoing[sent:]
        if not client.outgoing:
            self._drop(fd)

    def check_deadlines(self, now: float) -> None:
        for fd, client in list(self._clients.items()):
            if now >= client.deadline:
                self._drop(fd)

    def _drop(self, fd: int) -> None:
        client = self._clients.pop(fd, None)
        if client is not None:
            client.sock.close()

    def close(self) -> None:
        for fd in list(self._clients):
            self._drop(fd)
        self.sock.close()

    def close_in_child(self) -> None:
        self.close()


def _encode(client: _Client, head: RequestHead | None, response: OpsResponse) -> bytes:
    request = head or RequestHead(b"GET", b"/", b"1.1", [], False, False, 0)
    headers = [(b"Content-Type", response.content_type), (b"Cache-Control", b"no-store")]
    reason = RESPONSES.get(response.status, b"Unknown")
    plan = plan_response(
        request, response.status, reason, headers, len(response.body), closing=True
    )
    engine = client.engine
    data = engine.start_response(plan)
    if plan.body_allowed:
        data += engine.body(response.body)
    return data + engine.end_response()
