"""The live endpoint: the page's WebSocket (hive.live.protocol), the script, the check.

`LiveResource` is mounted once (``root.putChild(b"_live", LiveResource())``); it answers

- the WebSocket of each page at its own URL, after `WebSocketResource` has checked the
  handshake and the Origin: the credentials the page offers as a subprotocol must name a
  page rendered for the session of the request's cookie, with its token (else 403);
- ``hive-live.js``, the client (cached for a year under its versioned URL);
- ``check`` (POST, JSON ``{"page", "token"}``): whether that page can still be restored,
  which the client asks after a refused handshake before it reloads the page.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Sequence
from importlib import resources
from typing import Any, Final

from hive.iweb import IRequest
from hive.live import _records as records
from hive.live import protocol
from hive.live._args import ArgumentError, parameters_of
from hive.live._element import LiveError, Page, RemoteError, _exposed, page_of
from hive.resource import Resource, isawaitable
from hive.session import Session, cookie_name, site_sessions
from hive.websocket import CloseCode, WebSocketResource, WebSocketTransport

__all__ = ["MAX_CALLS", "SCRIPT", "SCRIPT_VERSION", "LiveProtocol", "LiveResource"]

log = logging.getLogger("hive.live")

SCRIPT: Final = resources.files("hive.live").joinpath("static/hive-live.js").read_bytes()
SCRIPT_VERSION: Final = hashlib.blake2b(SCRIPT, digest_size=6).hexdigest()
#: Calls of one page that may run at once; more get an error (a page gone wild).
MAX_CALLS: Final = 32
#: The largest message a page may send (a call's arguments), in bytes.
MAX_MESSAGE: Final = 256 * 1024

_TASKS: set[asyncio.Future[Any]] = set()


def _keep(future: asyncio.Future[Any]) -> None:
    _TASKS.add(future)
    future.add_done_callback(_TASKS.discard)


class LiveResource(Resource):
    """The endpoint of every LivePage of a site: mount it where ``LivePage.liveURL`` says.

    ``allowedOrigins`` is `hive.websocket.WebSocketResource`'s (None: the page's own
    host); ``pingInterval`` and ``pingTimeout`` too (a dead connection is found within
    their sum, and its page is held for the client to come back).
    """

    def __init__(
        self,
        *,
        allowedOrigins: Sequence[str] | None = None,
        pingInterval: float = 20.0,
        pingTimeout: float = 20.0,
    ) -> None:
        super().__init__()
        self._websocket = WebSocketResource(
            _Factory(),
            allowedOrigins=allowedOrigins,
            subprotocols=[protocol.PROTOCOL],
            maxMessageSize=MAX_MESSAGE,
            pingInterval=pingInterval,
            pingTimeout=pingTimeout,
        )
        self.putChild(b"hive-live.js", _Script())
        self.putChild(b"check", _Check())

    def getChild(self, path: bytes, request: IRequest) -> Resource:
        if path == b"":
            return self
        child: Resource = super().getChild(path, request)
        return child

    def render_GET(self, request: IRequest) -> Any:
        return self._websocket.render_GET(request)


class _Script(Resource):
    isLeaf = True

    def render_GET(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", b"text/javascript; charset=utf-8")
        if request.args.get(b"v") == [SCRIPT_VERSION.encode()]:
            request.setHeader(b"cache-control", b"public, max-age=31536000, immutable")
        else:
            request.setHeader(b"cache-control", b"no-cache")
        etag = b'"' + SCRIPT_VERSION.encode() + b'"'
        if request.setETag(etag) is not None or request.method == b"HEAD":
            return b""
        return SCRIPT

    render_HEAD = render_GET


class _Check(Resource):
    isLeaf = True

    def render_POST(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        try:
            asked = json.loads(request.content.read(4096) or b"{}")
            page_id, token = str(asked["page"]), str(asked["token"])
        except (ValueError, KeyError, TypeError):
            request.setResponseCode(400)
            return b'{"error":"page and token, as JSON"}'
        found = _find(request, page_id, token)
        return b'{"live":true}' if found is not None else b'{"live":false}'


def _session_of(request: IRequest) -> Session | None:
    site = request.site
    name = cookie_name(site.sessionCookieName, request.isSecure(), request.sitepath)
    uid = request.getCookie(name)
    if not uid:
        return None
    try:
        session: Session = site.getSession(uid)
    except KeyError:
        return None
    return session


def _find(request: IRequest, page_id: str, token: str) -> tuple[Session, records.PageRecord] | None:
    """The session and the page's record if ``token`` is that page's, for this session."""
    session = _session_of(request)
    if session is None:
        return None
    sessions = site_sessions(request.site)
    record = records.load(sessions.store, page_id, sessions.clock())
    if record is None or not record.matches(session.uid, token):
        return None
    return session, record


class _Factory:
    """Checks a page's credentials at the handshake; None refuses it (403)."""

    def buildProtocol(self, request: IRequest) -> LiveProtocol | None:
        offered = [
            name.strip()
            for name in (request.getHeader(b"sec-websocket-protocol") or b"")
            .decode("latin-1")
            .split(",")
        ]
        credentials = protocol.credentials_from(offered)
        if credentials is None:
            log.info("live handshake without page credentials refused")
            return None
        page_id, token = credentials
        found = _find(request, page_id, token)
        if found is None:
            log.info("live handshake refused: no page %s for this session and token", page_id)
            return None
        session, record = found
        page = page_of(page_id)
        if page is not None and (page.owner != record.owner or page.dropped):
            page.drop()  # another worker had it since: what is here is stale
            page = None
        if page is None:
            page = Page.rebuild(page_id, record, session, request.site)
            if page is None:
                return LiveProtocol(None)
            restored = True
        else:
            restored = False
        session.save()  # the page is in use: so is its session
        page.take_over(secrets.token_urlsafe(9))
        return LiveProtocol(page, restored)


