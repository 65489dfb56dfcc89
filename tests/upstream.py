"""A scripted HTTP server on 127.0.0.1, in threads: the upstream for proxy tests.

Each request is handed to ``respond(request, sock)``, which writes whatever it likes
(good answers, garbage, half a body, nothing) and returns whether to keep the connection
for another request.  Accepts, requests and closed connections are counted so tests can
see keep-alive reuse and the proxy letting go.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class UpstreamRequest:
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    connection: int  # which accepted connection (1, 2, ...) it came on
    raw_head: bytes = field(repr=False, default=b"")

    def header(self, name: bytes) -> bytes | None:
        values = [value for key, value in self.headers if key == name]
        return values[-1] if values else None

    def names(self) -> set[bytes]:
        return {key for key, _ in self.headers}


Respond = Callable[[UpstreamRequest, socket.socket], bool]


def ok(body: bytes = b"hello", extra: bytes = b"") -> Respond:
    """200 with a Content-Length body, keep-alive."""

    def respond(request: UpstreamRequest, sock: socket.socket) -> bool:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra)
        sock.sendall(head + (b"" if request.method == b"HEAD" else body))
        return True

    return respond


class Upstream:
    """The server; ``close()`` it (or use it as a context manager)."""

    def __init__(self, respond: Respond, *, read_bodies: bool = True) -> None:
        self.respond = respond
        #: False: answer as soon as the head is in, leaving the body unread.
        self.read_bodies = read_bodies
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.accepts = 0
        self.requests: list[UpstreamRequest] = []
        #: Connections that ended: the peer closed, or the respond function said so.
        self.closed = 0
        self.sent = 0  # bytes written by respond functions that count them
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._running = False
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()

    def _accept(self) -> None:
        while self._running:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepts += 1
                number = self.accepts
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                method, target, _ = lines[0].split(b" ", 2)
                headers = []
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers.append((name.strip().lower(), value.strip()))
                length = int(dict(headers).get(b"content-length", b"0"))
                if not self.read_bodies:
                    length = min(length, len(buffer))
                while len(buffer) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                body, buffer = buffer[:length], buffer[length:]
                request = UpstreamRequest(method, target, headers, body, number, head)
                with self._lock:
                    self.requests.append(request)
                if not self.respond(request, conn):
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self.closed += 1
            with contextlib.suppress(OSError):
                conn.close()
