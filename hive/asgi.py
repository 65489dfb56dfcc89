"""ASGI applications (ASGI 3, HTTP spec 2.4) in the resource tree: FastAPI, Starlette...

    root.putChild(b"api", ASGIResource(app))   # root_path "/api", path the full path
    hive run --asgi myproject.main:app          # an application at the root

`ASGIResource` is a leaf, as ``WSGIResource`` is: ``root_path`` is where it is mounted
(the request's prepath, which starts with a trusted proxy's X-Forwarded-Prefix) and
``path`` the whole path, percent-decoded (the ASGI spec's reading, which Starlette and
uvicorn share: a framework routes on what follows ``root_path``, and builds URLs with
both).  ``raw_path`` is the path as received.  Each request runs the application in a task
of its own, in a copy of the context the resource was made in, so context variables
never leak from one request to the next.

The ``http`` scope:
- The request body is read while it arrives (``streamsRequestBody``): each ``receive()``
  gives what has come (``more_body`` until the end), and the socket is read only as fast
  as the application reads.  A body over ``--max-body-size`` is refused with 413 before
  the application runs; a chunked body is received whole first, then given in 64 KiB
  pieces.  Once the body is read, ``receive()`` waits: ``http.disconnect`` comes when
  the client goes away or the response is complete.
- ``send()`` waits while the client is not reading, and raises `ClientDisconnected` (an
  OSError, as spec 2.4 says) once the client has gone.  A response whose body comes in
  one message goes out in one write, framed by its length.
- ``http.response.pathsend`` (a file by its path) goes out through ``request.sendfile``:
  ``os.sendfile``, zero-copy, over plain TCP.  Trailers are not offered.
- Server and Date are the Site's (``--server-header``): the application's are dropped.

Errors: an application that raises (or returns) before ``http.response.start`` gets a
500 page, logged with its traceback (shown with ``--display-tracebacks``); after the
start, the connection is cut.  A malformed message raises in the application's ``send``
(TypeError, ValueError or RuntimeError), which ends the same way unless the application
catches it.  An exception after the client went away is logged as a note, not an error.

The ``lifespan`` protocol (`Lifespan`): ``hive run`` starts every ASGI application its
resources were made for, once per worker, before the worker is Ready, and shuts them down
when the worker drains.  A startup that fails (``lifespan.startup.failed``, or an
exception after the application read the startup event) fails the worker, so a reload to
such an application keeps the old workers.  An application that raises before reading
the event does not speak lifespan (as uvicorn's "auto"): it is served without.  What
startup puts in ``scope["state"]`` is copied (shallowly) into every request's scope.

The ``websocket`` scope (spec 2.4) for a request with ``Upgrade: websocket``: a handshake
hive.worker.websocket refuses (no key, another version) is answered 400/426 before the
application runs.  ``receive()`` gives ``websocket.connect``; ``websocket.accept`` (with
a subprotocol the client offered, and extra headers) answers 101 and hands the connection
to a `hive.worker.websocket.WebSocketConnection` (the one hive.websocket uses: pings,
deadlines, the size limit, 1001 when the worker drains), whose messages ``receive()``
gives as ``websocket.receive``; reading pauses while the application is `MAX_QUEUE`
messages behind.  ``send()`` waits while the client is not reading.  A close (or a
return) before the accept answers 403; ``websocket.http.response.start``/``body`` (the
denial extension) answer with the application's own response; an error before the accept
is a 500, after it a close with 1011.  ``websocket.disconnect`` carries the close code and
reason; a send after it raises `ClientDisconnected`.  Another Upgrade (h2c) is an ordinary
``http`` request.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import os
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from enum import Enum
from types import CoroutineType
from typing import Any, ClassVar, Final, cast
from urllib.parse import unquote_to_bytes

from zope.interface import implementer

from hive._header_lists import HeaderLists
from hive.address import UNIXAddress
from hive.http_headers import Headers, _checked_name
from hive.iweb import IRequest, IResource
from hive.resource import isawaitable
from hive.server import NOT_DONE_YET, Request
from hive.websocket import MAX_QUEUE
from hive.worker.body import RequestBody
from hive.worker.connection import Driven
from hive.worker.websocket import (
    CloseCode,
    Handshake,
    HandshakeError,
    WebSocketConnection,
    WebSocketLimits,
    accept_headers,
    check_handshake,
)

__all__ = ["ASGIResource", "ClientDisconnected", "Lifespan", "LifespanError"]

log = logging.getLogger("hive.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Application = Callable[[Scope, Receive, Send], Awaitable[None]]

#: A body received whole (chunked) is given to the application this much at a time.
BODY_CHUNK: Final = 64 * 1024
#: How long a lifespan shutdown may take when the caller gives no bound.
SHUTDOWN_TIMEOUT: Final = 30.0
#: Response headers the Site sets itself (--server-header); the application's are dropped.
_SITE_HEADERS: Final = (b"server", b"date")
_VERSIONS: Final = {b"1.1": "1.1", b"1.0": "1.0"}
_methods: dict[bytes, str] = {}


class ClientDisconnected(ConnectionError):
    """Raised by ``send()`` once the client has gone (ASGI spec 2.4: an OSError)."""


class LifespanError(Exception):
    """An application's lifespan startup failed; the message is one line."""


