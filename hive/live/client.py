"""A live page without a browser: loads a LivePage and speaks its protocol.

For tests of live UIs and for load tests (``loadtests/live_fanout.py``)::

    page = await LiveClient.open("http://127.0.0.1:8080/", headers={"Authorization": ...})
    await page.call("3", "kick", "bob")          # an exposed method of element 3
    push = await page.next("html")               # {"t": "html", "el": "3", ...}
    await page.close()

It does what hive-live.js does, minus the DOM: it reads the page's id, token and
elements from the HTML, keeps the session cookie, offers the credentials as a
subprotocol (with an Origin: the page's own, as a browser's), says hello, and answers
the server's calls with ``functions[name](element, *args)``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from websockets.asyncio.client import ClientConnection, connect

from hive.live import protocol
from hive.live._element import RemoteError

__all__ = ["LiveClient", "basic_auth"]


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


class _Page(HTMLParser):
    """The live script's data and the elements (id, parent) of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.script: dict[str, str] = {}
        self.elements: list[tuple[str, str | None]] = []
        self._stack: list[tuple[str, str | None]] = []  # (tag, element id or None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "script" and "data-page" in found:
            self.script = found
        live = found.get("data-hive-live")
        if live is not None:
            parent = next((e for _, e in reversed(self._stack) if e is not None), None)
            self.elements.append((live, parent))
        if tag not in _VOID:
            self._stack.append((tag, live))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                del self._stack[index:]
                return


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