class LiveProtocol:
    """One page's WebSocket: messages to the page's elements, pushes to the page."""

    def __init__(self, page: Page | None, restored: bool = False) -> None:
        self.page = page
        self.restored = restored
        self.transport: WebSocketTransport | None = None
        self.open = False
        self._calls = 0
        self._hello = False

    # -- what the page sends ------------------------------------------------------------------

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport
        self.open = True
        transport.attachProducer(self)

    def negotiationFinished(self) -> None:
        if self.page is None:
            self.send(protocol.reload("the page cannot be restored here"))
            self.close(CloseCode.NORMAL, "reload")

    def textMessageReceived(self, text: str) -> None:
        page = self.page
        if page is None:
            return
        try:
            message = protocol.parse(text)
        except protocol.ProtocolError as exc:
            log.info("live page %s sent a bad message: %s", page.id, exc)
            self.close(CloseCode.POLICY_VIOLATION, "not the live protocol")
            return
        if page.dropped:
            return
        if not page.touch():
            self.close(protocol.CLOSE_SESSION_ENDED, "the session ended")
            page.drop(protocol.CLOSE_SESSION_ENDED)
            return
        if isinstance(message, protocol.Call):
            self._call(page, message)
        elif isinstance(message, protocol.Result):
            page.answered(message.id, message.value)
        elif isinstance(message, protocol.Failure):
            page.answered(message.id, error=RemoteError(message.name, message.message))
        elif isinstance(message, protocol.Hello):
            self._hello_received(page, message)
        else:
            page.forget(message.elements)

    def bytesMessageReceived(self, data: bytes) -> None:
        self.close(1003, "text messages only")  # unsupported data

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: BaseException) -> None:
        self.open = False
        if self.page is not None:
            self.page.detach(self)

    def _hello_received(self, page: Page, hello: protocol.Hello) -> None:
        if self._hello:
            return
        self._hello = True
        listed = {element for element, _ in hello.elements}
        gone = tuple(key for key in page.elements if key not in listed)
        if gone:
            page.forget(gone)
        self.send(protocol.ready())
        page.attach(self)
        if self.restored:
            # Rebuilt from the session: whatever happened while the page was away is
            # pushed by rendering the outermost elements again.
            page.refresh_all(
                [element for element, parent in hello.elements if parent not in page.elements]
            )

    def _call(self, page: Page, call: protocol.Call) -> None:
        element = page.elements.get(call.element)
        if element is None:
            self.send(protocol.error(call.id, "LookupError", f"no element {call.element}"))
            return
        method = _exposed(element, call.method)
        if method is None:
            self.send(
                protocol.error(
                    call.id,
                    "LookupError",
                    f"{type(element).__name__} exposes no method {call.method!r}",
                )
            )
            return
        if self._calls >= MAX_CALLS:
            self.send(protocol.error(call.id, "LiveError", "too many calls at once"))
            return
        owner = f"{type(element).__name__}.{call.method}"
        try:
            parameters = parameters_of(getattr(method, "__func__", method), owner)
            args, kwargs = parameters.bind(call.args, call.kwargs)
        except ArgumentError as exc:
            self.send(protocol.error(call.id, "TypeError", str(exc)))
            return
        except (TypeError, NameError) as exc:
            log.error("%s cannot be called from the page: %s", owner, exc)
            self.send(protocol.error(call.id, "TypeError", f"{owner} cannot be called"))
            return
        try:
            result = method(*args, **kwargs)
        except Exception as exc:
            self._failed(page, call.id, owner, exc)
            return
        if isawaitable(result):
            self._calls += 1
            task = asyncio.ensure_future(result)
            _keep(task)
            task.add_done_callback(lambda done: self._call_done(page, call.id, owner, done))
            return
        self._answer(page, call.id, owner, result)

    def _call_done(self, page: Page, call_id: int, owner: str, task: asyncio.Future[Any]) -> None:
        self._calls -= 1
        if task.cancelled():
            self.send(protocol.error(call_id, "CancelledError", f"{owner} was cancelled"))
            return
        error = task.exception()
        if error is not None:
            if isinstance(error, Exception):
                self._failed(page, call_id, owner, error)
            return
        self._answer(page, call_id, owner, task.result())

    def _answer(self, page: Page, call_id: int, owner: str, value: Any) -> None:
        try:
            text = protocol.result(call_id, value)
        except (TypeError, ValueError):
            log.error("%s returned %r, which is not JSON", owner, type(value).__name__)
            text = protocol.error(call_id, "TypeError", f"{owner} returned no JSON value")
        self.send(text)
        if not page.dropped:
            page.save()

    def _failed(self, page: Page, call_id: int, owner: str, error: Exception) -> None:
        if isinstance(error, LiveError):
            message = str(error)
        else:
            log.error("error in %s, called from a page", owner, exc_info=error)
            message = f"{owner} failed; the server's log says why"
        self.send(protocol.error(call_id, type(error).__name__, message))
        if not page.dropped:
            page.save()

    # -- what the server sends ------------------------------------------------------------

    def send(self, text: str) -> None:
        if self.open and self.transport is not None:
            self.transport.sendTextMessage(text)

    def close(self, code: int, reason: str = "") -> None:
        if self.open and self.transport is not None:
            self.open = False
            self.transport.loseConnection(code, reason)

    # -- a producer: the client's reading paces the pushes ---------------------------------

    def pauseProducing(self) -> None:
        if self.page is not None and self.page.connection is self:
            self.page.paused = True

    def resumeProducing(self) -> None:
        if self.page is not None and self.page.connection is self:
            self.page.resume()

    def stopProducing(self) -> None:
        pass