@implementer(IResource)
class ASGIResource:
    """A leaf resource that answers every request under it with an ASGI 3 application."""

    isLeaf = True
    #: The body is read while it arrives, as fast as the application reads it.
    streamsRequestBody = True
    server: Any = None

    def __init__(self, application: Application) -> None:
        if not callable(application):
            raise TypeError(f"the ASGI application must be callable, not {application!r}")
        self.application = application
        #: The application's lifespan, shared by every resource made for it.
        self.lifespan = Lifespan.of(application)
        self._context = contextvars.copy_context()

    def render(self, request: IRequest) -> Any:
        """Start the application in a task of its own (``http`` scope, or ``websocket``
        for a WebSocket handshake); it answers through ``send``."""
        # A container reads the request hive's Site makes (its parsed head, its answer
        # path, its switch to another protocol), not only what IRequest promises.
        request = cast(Request, request)
        scope = http_scope(request, self.lifespan.state)
        runner: Awaitable[None]
        if _asks_upgrade(request):
            handshake = check_handshake(
                request.method, request._head.http_version, scope["headers"]
            )
            if isinstance(handshake, Handshake):
                runner = _WebSocketCall(request, handshake).run(
                    self.application, websocket_scope(scope, handshake)
                )
            elif handshake.status == 426 and b"websocket" not in _upgrades(request):
                # Another protocol (h2c, say): the application answers it over HTTP.
                runner = _Call(request).run(self.application, scope)
            else:
                return _refuse(request, handshake)
        else:
            runner = _Call(request).run(self.application, scope)
        request._task = asyncio.get_running_loop().create_task(runner, context=self._context.copy())
        return NOT_DONE_YET

    def getChildWithDefault(self, name: bytes, request: IRequest) -> Any:
        raise RuntimeError("Cannot get IResource children from ASGIResource")

    def putChild(self, path: bytes, child: Any) -> None:
        raise RuntimeError("Cannot put IResource children under ASGIResource")


# -- the scope ---------------------------------------------------------------------------------


#: The scope's ``asgi`` key: the same for every request (read, not changed, by apps).
_ASGI_VERSIONS: Final = {"version": "3.0", "spec_version": "2.4"}


def http_scope(request: Request, state: dict[str, Any]) -> dict[str, Any]:
    """The ASGI ``http`` scope of ``request``, with a shallow copy of ``state``."""
    head = request._head
    path = request.path
    prepath = request.prepath
    method = _methods.get(request.method)
    if method is None:
        method = request.method.decode("latin-1")
        if len(_methods) < 64:
            _methods[request.method] = method
    changed = request._request_headers
    if changed is None:
        headers = list(head.headers)
    else:  # something changed the request's headers before (setHost, a wrapper)
        headers = [(name, value) for name, values in changed._raw.items() for value in values]
    if prepath:
        # The whole path the client asked for, as the tree walked it: the mount point (and
        # a trusted proxy's prefix, which the request put first in prepath), then the rest.
        full = "/" + b"/".join(prepath + request.postpath).decode("utf-8", "replace")
        root_path = "/" + b"/".join(prepath).decode("utf-8", "replace")
    else:
        full = (unquote_to_bytes(path) if b"%" in path else path).decode("utf-8", "replace")
        root_path = ""
    client = request.client
    host = request.host
    return {
        "type": "http",
        "asgi": _ASGI_VERSIONS,
        "http_version": _VERSIONS.get(head.http_version) or head.http_version.decode(),
        "method": method,
        "scheme": "https" if request.isSecure() else "http",
        "path": full,
        "raw_path": path,
        "query_string": request._query,
        "root_path": root_path,
        "headers": headers,
        "client": None if isinstance(client, UNIXAddress) else (client.host, client.port),
        "server": _unix_name(host) if isinstance(host, UNIXAddress) else (host.host, host.port),
        "state": state.copy() if state else {},
        "extensions": {"http.response.pathsend": {}},
    }