async def _get(url: str, headers: dict[str, str], timeout: float) -> tuple[int, list[str], str]:
    """One GET over a fresh connection: (status, Set-Cookie values, body)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    head_lines = head.decode("latin-1").split("\r\n")
    status = int(head_lines[0].split()[1])
    cookies = []
    chunked = False
    for line in head_lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "set-cookie":
            cookies.append(value.strip().split(";", 1)[0])
        elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        body = _unchunk(body)
    return status, cookies, body.decode("utf-8", "replace")


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


class LiveClient:
    """One live page, opened with `open`; its WebSocket reconnects with `reconnect`."""

    def __init__(
        self,
        url: str,
        status: int,
        html: str,
        cookies: list[str],
        headers: dict[str, str],
        timeout: float,
    ) -> None:
        self.url = url
        #: The page's status and HTML as it was loaded.
        self.status = status
        self.html = html
        self.cookies = cookies
        self.headers = headers
        self.timeout = timeout
        parsed = _Page()
        parsed.feed(html)
        if not parsed.script:
            raise ValueError(f"{url} is no live page (no script with data-page): {status}")
        self.page = parsed.script["data-page"]
        self.token = parsed.script["data-token"]
        self.endpoint = urljoin(url, parsed.script["data-url"])
        #: (element id, parent id) as the page has them.
        self.elements = parsed.elements
        #: Functions the server's ``callRemote`` reaches: name -> f(element id, *args).
        self.functions: dict[str, Callable[..., Any]] = {}
        #: Messages other than answers (html, call, reload), in order.
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        #: What ``on_message`` is called with as each message arrives (for timing).
        self.on_message: Callable[[dict[str, Any]], object] | None = None
        #: Whether messages are kept in ``messages`` (off: only ``on_message`` sees them).
        self.keep = True
        self.closed: asyncio.Future[int] | None = None
        self._socket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._next = 1

    @classmethod
    async def open(
        cls, url: str, *, headers: dict[str, str] | None = None, timeout: float = 10.0
    ) -> LiveClient:
        """Load the page at ``url`` and connect it."""
        sent = dict(headers or {})
        status, cookies, html = await _get(url, sent, timeout)
        client = cls(url, status, html, cookies, sent, timeout)
        await client.connect()
        return client

    async def connect(self) -> None:
        """Open the page's WebSocket, say hello, and wait for ``ready``."""
        scheme = "wss" if self.endpoint.startswith("https") else "ws"
        parts = urlsplit(self.endpoint)
        ws_url = f"{scheme}://{parts.netloc}{parts.path}"
        extra = dict(self.headers)
        if self.cookies:
            extra["Cookie"] = "; ".join(self.cookies)
        origin = f"{urlsplit(self.url).scheme}://{urlsplit(self.url).netloc}"
        credentials = f"{protocol.CREDENTIALS_PREFIX}{self.page}.{self.token}"
        socket = await asyncio.wait_for(
            connect(
                ws_url,
                subprotocols=[protocol.PROTOCOL, credentials],  # type: ignore[list-item]
                additional_headers=extra,
                origin=origin,  # type: ignore[arg-type]
                open_timeout=self.timeout,
                max_size=None,
            ),
            self.timeout,
        )
        self._socket = socket
        self.closed = asyncio.get_running_loop().create_future()
        ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(socket, ready))
        hello = {"t": "hello", "els": [list(pair) for pair in self.elements]}
        await socket.send(json.dumps(hello))
        await asyncio.wait_for(ready, self.timeout)

    async def reconnect(self) -> None:
        """A new WebSocket for the same page (after a drop or a ``hive reload``)."""
        await self._drop()
        await self.connect()

    async def _read(self, socket: ClientConnection, ready: asyncio.Future[None]) -> None:
        code = 1006
        try:
            async for raw in socket:
                data = json.loads(raw)
                for message in data if isinstance(data, list) else [data]:
                    await self._received(socket, message, ready)
        except Exception:  # the connection went; closed says how
            pass
        finally:
            if socket.close_code is not None:
                code = socket.close_code
            if not ready.done():
                ready.set_exception(ConnectionError(f"closed with {code} before ready"))
            for future in self._calls.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"closed with {code}"))
            self._calls.clear()
            if self.closed is not None and not self.closed.done():
                self.closed.set_result(code)

    async def _received(
        self, socket: ClientConnection, message: dict[str, Any], ready: asyncio.Future[None]
    ) -> None:
        if self.on_message is not None:
            self.on_message(message)
        kind = message.get("t")
        if kind == "ready":
            if not ready.done():
                ready.set_result(None)
        elif kind == "result" or kind == "error":
            self._answered(message)
        elif kind == "call":
            await self._answer(socket, message)
        else:
            if kind == "reload" and not ready.done():
                ready.set_exception(ConnectionError("the server says: reload"))
            if self.keep:
                self.messages.put_nowait(message)

    def _answered(self, message: dict[str, Any]) -> None:
        future = self._calls.pop(message.get("id", -1), None)
        if future is None or future.done():
            return
        if message["t"] == "error":
            info = message.get("e") or {}
            future.set_exception(RemoteError(str(info.get("name")), str(info.get("message"))))
        else:
            future.set_result(message.get("v"))

    async def _answer(self, socket: ClientConnection, message: dict[str, Any]) -> None:
        function = self.functions.get(message.get("m", ""))
        try:
            if function is None:
                raise LookupError(f"no function {message.get('m')}")
            value = function(message.get("el"), *message.get("a", []))
            if asyncio.iscoroutine(value):
                value = await value
            reply = {"t": "result", "id": message["id"], "v": value}
        except Exception as exc:
            info = {"name": type(exc).__name__, "message": str(exc)}
            reply = {"t": "error", "id": message["id"], "e": info}
        await socket.send(json.dumps(reply))

    async def call(self, element: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call an exposed method; its result, or RemoteError."""
        socket = self._socket
        if socket is None:
            raise ConnectionError("not connected")
        call_id = self._next
        self._next += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[call_id] = future
        message = {"t": "call", "id": call_id, "el": element, "m": method, "a": list(args)}
        if kwargs:
            message["k"] = kwargs
        await socket.send(json.dumps(message))
        return await asyncio.wait_for(future, self.timeout)

    async def send_raw(self, text: str) -> None:
        """Send a message as it is (for tests of what the server does with bad ones)."""
        assert self._socket is not None
        await self._socket.send(text)

    async def next(self, kind: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """The next message (of ``kind``: "html", "call", "reload"), skipping others."""
        deadline = asyncio.get_running_loop().time() + (timeout or self.timeout)
        while True:
            left = deadline - asyncio.get_running_loop().time()
            message = await asyncio.wait_for(self.messages.get(), max(left, 0.001))
            if kind is None or message.get("t") == kind:
                return message

    async def until(
        self, check: Callable[[dict[str, Any]], bool], timeout: float | None = None
    ) -> dict[str, Any]:
        """The first message for which ``check`` is true; those before it are dropped."""
        deadline = asyncio.get_running_loop().time() + (timeout or self.timeout)
        while True:
            left = deadline - asyncio.get_running_loop().time()
            message = await asyncio.wait_for(self.messages.get(), max(left, 0.001))
            if check(message):
                return message

    def discard(self) -> None:
        """Forget the messages received so far."""
        while not self.messages.empty():
            self.messages.get_nowait()

    async def _drop(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader

    async def close(self) -> None:
        await self._drop()
