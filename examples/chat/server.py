"""A TCP chat server: lines from any client go to every other client.

The networking program the control panel watches, written as any asyncio program is:
``ChatServer`` knows nothing of the web. It tells the world through ``on_event``
(joined, left, renamed, said), which the web UI turns into channel messages.

The line protocol (telnet or ``nc`` will do): every line is said to everyone;
``/nick NAME`` renames you, ``/who`` lists who is here, ``/quit`` leaves.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["ChatServer", "Client", "Event"]

log = logging.getLogger("examples.chat")

#: The longest line a client may send; longer ones end its connection.
MAX_LINE = 4096
#: Lines kept for the panel's log.
HISTORY = 50
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,24}")


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # "joined", "left", "renamed", "said", "kicked", "broadcast"
    name: str
    text: str = ""
    at: float = field(default_factory=time.time)


class Client:
    """One connected client."""

    def __init__(self, name: str, peer: str, writer: asyncio.StreamWriter) -> None:
        self.name = name
        self.peer = peer
        self.writer = writer
        self.since = time.time()
        self.lines = 0
        self.bytes_in = 0
        self.bytes_out = 0

    def send(self, line: str) -> int:
        data = (line + "\r\n").encode("utf-8")
        if self.writer.is_closing():
            return 0
        self.writer.write(data)
        self.bytes_out += len(data)
        return len(data)


class ChatServer:
    def __init__(self, on_event: Callable[[Event], object] | None = None) -> None:
        self.clients: dict[str, Client] = {}
        self.history: deque[Event] = deque(maxlen=HISTORY)
        self.on_event = on_event
        self.started = time.time()
        self.connections = 0
        self.lines = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self._numbers = itertools.count(1)
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_LINE)
        address = self._server.sockets[0].getsockname()
        return address[0], address[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for client in list(self.clients.values()):
            client.send("* the server is going down")
            client.writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    # -- what the operator does --------------------------------------------------------------

    def kick(self, name: str) -> bool:
        client = self.clients.get(name)
        if client is None:
            return False
        self._count(client.send("* you were kicked by the operator"))
        client.writer.close()
        self._event(Event("kicked", name))
        return True

    def broadcast(self, text: str) -> int:
        """Say ``text`` to every client as the operator; how many it reached."""
        for client in self.clients.values():
            self._count(client.send(f"* operator: {text}"))
        self._event(Event("broadcast", "operator", text))
        return len(self.clients)

    # -- inside ------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = Client(f"guest{next(self._numbers)}", f"{peer[0]}:{peer[1]}", writer)
        self.clients[client.name] = client
        self.connections += 1
        self._count(client.send(f"* welcome, {client.name}; /nick NAME, /who, /quit"))
        self._event(Event("joined", client.name))
        try:
            while True:
                try:
                    raw = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    client.send("* line too long; bye")
                    break
                if not raw:
                    break
                client.bytes_in += len(raw)
                self.bytes_in += len(raw)
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not self._line(client, line):
                    break
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            if self.clients.get(client.name) is client:
                del self.clients[client.name]
            writer.close()
            self._event(Event("left", client.name))

    def _line(self, client: Client, line: str) -> bool:
        if line == "/quit":
            client.send("* bye")
            return False
        if line == "/who":
            self._count(client.send("* here: " + ", ".join(sorted(self.clients))))
            return True
        if line.startswith("/nick "):
            name = line[6:].strip()
            if not _NAME.fullmatch(name) or name in self.clients:
                self._count(client.send(f"* {name!r} is taken or not a name"))
                return True
            old = client.name
            del self.clients[old]
            client.name = name
            self.clients[name] = client
            self._event(Event("renamed", name, old))
            return True
        if not line:
            return True
        client.lines += 1
        self.lines += 1
        for other in self.clients.values():
            if other is not client:
                self._count(other.send(f"<{client.name}> {line}"))
        self._event(Event("said", client.name, line))
        return True

    def _count(self, sent: int) -> None:
        self.bytes_out += sent

    def _event(self, event: Event) -> None:
        self.history.append(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("error in the chat's event handler")