def websocket_scope(http: dict[str, Any], handshake: Handshake) -> dict[str, Any]:
    """The ``websocket`` scope made from a handshake request's ``http`` one."""
    scope = http
    del scope["method"]
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
    scope["subprotocols"] = list(handshake.subprotocols)
    scope["extensions"] = {"websocket.http.response": {}}
    return scope


def _asks_upgrade(request: Request) -> bool:
    headers = request._request_headers
    if headers is not None:
        return headers.hasHeader(b"upgrade")
    for name, _value in request._head.headers:  # noqa: SIM110 (cheaper than any() per request)
        if name == b"upgrade":
            return True
    return False


def _upgrades(request: Request) -> set[bytes]:
    values = request.requestHeaders.getRawHeaders(b"upgrade") or []
    return {token.strip().lower() for value in values for token in value.split(b",")}


def _refuse(request: Request, error: HandshakeError) -> bytes:
    """Answer a WebSocket handshake that cannot be taken (or that the application refused)."""
    request.setResponseCode(error.status)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    for name, value in error.headers:
        request.setHeader(name, value)
    log.info("WebSocket handshake refused (%d): %s", error.status, error.reason)
    return error.reason.encode("utf-8") + b"\n"


def _unix_name(address: UNIXAddress) -> tuple[str, None]:
    return (os.fsdecode(address.name) if address.name else "", None)


# -- the response's messages ----------------------------------------------------------------


def _parse_header_list(headers: object) -> tuple[list[tuple[bytes, bytes]], int | None]:
    """``http.response.start``'s headers as wire pairs, and apart from them the Content-Length.

    TypeError for a wrong shape; ValueError for a name that is not a token, a value with
    CR, LF or NUL, or a Content-Length that is not a number.
    """
    if isinstance(headers, str | bytes) or not isinstance(headers, Iterable):
        raise TypeError(
            f"headers must be an iterable of [name, value] pairs, not {type(headers).__name__}"
        )
    pairs = []
    length = None
    for header in headers:
        try:
            name, value = header
        except (TypeError, ValueError):
            raise TypeError(f"a header must be a [name, value] pair, not {header!r}") from None
        if type(name) is not bytes or type(value) is not bytes:
            raise TypeError(f"a header's name and value must be bytes, not {header!r}")
        key = _checked_name(name)
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise ValueError(f"value of header {name!r} contains CR, LF or NUL: {value!r}")
        if key == b"content-length":
            # Kept apart: a body sent whole is framed by its own length.
            if not value.strip().isdigit():
                raise ValueError(f"content-length must be a number, not {value!r}")
            length = int(value)
        elif key not in _SITE_HEADERS:
            pairs.append((key, value))
    return pairs, length


#: The list as Headers and its Content-Length, each distinct list parsed once.
parse_headers = HeaderLists(_parse_header_list)


class _Phase(Enum):
    """How far the response got."""

    NONE = "no start yet"
    STARTED = "started"  # the start is in, its head not sent
    STREAMING = "streaming"  # the head is sent, more body to come
    DONE = "done"


_NONE: Final = _Phase.NONE
_STARTED: Final = _Phase.STARTED
_STREAMING: Final = _Phase.STREAMING
_DONE: Final = _Phase.DONE
#: A call's headers until its start: never changed (nothing is sent before the start).
_NO_HEADERS: Final = Headers()


class _Call:
    """One call of the application: its ``receive`` and ``send``, and how far the
    response got.  Everything here runs on the event loop."""

    __slots__ = ("headers", "length", "phase", "request", "status", "unread")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.phase = _NONE
        self.status = 200
        self.headers = _NO_HEADERS
        #: The Content-Length the application declared, if any.
        self.length: int | None = None
        #: Body bytes not yet given to the application; -1 once the last piece was.
        content_length = request._head.content_length
        if content_length is None:  # chunked: received whole, so its size is known
            content = request.content
            content_length = content.seek(0, os.SEEK_END)
            content.seek(0)
        self.unread = content_length

    async def run(self, application: Application, scope: Scope) -> None:
        try:
            result = application(scope, self.receive, self.send)
            if type(result) is not CoroutineType and not isawaitable(result):
                raise TypeError(
                    f"the ASGI application returned {result!r}, not an awaitable: hive serves"
                    " ASGI 3, `async def app(scope, receive, send)`"
                )
            await result
        except (asyncio.CancelledError, GeneratorExit):
            # The task is cancelled or closed (the worker stopping): no answer will come.
            if self.phase is not _DONE:
                self.request.channel.abort_response()
            raise
        except BaseException as exc:
            self.raised(exc)
        else:
            self.returned()

    def returned(self) -> None:
        phase = self.phase
        if phase is _DONE or self.request._disconnected:
            return
        if phase is _NONE:
            self.failed(RuntimeError("the ASGI application returned without a response"))
        else:
            self.failed(RuntimeError("the ASGI application returned before its response's end"))

    def raised(self, exc: BaseException) -> None:
        request = self.request
        if not isinstance(exc, Exception):
            # SystemExit, KeyboardInterrupt: not the worker's to obey.
            error = RuntimeError(f"the ASGI application raised {type(exc).__name__}")
            error.__cause__ = exc
            exc = error
        if request._disconnected:
            if not isinstance(exc, ClientDisconnected):
                log.info("the ASGI application raised %r after the client went away", exc)
            return
        if self.phase is _DONE:
            request._fail(exc)  # logged: "error after the response was over"
            return
        self.failed(exc)

    def failed(self, exc: Exception) -> None:
        """Answer 500 if nothing was started, else cut the connection; logged either way."""
        request = self.request
        if self.phase is _STARTED:
            # The start was given: its head goes out, so the response is cut, not replaced.
            self._apply_head()
            request.write(b"")
        self.phase = _DONE
        request._fail(exc)

    # -- receive ------------------------------------------------------------------------

    async def receive(self) -> Message:
        """The next piece of the request body; then, once the response is complete or
        the client has gone, ``http.disconnect``."""
        request = self.request
        unread = self.unread
        if unread >= 0 and not request._disconnected:
            content = request.content
            if isinstance(content, RequestBody):
                try:
                    data = await content.aread1()
                except (ConnectionError, ValueError):  # the client went away; body closed
                    return {"type": "http.disconnect"}
            else:
                data = content.read(BODY_CHUNK) if unread else b""
            unread -= len(data)
            more = unread > 0 and bool(data)
            self.unread = unread if more else -1
            return {"type": "http.request", "body": data, "more_body": more}
        if self.phase is not _DONE and not request._disconnected:
            with contextlib.suppress(ConnectionError):  # the client went away: as good
                await request.notifyFinish()
        return {"type": "http.disconnect"}

    # -- send ---------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Take one message of the response; wait while the client is not reading."""
        request = self.request
        if request._disconnected:
            raise ClientDisconnected("the client went away")
        try:
            kind = message["type"]
        except (KeyError, TypeError):
            raise TypeError(
                f"an ASGI message must be a dict with a 'type', not {message!r}"
            ) from None
        if kind == "http.response.body":
            body = message.get("body", b"")
            if type(body) is not bytes:
                body = _as_bytes(body)
            more = message.get("more_body", False)
            phase = self.phase
            if phase is _STARTED:
                if not more:
                    self.phase = _DONE
                    self._send_whole(body)
                    return
                self.phase = _STREAMING
                self._apply_head()
                request.write(body)
            elif phase is _STREAMING:
                if body:
                    request.write(body)
                if not more:
                    self.phase = _DONE
                    request.finish()
                    return
            elif phase is _NONE:
                raise RuntimeError("http.response.body sent before http.response.start")
            else:
                raise RuntimeError("http.response.body sent after the response was complete")
            if request.channel.write_paused:
                try:
                    await request.drain()
                except ConnectionError:
                    raise ClientDisconnected("the client went away") from None
        elif kind == "http.response.start":
            self._start(message)
        elif kind == "http.response.pathsend":
            await self._pathsend(message)
        else:
            raise ValueError(f"unexpected ASGI message {kind!r} in the http scope")

    def _start(self, message: Message) -> None:
        if self.phase is not _NONE:
            raise RuntimeError("http.response.start sent twice")
        status = message.get("status")
        if type(status) is not int or not 200 <= status <= 999:
            raise ValueError(f"http.response.start's status must be an int 200-999, not {status!r}")
        if message.get("trailers"):
            raise ValueError("trailers are not supported (no http.response.trailers extension)")
        self.headers, self.length = parse_headers(message.get("headers", ()))
        self.status = status
        self.phase = _STARTED

    def _apply_head(self) -> None:
        """Give the request the status and headers, with the declared length."""
        request = self.request
        request.setResponseCode(self.status)
        headers = self.headers
        if self.length is not None:
            headers._raw[b"content-length"] = [b"%d" % self.length]
        request.responseHeaders = headers

    def _send_whole(self, body: bytes) -> None:
        """The whole body at once: one write, framed by its own length (HEAD keeps the
        declared one)."""
        request = self.request
        request.setResponseCode(self.status)
        length = self.length
        if length is not None and length != len(body):
            if request.method == b"HEAD" and not body:
                self.headers._raw[b"content-length"] = [b"%d" % length]
            elif len(body) > length:
                log.error("response body longer than its Content-Length; extra bytes dropped")
                body = body[:length]
            else:
                log.error("response body shorter than its Content-Length; sent with its own")
        request.responseHeaders = self.headers
        request._send(body)

    async def _pathsend(self, message: Message) -> None:
        """``http.response.pathsend``: the file at ``path`` is the body."""
        if self.phase is not _STARTED:
            raise RuntimeError("http.response.pathsend must come right after the start")
        path = message.get("path")
        if not isinstance(path, str):
            raise TypeError(f"http.response.pathsend's path must be a str, not {path!r}")
        request = self.request
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            self.length = size
            self.phase = _DONE
            self._apply_head()
            try:
                await request.sendfile(file, 0, size)
            except ConnectionError:
                raise ClientDisconnected("the client went away") from None
        request.finish()


def _as_bytes(body: object) -> bytes:
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    raise TypeError(f"http.response.body's body must be bytes, not {type(body).__name__}")


# -- the websocket scope ----------------------------------------------------------------------


class _WS(Enum):
    """Where a WebSocket call stands."""

    CONNECTING = "connecting"  # the handshake is in; no accept, close or denial yet
    OPEN = "open"  # accepted: the connection was handed over after the 101
    DENIED = "denied"  # an HTTP answer instead (websocket.http.response, or a 403)
    CLOSED = "closed"


_NO_LIMITS: Final = WebSocketLimits()


class _WebSocketCall:
    """One call of the application in the ``websocket`` scope: an HTTP exchange until
    ``websocket.accept`` (a close or a denial response answers it as HTTP), then the
    handler of the `WebSocketConnection` the exchange hands its transport to."""

    __slots__ = (
        "connection",
        "disconnect",
        "handshake",
        "http",
        "inbox",
        "request",
        "state",
        "waiter",
        "writers",
    )

    def __init__(self, request: Request, handshake: Handshake) -> None:
        self.request = request
        self.handshake = handshake
        #: The HTTP side: a denial response, and the 500 of an error before the accept.
        self.http = _Call(request)
        self.state = _WS.CONNECTING
        self.connection: WebSocketConnection | None = None
        #: What ``receive()`` gives next; websocket.connect first.
        self.inbox: deque[Message] = deque([{"type": "websocket.connect"}])
        #: The websocket.disconnect to give once the inbox is empty, when the end came.
        self.disconnect: Message | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.writers: list[asyncio.Future[None]] = []
        request.notifyFinish().add_done_callback(self._request_over)

    async def run(self, application: Application, scope: Scope) -> None:
        try:
            await application(scope, self.receive, self.send)
        except (asyncio.CancelledError, GeneratorExit):
            self._end(CloseCode.GOING_AWAY)
            raise
        except BaseException as exc:
            self.raised(exc)
        else:
            self.returned()

    def returned(self) -> None:
        state = self.state
        if state is _WS.CONNECTING:
            # Neither accepted nor closed: the spec's answer is 403.
            self._deny()
        elif state is _WS.OPEN:
            self._end(CloseCode.NORMAL)
        elif state is _WS.DENIED and not self.request.finished:
            self.http.returned()  # a denial response left unfinished

    def raised(self, exc: BaseException) -> None:
        state = self.state
        if state is _WS.CONNECTING:
            self.state = _WS.DENIED
            self.http.raised(exc)  # a 500, logged
        elif state is _WS.DENIED:
            self.http.raised(exc)
        elif self.disconnect is not None:
            if not isinstance(exc, ClientDisconnected):
                log.info("the ASGI application raised %r after the WebSocket closed", exc)
        else:
            log.error("error in an ASGI WebSocket application; closing it with 1011", exc_info=exc)
            self._end(CloseCode.INTERNAL_ERROR)

    # -- receive ------------------------------------------------------------------------

    async def receive(self) -> Message:
        """websocket.connect, then each message, then websocket.disconnect."""
        while True:
            inbox = self.inbox
            if inbox:
                message = inbox.popleft()
                connection = self.connection
                if connection is not None and len(inbox) == MAX_QUEUE // 2:
                    connection.resume_reading()
                return message
            if self.disconnect is not None:
                return self.disconnect
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            await waiter

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _request_over(self, finished: asyncio.Future[None]) -> None:
        """The handshake's exchange ended: switched (the 101), answered, or the client gone."""
        if finished.cancelled() or finished.exception() is None:
            return
        if self.state is _WS.CONNECTING or self.state is _WS.DENIED:
            self.disconnect = {"type": "websocket.disconnect", "code": CloseCode.ABNORMAL}
            self._wake()

    # -- WebSocketHandler: from the connection ------------------------------------------

    def message_received(self, message: str | bytes) -> None:
        if type(message) is str:
            self.inbox.append({"type": "websocket.receive", "text": message})
        else:
            self.inbox.append({"type": "websocket.receive", "bytes": message})
        if len(self.inbox) >= MAX_QUEUE and self.connection is not None:
            self.connection.pause_reading()  # the application is behind
        self._wake()

    def pong_received(self, payload: bytes) -> None:
        pass

    def writing_paused(self) -> None:
        pass

    def writing_resumed(self) -> None:
        writers, self.writers = self.writers, []
        for writer in writers:
            if not writer.done():
                writer.set_result(None)

    def closed(self, code: int, reason: str) -> None:
        self.disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
        if self.state is _WS.OPEN:
            self.state = _WS.CLOSED
        writers, self.writers = self.writers, []
        for writer in writers:
            if not writer.done():
                writer.set_exception(ClientDisconnected(f"the WebSocket closed with {code}"))
        self._wake()

    # -- send ---------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Take one message: accept, send, close, or a denial response."""
        try:
            kind = message["type"]
        except (KeyError, TypeError):
            raise TypeError(
                f"an ASGI message must be a dict with a 'type', not {message!r}"
            ) from None
        state = self.state
        if kind == "websocket.send":
            connection = self.connection
            if state is not _WS.OPEN or connection is None:
                if self.disconnect is not None:
                    raise ClientDisconnected("the WebSocket is closed")
                raise RuntimeError(f"websocket.send when the WebSocket is {state.value}")
            if not connection.open:
                raise ClientDisconnected("the WebSocket is closing")
            data, text = message.get("bytes"), message.get("text")
            if text is not None and data is None:
                if type(text) is not str:
                    raise TypeError(f"websocket.send's text must be a str, not {text!r}")
                connection.send_text(text)
            elif data is not None and text is None:
                if not isinstance(data, bytes | bytearray | memoryview):
                    raise TypeError(f"websocket.send's bytes must be bytes, not {data!r}")
                connection.send_bytes(bytes(data))
            else:
                raise ValueError("websocket.send needs one of bytes and text")
            if connection.write_paused:
                writer = asyncio.get_running_loop().create_future()
                self.writers.append(writer)
                await writer
        elif kind == "websocket.accept":
            if state is not _WS.CONNECTING:
                raise RuntimeError(f"websocket.accept when the WebSocket is {state.value}")
            self._accept(message)
        elif kind == "websocket.close":
            if state is _WS.CONNECTING:
                self._deny()
            elif state is _WS.OPEN:
                code = message.get("code", CloseCode.NORMAL)
                reason = message.get("reason") or ""
                if type(code) is not int or not isinstance(reason, str):
                    raise TypeError(
                        f"websocket.close takes an int code and a str reason: {message!r}"
                    )
                assert self.connection is not None
                self.connection.close(code, reason)  # ValueError for a code none may send
                self.state = _WS.CLOSED
            elif state is _WS.DENIED or self.disconnect is not None:
                raise ClientDisconnected("the WebSocket is closed")
        elif kind == "websocket.http.response.start" or kind == "websocket.http.response.body":
            if state is _WS.CONNECTING:
                self.state = state = _WS.DENIED
            if state is not _WS.DENIED:
                raise RuntimeError(f"{kind} when the WebSocket is {state.value}")
            await self.http.send({**message, "type": kind[len("websocket.") :]})
        else:
            raise ValueError(f"unexpected ASGI message {kind!r} in the websocket scope")

    def _accept(self, message: Message) -> None:
        request = self.request
        if request._disconnected:
            raise ClientDisconnected("the client went away before the accept")
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and subprotocol not in self.handshake.subprotocols:
            raise ValueError(
                f"websocket.accept's subprotocol {subprotocol!r} was not offered"
                f" (offered: {', '.join(self.handshake.subprotocols) or 'none'})"
            )
        extra, _length = parse_headers(message.get("headers", ()))
        for name in (b"upgrade", b"connection", b"sec-websocket-accept", b"sec-websocket-protocol"):
            if extra.hasHeader(name):
                raise ValueError(f"websocket.accept's headers must not set {name.decode()}")
        if not request.channel.can_switch():
            self.state = _WS.DENIED
            request._send(_refuse(request, HandshakeError(400, "bytes came before the 101")))
            return
        channel = request.channel
        limits = dataclasses.replace(
            _NO_LIMITS, drain_timeout=channel.limits.websocket_drain_timeout
        )
        stats = request.site.stats
        clock = channel._clock

        def make(transport: Any, now: float) -> Driven:
            connection = WebSocketConnection(
                transport,
                limits,
                now,
                clock=clock,
                subprotocol=subprotocol,
                stats=stats if hasattr(stats, "websocket_opened") else None,  # type: ignore[arg-type]
            )
            connection.handler = self
            self.connection = connection
            return connection

        self.state = _WS.OPEN
        headers = accept_headers(self.handshake, subprotocol, None) + extra._wire_items()
        request.switch_protocol(headers, make)

    def _deny(self) -> None:
        """Refuse the handshake with 403, as the spec says of a close before the accept."""
        self.state = _WS.DENIED
        request = self.request
        if not request._disconnected and not request.startedWriting:
            request._send(_refuse(request, HandshakeError(403, "the application refused it")))

    def _end(self, code: int) -> None:
        """The application is done with an open WebSocket: close it."""
        connection = self.connection
        if self.state is _WS.OPEN and connection is not None:
            self.state = _WS.CLOSED
            connection.close(code, "")
        elif self.state is _WS.CONNECTING:
            self._deny()


# -- lifespan ---------------------------------------------------------------------------------


class _LifespanPhase(Enum):
    IDLE = "not started"
    RUNNING = "running"
    UNSUPPORTED = "unsupported"
    STOPPED = "stopped"


class Lifespan:
    """The ``lifespan`` protocol of one application: ``await startup()`` before serving,
    ``await shutdown()`` after; `state` is what the application keeps there.

    ``Lifespan.of(app)`` gives the one of ``app`` (every ASGIResource has it), and
    `Lifespan.every` those of the applications alive: what ``hive run`` starts.
    """

    _known: ClassVar[weakref.WeakValueDictionary[int, Lifespan]] = weakref.WeakValueDictionary()

    def __init__(self, application: Application) -> None:
        self.application = application
        #: The lifespan scope's state: copied into every request's scope.
        self.state: dict[str, Any] = {}
        self.phase = _LifespanPhase.IDLE
        self._events: asyncio.Queue[Message] | None = None
        self._reply: asyncio.Future[Message] | None = None
        self._task: asyncio.Task[None] | None = None
        self._read = False

    @classmethod
    def of(cls, application: Application) -> Lifespan:
        """The lifespan of ``application``: one per application, however many resources."""
        lifespan = cls._known.get(id(application))
        if lifespan is None or lifespan.application is not application:
            lifespan = cls._known[id(application)] = cls(application)
        return lifespan

    @classmethod
    def every(cls) -> list[Lifespan]:
        """The lifespans of the applications that resources were made for and still hold."""
        return list(cls._known.values())

    @property
    def supported(self) -> bool:
        """Whether the application took part (known once startup is over)."""
        return self.phase is not _LifespanPhase.UNSUPPORTED

    async def startup(self) -> None:
        """Run the application's startup; LifespanError if it fails.  An application
        that raises before reading the startup event is served without lifespan."""
        if self.phase is not _LifespanPhase.IDLE:
            raise RuntimeError(f"lifespan startup when {self.phase.value}")
        self._events = asyncio.Queue()
        reply = self._ask({"type": "lifespan.startup"})
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        self._task = asyncio.get_running_loop().create_task(self._main(scope))
        try:
            answer = await self._answer(reply)
        except asyncio.CancelledError:
            self._task.cancel()
            raise
        name = _name(self.application)
        if answer is None:
            error = self._task.exception() if self._task.done() else None
            if not self._read:
                self.phase = _LifespanPhase.UNSUPPORTED
                how = f"raised {error!r}" if error is not None else "returned"
                log.info("%s does not speak ASGI lifespan (it %s); serving it without", name, how)
                return
            self.phase = _LifespanPhase.STOPPED
            if error is not None:
                log.error("%s: lifespan startup raised", name, exc_info=error)
                raise LifespanError(f"{name}: lifespan startup raised {_one_line(error)}")
            raise LifespanError(f"{name}: returned from lifespan startup without an answer")
        if answer["type"] == "lifespan.startup.failed":
            self.phase = _LifespanPhase.STOPPED
            raise LifespanError(f"{name}: lifespan startup failed: {_text(answer)}")
        self.phase = _LifespanPhase.RUNNING

    async def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Run the application's shutdown, for ``timeout`` seconds at most; a failure is
        logged (the worker is going away either way)."""
        task = self._task
        if self.phase is not _LifespanPhase.RUNNING or task is None or self._events is None:
            return
        self.phase = _LifespanPhase.STOPPED
        name = _name(self.application)
        reply = self._ask({"type": "lifespan.shutdown"})
        try:
            answer = await asyncio.wait_for(self._answer(reply), timeout)
        except TimeoutError:
            log.warning("%s: lifespan shutdown not done after %g s; cancelled", name, timeout)
            task.cancel()
            return
        if answer is None:
            error = task.exception() if task.done() else None
            if error is not None:
                log.error("%s: lifespan shutdown raised", name, exc_info=error)
            else:
                log.error("%s: returned from lifespan shutdown without an answer", name)
        elif answer["type"] == "lifespan.shutdown.failed":
            log.error("%s: lifespan shutdown failed: %s", name, _text(answer))
        if not task.done():
            # After its answer the application returns; give it a moment, no more.
            await asyncio.wait({task}, timeout=1.0)
            task.cancel()

    async def _main(self, scope: Scope) -> None:
        await self.application(scope, self._receive, self._send)

    def _ask(self, event: Message) -> asyncio.Future[Message]:
        """Queue ``event`` for the application; the future its answer will complete."""
        assert self._events is not None
        reply: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._reply = reply
        self._events.put_nowait(event)
        return reply

    async def _answer(self, reply: asyncio.Future[Message]) -> Message | None:
        """The application's answer; None if it ended first."""
        task = self._task
        assert task is not None
        waited: set[asyncio.Future[Any]] = {reply, task}
        await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
        self._reply = None
        if reply.done():
            return reply.result()
        reply.cancel()
        return None

    async def _receive(self) -> Message:
        assert self._events is not None
        self._read = True
        return await self._events.get()

    async def _send(self, message: Message) -> None:
        kind = message.get("type") if isinstance(message, Mapping) else None
        expected = {
            _LifespanPhase.IDLE: ("lifespan.startup.complete", "lifespan.startup.failed"),
            _LifespanPhase.STOPPED: ("lifespan.shutdown.complete", "lifespan.shutdown.failed"),
        }.get(self.phase, ())
        reply = self._reply
        if kind not in expected or reply is None or reply.done():
            raise RuntimeError(f"unexpected ASGI lifespan message {message!r}")
        reply.set_result(message)


def _name(application: object) -> str:
    """``module:qualname`` of a function, or of an instance's class (a FastAPI app)."""
    named = application if hasattr(application, "__qualname__") else type(application)
    return f"{getattr(named, '__module__', '?')}:{getattr(named, '__qualname__', '?')}"


def _text(message: Mapping[str, Any]) -> str:
    text = message.get("message", "")
    return " ".join(str(text).split()) or "(no message)"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
