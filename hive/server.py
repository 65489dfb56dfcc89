"""Site, Request and NOT_DONE_YET, with the names and semantics of ``twisted.web.server``.

A `Site` is the connection's request handler: for each complete request it makes a
`Request`, walks the resource tree and renders.  A render returns bytes (sent with a
Content-Length), or NOT_DONE_YET, after which the resource calls ``request.write`` and
``request.finish``.  ``render_*`` and ``getChild`` may be ``async def``.

Where hive differs from Twisted, on purpose:
- ``finish()`` and ``write()`` after the client went away are quiet no-ops.
- A method the resource does not render gets 405 with an Allow header (Twisted: 501).
- ``notifyFinish()`` returns an asyncio future, which also takes ``addCallback`` and
  ``addErrback``; a render (or ``getChild``) may return a Deferred, awaited as a coroutine.
- ``processingFailed`` takes the exception, not a Failure.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import traceback
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any, BinaryIO, Final, Protocol
from urllib.parse import quote_from_bytes, unquote_to_bytes

from zope.interface import implementer

from hive import http
from hive._accesslog import AccessLog, combined_bytes, json_bytes
from hive._clock import CLOCK, Clock
from hive._deferred import DeferredFuture, is_deferred, to_future
from hive._encoding import GzipEncoderFactory, start_encoder
from hive._forms import (
    FormError,
    format_set_cookie,
    parse_basic_auth,
    parse_cookies,
    parse_form,
    parse_query,
)
from hive._forwarded import (
    TrustedProxies,
    checked_prefix,
    forwarded_hops,
    split_host,
    x_forwarded_hops,
)
from hive.address import IPv4Address, IPv6Address, UNIXAddress
from hive.engine import FRAMING_HEADERS, RequestHead, header_lines, status_line
from hive.error import Error, UnsupportedMethod
from hive.http_headers import Headers, _checked_names
from hive.iweb import IAccessLogFormatter, IRequest, IResource
from hive.resource import (
    NOT_DONE_YET,
    ErrorPage,
    NoResource,
    Resource,
    allowed_methods,
    fixed_descendant,
    getChildForRequest,
    isawaitable,
)
from hive.session import (
    Session,
    SessionStore,
    SiteSessions,
    request_session,
    save_request_sessions,
    site_sessions,
)
from hive.urlpath import URLPath
from hive.worker.body import RequestBody
from hive.worker.connection import BodySink, Connection, Driven
from hive.worker.sendfile import send_copied, send_zero_copy

__all__ = [
    "NOT_DONE_YET",
    "GzipEncoderFactory",
    "Request",
    "Session",
    "Site",
    "site_for_factory",
    "version",
]

log = logging.getLogger("hive.server")

version: Final = b"hive"

Address = IPv4Address | IPv6Address | UNIXAddress


_PROTOCOLS = {b"1.1": b"HTTP/1.1", b"1.0": b"HTTP/1.0"}

#: The status logged for a request whose client went away before the response was over.
CLIENT_CLOSED_REQUEST = 499


@implementer(IRequest)
class Request:
    """One HTTP request and its response, as a resource sees them."""

    # Twisted's class attributes, for code that reads them before a request exists.
    code: int = http.OK
    code_message: bytes = b"OK"
    finished: bool = False
    startedWriting: bool = False
    sentLength: int = 0
    etag: bytes | None = None
    lastModified: int | None = None
    #: The Content-Type of a response with a body that sets none (Twisted's; None: no default).
    defaultContentType: bytes | None = b"text/html"
    # Per-request state that starts empty: class defaults save setting them on every request.
    _args: dict[bytes, list[bytes]] | None = None
    _cookies_in: dict[bytes, bytes] | None = None
    _finish_waiters: list[asyncio.Future[None]] | None = None
    _disconnected: bool = False
    _task: asyncio.Task[None] | None = None
    _producer: Any = None
    _write_waiter: asyncio.Future[None] | None = None
    # The sessions getSession gave this request (Twisted's names); saved as the response starts.
    _secureSession: Session | None = None
    _insecureSession: Session | None = None
    #: The body's encoder (gzip), set by EncodingResourceWrapper; Twisted's name.
    _encoder: Any = None
    _request_headers: Headers | None = None

    def __init__(self, channel: Connection, head: RequestHead, content: BinaryIO, site: Site):
        self.channel = channel
        self.site = site
        self.method = head.method
        self.uri = target = head.target
        self.clientproto = _PROTOCOLS.get(head.http_version) or b"HTTP/" + head.http_version
        self.content = content
        self.responseHeaders = Headers()
        self.cookies: list[bytes] = []
        self.prepath: list[bytes] = []
        self.sitepath: list[bytes] = []
        self.started = time.time()
        self._head = head
        self.host: Address = channel.host
        self.client: Address = channel.peer
        if site.trusted_proxies:
            self._apply_forwarded(site.trusted_proxies)
        if target[:1] == b"/" and b"?" not in target and b"%" not in target:
            self.path = target
            self._query = b""
            self.postpath = target[1:].split(b"/")
        else:
            self.path, self._query, self.postpath = split_target(target)

    @property
    def requestHeaders(self) -> Headers:
        """The request's headers; made from the parsed head when first asked for."""
        headers = self._request_headers
        if headers is None:
            headers = self._request_headers = Headers._from_pairs(self._head.headers)
        return headers

    @requestHeaders.setter
    def requestHeaders(self, value: Headers) -> None:
        self._request_headers = value

    def _apply_forwarded(self, proxies: TrustedProxies) -> None:
        """Take the client, scheme, host and path prefix from a trusted proxy's headers
        (hive._forwarded: Forwarded, else X-Forwarded-For/-Proto/-Host/-Prefix).

        A request from a trusted proxy is the client's request as the proxy received it:
        the Host the proxy passes on (or the one it says it got) names the site, with the
        scheme's port unless it gives one, and ``Site.root_path``, when set, is the prefix
        the site is served under.  From anyone else nothing here applies.
        """
        peer = self.client
        # A unix socket has no peer address: only a proxy on this host can connect to it.
        peer_host = "127.0.0.1" if isinstance(peer, UNIXAddress) else peer.host
        if not proxies.trusts(peer_host):
            return
        # The parsed head's names are lowercase: the dict is read directly, on the hot path.
        raw = self.requestHeaders._raw.get
        root_prepath = self.site._root_prepath
        # RFC 7239 has no prefix: X-Forwarded-Prefix says it beside either header, unless
        # the prefix is configured (then a header claiming one is not the proxy's).
        prefix_header = None if root_prepath is not None else raw(b"x-forwarded-prefix")
        standard = raw(b"forwarded")
        host: str | None = None
        prefix: str | None = None
        if standard:
            hops = forwarded_hops(standard, prefix_header)
        else:
            forwarded_for = raw(b"x-forwarded-for")
            proto = raw(b"x-forwarded-proto")
            forwarded_host = raw(b"x-forwarded-host")
            if forwarded_for or proto or forwarded_host or prefix_header:
                hops = x_forwarded_hops(forwarded_for, proto, forwarded_host, prefix_header)
            else:
                hops = []  # nothing said: the proxy is the client
        if hops:
            origin = proxies.origin(peer_host, hops)
            if origin.client != peer_host:
                # The proxy's port is not the client's; headers do not say it (as uvicorn).
                self.client = _address(origin.client, 0)
            if origin.scheme is not None:
                self._forced_secure = origin.scheme == "https"
            host = origin.host
            prefix = origin.prefix
        if host is None:
            # The proxy passes on the client's Host (nginx: proxy_set_header Host $host).
            header = raw(b"host")
            host = header[-1].decode("latin-1") if header else None
        if host is not None:
            # A said host passed checked_host; the Host header, the engines' check.
            hostname, port = split_host(host)
            if hostname and (port is None or 0 < port < 65536):
                self._set_origin(hostname, port, self.isSecure())
        # The site is served under the prefix: the tree's root is there.
        if root_prepath is not None:
            self.prepath = root_prepath[:]
        elif prefix is not None:
            self.prepath = _prefix_segments(prefix)

    def _set_origin(self, hostname: str, port: int | None, secure: bool) -> None:
        """The request came to ``hostname:port`` (the scheme's port if None) over
        ``secure``: the Host header, ``getHost()`` and ``isSecure()`` say so.  The one
        way a proxy's word reaches the request, from headers or from ``setHost``."""
        self._forced_secure = secure
        default = 443 if secure else 80
        if port is None:
            port = default
        name = hostname[1:-1] if hostname[:1] == "[" else hostname
        literal = f"[{name}]" if ":" in name else name
        value = (literal if port == default else f"{literal}:{port}").encode("latin-1")
        headers = self.requestHeaders
        if headers._raw.get(b"host") != [value]:
            headers.setRawHeaders(b"host", [value])
        host = self.host
        if isinstance(host, UNIXAddress) or host.host != name or host.port != port:
            self.host = _address(name, port)

    # -- request data ----------------------------------------------------------------------

    @property
    def args(self) -> dict[bytes, list[bytes]]:
        """Query arguments, merged with urlencoded or multipart form fields of the body."""
        args = self._args
        if args is None:
            args = parse_query(self._query) if self._query else {}
            # A streamed body is the resource's to read: only the query is parsed then.
            if self.method == b"POST" and not isinstance(self.content, RequestBody):
                content_type = self.requestHeaders.getRawHeaders(b"content-type")
                if content_type:
                    # As in Twisted, a form field replaces a query argument of the same name.
                    args.update(parse_form(content_type[-1], self.content))
            self._args = args
        return args

    @args.setter
    def args(self, value: dict[bytes, list[bytes]]) -> None:
        self._args = value

    @property
    def received_cookies(self) -> dict[bytes, bytes]:
        """Cookies the client sent."""
        cookies = self._cookies_in
        if cookies is None:
            values = self.requestHeaders.getRawHeaders(b"cookie")
            cookies = self._cookies_in = parse_cookies(values) if values else {}
        return cookies

    @received_cookies.setter
    def received_cookies(self, value: dict[bytes, bytes]) -> None:
        self._cookies_in = value

    def getHeader(self, key: bytes | str) -> Any:
        """The last value of the request header ``key``, or None."""
        if self._request_headers is None and type(key) is bytes and key.islower():
            # The parsed head as it came (names lowercased): no Headers made to read it.
            found = None
            for name, value in self._head.headers:
                if name == key:
                    found = value
            return found
        values = self.requestHeaders.getRawHeaders(key)
        return values[-1] if values else None

    def getAllHeaders(self) -> dict[bytes, bytes]:
        """Every request header, lowercased name to last value.

        Unlike Twisted's plain dict, a str key finds the bytes one (``headers["host"]``,
        which raises KeyError on Twisted under Python 3).
        """
        return _HeaderDict(
            (name, values[-1]) for name, values in self.requestHeaders._raw.items() if values
        )

    def getCookie(self, key: bytes) -> bytes | None:
        return self.received_cookies.get(key)

    def getUser(self) -> bytes:
        """The user name of Basic credentials, or b""."""
        credentials = parse_basic_auth(self.getHeader(b"authorization"))
        return credentials[0] if credentials else b""

    def getPassword(self) -> bytes:
        """The password of Basic credentials, or b""."""
        credentials = parse_basic_auth(self.getHeader(b"authorization"))
        return credentials[1] if credentials else b""

    def getClientAddress(self) -> Address:
        return self.client

    def getClientIP(self) -> str | None:
        client = self.client
        return client.host if not isinstance(client, UNIXAddress) else None

    def getHost(self) -> Address:
        return self.host

    def setHost(self, host: bytes, port: int, ssl: bool = False) -> None:
        """Pretend the request came to ``host:port``, over TLS if ``ssl``, as behind a
        proxy: the Host header (without the scheme's own port), ``getHost()``,
        ``isSecure()`` and every URL made from them follow."""
        self._set_origin(host.decode("latin-1"), port, bool(ssl))

    def isSecure(self) -> bool:
        forced: bool | None = getattr(self, "_forced_secure", None)
        return forced if forced is not None else self.channel.secure

    def getSession(self, sessionInterface: Any = None, forceNotSecure: bool = False) -> Any:
        """The client's session, made (and its cookie set) if it has none; see hive.session.

        Every worker sees it. ``forceNotSecure`` gives a secure request the plain-HTTP
        session; with a ``sessionInterface``, the session's component for it (Twisted's
        ``getSession(ICounter)``: ``ICounter(session)``).
        """
        session = request_session(self, forceNotSecure=forceNotSecure)
        if sessionInterface is not None:
            return session.getComponent(sessionInterface)
        return session

    @property
    def session(self) -> Session | None:
        """The session getSession gave this request (of its security), or None."""
        return self._secureSession if self.isSecure() else self._insecureSession

    def getRequestHostname(self) -> bytes:
        """The Host header's name without the port, else the address the request came to."""
        host = self.getHeader(b"host")
        if host:
            if host[:1] == b"[":
                return bytes(host.split(b"]", 1)[0] + b"]")
            return bytes(host.split(b":", 1)[0])
        address = self.host
        if isinstance(address, UNIXAddress):
            return b"localhost"
        return address.host.encode("ascii")

    def prePathURL(self) -> bytes:
        """The URL of the resource that is rendering (scheme, host, port and prepath)."""
        secure = self.isSecure()
        address = self.host
        port = getattr(address, "port", None)
        if isinstance(address, UNIXAddress) or port is None:
            host = self.getHeader(b"host") or b"localhost"
            hostport = b""
            hostname = bytes(host)
        else:
            hostname = self.getRequestHostname()
            hostport = b"" if port == (443 if secure else 80) else b":%d" % port
        path = b"/".join(quote_from_bytes(segment, safe="").encode() for segment in self.prepath)
        return b"http%s://%s%s/%s" % (b"s" if secure else b"", hostname, hostport, path)

    def URLPath(self) -> URLPath:
        return URLPath.fromBytes(self.prePathURL())

    def rememberRootURL(self) -> None:
        self.appRootURL = self.prePathURL()

    def getRootURL(self) -> bytes | None:
        return getattr(self, "appRootURL", None)

    # -- response --------------------------------------------------------------------------

    def setResponseCode(self, code: int, message: bytes | None = None) -> None:
        """Set the status; ``message`` defaults to the standard reason phrase."""
        if not isinstance(code, int):
            raise TypeError(f"HTTP response code must be int, not {type(code).__name__}")
        if message is not None and (b"\r" in message or b"\n" in message):
            raise ValueError("the reason phrase must not contain CR or LF")
        self.code = code
        self.code_message = message if message else http.RESPONSES.get(code, b"Unknown Status")

    def setHeader(self, name: bytes | str, value: bytes | str) -> None:
        """Set a response header, replacing any value it had; CR, LF or NUL raise ValueError."""
        if type(name) is bytes and type(value) is bytes:
            # The usual call, a name set before and a plain value, in one step.
            key = _checked_names.get(name)
            if (
                key is not None
                and b"\r" not in value
                and b"\n" not in value
                and b"\x00" not in value
            ):
                self.responseHeaders._raw[key] = [value]
                return
        self.responseHeaders.setRawHeaders(name, [value])

    def redirect(self, url: bytes) -> None:
        """Answer 302 Found with ``url`` as the Location."""
        self.setResponseCode(http.FOUND)
        self.setHeader(b"location", url)

    def addCookie(self, k: bytes | str, v: bytes | str, **kwargs: Any) -> None:
        """Add a Set-Cookie header (expires, domain, path, max_age, comment, secure,
        httpOnly, sameSite)."""
        self.cookies.append(format_set_cookie(k, v, **kwargs))

    def setLastModified(self, when: float) -> object | None:
        """Note the resource's modification time; return CACHED if the client's copy is fresh."""
        when = int(-(-when // 1))
        if self.lastModified is None or self.lastModified < when:
            self.lastModified = when
        since = self.getHeader(b"if-modified-since")
        if since and self.getHeader(b"if-none-match") is None:
            try:
                modified_since = http.stringToDatetime(since.split(b";", 1)[0])
            except ValueError:
                return None
            if modified_since >= self.lastModified:
                self.setResponseCode(http.NOT_MODIFIED)
                return http.CACHED
        return None

    def setETag(self, etag: bytes) -> object | None:
        """Note the entity tag (quotes included); return CACHED if it matches If-None-Match.

        A match answers 304 to GET and HEAD and 412 to other methods.
        """
        if etag:
            self.etag = etag
        tags = self.getHeader(b"if-none-match")
        if tags is None:
            return None
        candidates = [tag.strip() for tag in tags.split(b",")]
        weak = etag[2:] if etag.startswith(b"W/") else etag
        if b"*" in candidates or any(
            (tag[2:] if tag.startswith(b"W/") else tag) == weak for tag in candidates
        ):
            cached = self.method in (b"GET", b"HEAD")
            self.setResponseCode(http.NOT_MODIFIED if cached else http.PRECONDITION_FAILED)
            return http.CACHED
        return None

    def write(self, data: bytes) -> None:
        """Send ``data`` as part of the body; the status and headers go first."""
        if self.finished:
            raise RuntimeError("Request.write called on a request after Request.finish")
        if self._disconnected:
            return
        if self._encoder is not None:
            data = self._encode(data)
        if not self.startedWriting:
            self.startedWriting = True
            raw = self.responseHeaders._raw
            if b"content-type" not in raw and raw.get(b"content-length") != [b"0"]:
                self._add_default_content_type()
            headers, content_length, close = self._response_headers()
            self._body_allowed = self.channel.send_head(
                self.code, self.code_message, headers, content_length, close
            )
        if data:
            if not isinstance(data, bytes):
                raise TypeError(f"Request.write takes bytes, not {type(data).__name__}")
            self.sentLength += len(data)
            if self._body_allowed:
                self.channel.send_body(data)

    def finish(self) -> None:
        """End the response.  After the client went away this does nothing."""
        if self._disconnected:
            return
        if self.finished:
            raise RuntimeError("Request.finish called on a request after Request.finish")
        if not self.startedWriting:
            self._send(b"")
            return
        encoder, self._encoder = self._encoder, None
        if encoder is not None:
            self.write(encoder.finish())
        self.finished = True
        self.channel.finish_response()
        self._done(None)

    def _encode(self, data: bytes) -> bytes:
        """Pass written data through the encoder, which sees the head first and may decline."""
        encoder = self._encoder
        if not self.startedWriting and not start_encoder(self, encoder, None):
            self._encoder = None
            return data
        if data and not isinstance(data, bytes):
            raise TypeError(f"Request.write takes bytes, not {type(data).__name__}")
        return encoder.encode(data) if data else data

    async def sendfile(self, file: BinaryIO, offset: int, count: int) -> None:
        """Send ``count`` bytes of ``file`` from ``offset`` as body (hive's own addition).

        Over plain TCP with a declared Content-Length, the kernel copies the bytes from the
        file to the socket (``os.sendfile``, see hive.worker.sendfile); otherwise (TLS,
        chunked, an encoder) they are read and written a piece at a time, waiting while
        the client is not reading.  Raises ConnectionError if the client goes away.
        """
        if not self.startedWriting:
            self.write(b"")
        if self._disconnected:
            raise ConnectionError("connection lost")
        if not self._body_allowed or count <= 0:
            return
        if self._encoder is None and self.channel.can_sendfile():
            sent = await send_zero_copy(self, file, offset, count)
            offset += sent
            count -= sent
        await send_copied(self, file, offset, count)

    def switch_protocol(
        self, headers: list[tuple[bytes, bytes]], make: Callable[[Any, float], Driven]
    ) -> Driven:
        """Answer 101 Switching Protocols and hand the connection over (hive's own).

        ``headers`` go with the response's own (Server, Date, cookies); ``make(transport,
        now)`` builds the sans-IO object of the new protocol (hive.worker.websocket), which
        the worker feeds from then on.  The request is over, logged as 101.
        """
        if self.startedWriting or self._disconnected or not self.channel.can_switch():
            raise RuntimeError("the response has begun, or the request cannot switch protocol")
        self.setResponseCode(http.SWITCHING)
        own, _length, _close = self._response_headers()
        self.startedWriting = self.finished = True
        switched = self.channel.switch_protocol(own + headers, make)
        self._done(None)
        return switched

    def notifyFinish(self) -> DeferredFuture[None]:
        """A future that completes when the response is finished, or fails if the client
        goes away first.  It also takes Twisted's ``addCallback`` / ``addErrback`` (with
        Twisted installed), as the Deferred Twisted returns does."""
        future: DeferredFuture[None] = DeferredFuture(loop=asyncio.get_running_loop())
        if self.finished:
            future.set_result(None)
        elif self._disconnected:
            future.set_exception(ConnectionError("connection lost before the response finished"))
        else:
            if self._finish_waiters is None:
                self._finish_waiters = []
            self._finish_waiters.append(future)
        return future

    async def drain(self) -> None:
        """Wait until the client reads enough for writing to go on (hive's own addition)."""
        if self._disconnected:
            raise ConnectionError("connection lost")
        if not self.channel.write_paused:
            return
        if self._write_waiter is None:
            self._write_waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._write_waiter)

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """Twisted's producer protocol: a streaming producer is paused and resumed with
        the client's reading; a pull producer is asked for more whenever writing may go on."""
        if self._producer is not None:
            raise RuntimeError("a producer is already registered")
        self._producer = producer
        self._streaming = streaming
        if self.channel.write_paused:
            if streaming:
                producer.pauseProducing()
        elif not streaming:
            asyncio.get_running_loop().call_soon(self._pull)

    def unregisterProducer(self) -> None:
        self._producer = None

    def _pull(self) -> None:
        producer = self._producer
        if producer is not None and not self._streaming and not self._disconnected:
            producer.resumeProducing()
            if self._producer is producer and not self.channel.write_paused and not self.finished:
                asyncio.get_running_loop().call_soon(self._pull)

    # -- called by the connection ------------------------------------------------------------

    def connectionLost(self, reason: BaseException) -> None:
        """The client went away before the response was finished."""
        self._disconnected = True
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError("connection lost"))
        producer = self._producer
        if producer is not None:
            self._producer = None
            producer.stopProducing()
        self._done(reason if isinstance(reason, Exception) else ConnectionError(str(reason)))

    def writing_paused(self) -> None:
        producer = self._producer
        if producer is not None and self._streaming:
            producer.pauseProducing()

    def writing_resumed(self) -> None:
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        producer = self._producer
        if producer is not None:
            if self._streaming:
                producer.resumeProducing()
            else:
                self._pull()

    # -- processing ----------------------------------------------------------------------------

    def process(self) -> None:
        """Find the resource for this request and render it."""
        try:
            resource = self.site.getResourceFor(self)
            if not isinstance(resource, Resource) and isawaitable(resource):
                self._run(self._render_async(resource))
                return
            self.render(resource)
        except Exception as exc:
            self._fail(exc)

    def render(self, resource: IResource) -> None:
        """Render ``resource`` and send what it returns."""
        try:
            body = resource.render(self)
        except UnsupportedMethod as exc:
            body = self._not_allowed(resource, exc)
        if type(body) is bytes:
            self._send(body)
        elif body is NOT_DONE_YET:
            return
        elif isinstance(body, asyncio.Future):
            # A future (a WSGI call in a thread, say) is followed by a callback: no task.
            body.add_done_callback(self._future_done)
        elif is_deferred(body):
            # Before isawaitable: a Deferred has __await__, but only Twisted's loop can await it.
            to_future(body).add_done_callback(self._future_done)
        elif isawaitable(body):
            self._run(self._finish_async(body))
        else:
            self._send_bad_result(resource, body)

    def _send(self, body: bytes) -> None:
        """Send a whole response whose body is ``body``: one write for everything."""
        if self._disconnected:
            return
        if self.startedWriting:
            # Twisted allows write() calls and then returning the rest of the body.
            self.write(body)
            self.finish()
            return
        self.finished = self.startedWriting = True
        if body and b"content-type" not in self.responseHeaders._raw:
            self._add_default_content_type()
        if (
            self._encoder is None
            and self.etag is None
            and self.lastModified is None
            and not self.cookies
            and self._insecureSession is None
            and self._secureSession is None
        ):
            # The usual response: its head made in one piece, sent in one write with the body.
            head = self.site._response_head(self.code, self.code_message, self.responseHeaders)
            if head is not None and self.channel.respond_whole(self.code, head, body):
                self.sentLength = len(body)
                self._done(None)
                return
        if self._encoder is not None:
            body = self._encode_whole(body)
        headers, content_length, close = self._response_headers()
        channel = self.channel
        if self.method == b"HEAD" and not body and content_length is not None:
            # A HEAD answered without a body keeps the length the resource declared.
            channel.send_head(self.code, self.code_message, headers, content_length, close)
            channel.finish_response()
        else:
            self.sentLength = len(body)
            channel.respond(self.code, self.code_message, headers, body, close)
        self._done(None)

    def _add_default_content_type(self) -> None:
        """Twisted's rule: a body without a Content-Type is ``defaultContentType``."""
        default = self.defaultContentType
        if default is not None and self.code != http.NOT_MODIFIED and self.code != http.NO_CONTENT:
            self.responseHeaders.setRawHeaders(b"content-type", [default])

    def _encode_whole(self, body: bytes) -> bytes:
        """Encode a whole body at once, so that the response keeps a Content-Length."""
        encoder, self._encoder = self._encoder, None
        if self.method == b"HEAD" and not body:
            # Only a declared length: the encoder may drop it, the encoded one is unknown.
            start_encoder(self, encoder, None)
            return body
        if not start_encoder(self, encoder, len(body)):
            return body
        return bytes(encoder.encode(body) + encoder.finish())

    async def _render_async(self, resource: Awaitable[Any]) -> None:
        self.render(await resource)

    async def _finish_async(self, body: Awaitable[Any]) -> None:
        self._answer(await body)

    def _answer(self, result: object) -> None:
        """Send what a render gave later (awaited, or from a thread): bytes, or NOT_DONE_YET."""
        if type(result) is bytes:
            self._send(result)
        elif result is not NOT_DONE_YET:
            self._send_bad_result(None, result)

    def _future_done(self, future: asyncio.Future[Any]) -> None:
        try:
            self._answer(future.result())
        except asyncio.CancelledError:
            self._fail(RuntimeError("the future the render returned was cancelled"))
        except Exception as exc:
            self._fail(exc)

    def _run(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception as exc:
                self._fail(exc)

        self._task = asyncio.get_running_loop().create_task(guarded())

    def _not_allowed(self, resource: IResource, exc: UnsupportedMethod) -> bytes:
        allowed = exc.allowedMethods or list(allowed_methods(type(resource)))
        self.setHeader(b"allow", b", ".join(allowed))
        method = self.method.decode("latin-1")
        page = ErrorPage(http.NOT_ALLOWED, "Method Not Allowed", f"Not allowed: {method}.")
        return page.render(self)

    def _send_bad_result(self, resource: object, body: object) -> None:
        self._fail(TypeError(f"{resource!r}.render returned {body!r}, not bytes or NOT_DONE_YET"))

    def _fail(self, exc: Exception) -> None:
        if self._disconnected or self.finished:
            log.error("error after the response was over", exc_info=exc)
            return
        if isinstance(exc, FormError):
            exc = Error(http.BAD_REQUEST, str(exc).encode("utf-8", "replace"))
        if isinstance(exc, Error) and not self.startedWriting:
            detail = exc.message.decode("latin-1") if exc.message else ""
            page = ErrorPage(exc.status, http.RESPONSES.get(exc.status, b"Error").decode(), detail)
            self.responseHeaders = Headers()
            self.cookies = []
            self._send(page.render(self))
            return
        self.processingFailed(exc)

    def processingFailed(self, reason: BaseException) -> None:
        """Log ``reason``; answer 500, or cut the connection if the response had begun."""
        log.error(
            "error processing %s %s",
            self.method.decode("latin-1"),
            self.uri.decode("latin-1"),
            exc_info=reason,
        )
        if self.startedWriting:
            self.finished = True
            self.channel.abort_response()
            self._done(reason if isinstance(reason, Exception) else None)
            return
        if self.site.displayTracebacks:
            detail = "".join(traceback.format_exception(reason))
            body = (
                "<html><head><title>500 Internal Server Error</title></head><body>"
                "<h1>Internal Server Error</h1><pre>%s</pre></body></html>\n" % escape(detail)
            ).encode("utf-8")
        else:
            body = (
                b"<html><head><title>500 Internal Server Error</title></head><body>"
                b"<h1>Internal Server Error</h1><p>An error occurred rendering the requested"
                b" page. More information is in the server's log.</p></body></html>\n"
            )
        self.responseHeaders = Headers({b"content-type": [b"text/html; charset=utf-8"]})
        self.cookies = []
        self.setResponseCode(http.INTERNAL_SERVER_ERROR)
        self._send(body)

    def _response_headers(self) -> tuple[list[tuple[bytes, bytes]], int | None, bool]:
        """The header list to send, the declared Content-Length and whether to close."""
        if self._insecureSession is not None or self._secureSession is not None:
            # Before the response leaves: the client's next request may reach another worker.
            save_request_sessions(self)
        site = self.site
        response = self.responseHeaders
        headers = site._fixed_headers()
        content_length: int | None = None
        close = False
        if not FRAMING_HEADERS.isdisjoint(response._raw):
            for name, value in response._wire_items():
                lowered = name.lower()
                if lowered == b"content-length":
                    if value.isdigit():
                        content_length = int(value)
                elif lowered == b"connection":
                    close = close or b"close" in value.lower()
                elif lowered != b"transfer-encoding":
                    headers.append((name, value))
        else:
            headers.extend(response._wire_items())
        if self.etag is not None:
            headers.append((b"ETag", self.etag))
        if self.lastModified is not None:
            headers.append((b"Last-Modified", http.datetimeToString(self.lastModified)))
        for cookie in self.cookies:
            headers.append((b"Set-Cookie", cookie))
        return headers, content_length, close

    def _done(self, reason: Exception | None) -> None:
        # As Twisted does: the body is gone once the exchange is over.
        self.content.close()
        if self._insecureSession is not None or self._secureSession is not None:
            save_request_sessions(self)  # what changed after the response started
        waiters, self._finish_waiters = self._finish_waiters, None
        if waiters:
            for waiter in waiters:
                if waiter.done():
                    continue
                if reason is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(reason)
        self.site.log(self)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} at 0x{id(self):x} method={self.method.decode('latin-1')}"
            f" uri={self.uri.decode('latin-1')} clientproto={self.clientproto.decode()}>"
        )


class RequestStats(Protocol):
    """Where a Site counts requests (hive.worker.stats.WorkerStats)."""

    def request_started(self) -> None: ...

    def request_finished(self, method: bytes, code: int, started_at: float) -> None: ...


class Site:
    """Serves a resource tree: the request handler of every connection.

    ``displayTracebacks`` shows tracebacks on 500 pages (off by default: they leak
    internals).  ``server_header`` is the Server header's value (b"" for none), and
    ``access_log`` where access log lines go (None for nowhere).
    """

    requestFactory: Callable[..., Request] = Request
    displayTracebacks: bool = False
    #: Counts requests as they start and finish (the worker's stats), when set.
    stats: RequestStats | None = None
    #: Proxies whose Forwarded and X-Forwarded-* headers are believed (--forwarded-allow).
    trusted_proxies: TrustedProxies | None = None
    _root_prepath: list[bytes] | None = None
    #: "combined" (Apache/nginx) or "json" (one object per line).
    access_log_format: str = "combined"
    #: Makes sessions: called as sessionFactory(site, uid); a Session subclass (Twisted's).
    sessionFactory: Callable[..., Session] = Session
    #: The session cookie's name (``__Host-`` before it on secure requests; --session-cookie).
    sessionCookieName: bytes = b"HIVE_SESSION"
    #: Where sessions live; ``hive run`` sets a SQLite file (--session-dir); None: memory.
    sessionStore: SessionStore | None = None
    _sessions: SiteSessions | None = None

    def __init__(
        self,
        resource: IResource,
        requestFactory: Callable[..., Request] | None = None,
        logPath: bytes | str | None = None,
        timeout: float | None = None,
        logFormatter: IAccessLogFormatter | Callable[[str, IRequest], str] | None = None,
        reactor: object = None,
        *,
        server_header: bytes = version,
        access_log: AccessLog | None = None,
        clock: Clock = CLOCK,
    ) -> None:
        """Twisted's arguments: ``logPath`` is a file the Site writes its access log to (in
        place of ``--access-log``), ``logFormatter`` makes each line (``combinedLogFormatter``,
        ``proxiedLogFormatter`` from hive.http, or your own ``(timestamp, request) -> str``);
        ``timeout`` (``--keep-alive-timeout`` is hive's) and ``reactor`` are ignored."""
        self.resource = resource
        if requestFactory is not None:
            self.requestFactory = requestFactory
        self.server_header = server_header
        self.logPath = logPath
        self.logFormatter = logFormatter
        if access_log is None and logPath is not None:
            access_log = AccessLog.open(os.fsdecode(logPath))
        self.access_log = access_log
        self.clock = clock
        self._date = b""
        self._date_headers: list[tuple[bytes, bytes]] = []
        self._date_lines = b""
        self._status_lines: dict[int, tuple[bytes, bytes]] = {}

    def __call__(
        self, head: RequestHead, body: BinaryIO | BodySink, channel: Connection
    ) -> Request:
        """Start answering a request on ``channel``: complete, or with its body streamed
        (a RequestBody, which reads as a file)."""
        if self.stats is not None:
            self.stats.request_started()
        request = self.requestFactory(channel, head, body, self)
        request.process()
        return request

    def body_stream(self, head: RequestHead, channel: Connection) -> RequestBody | None:
        """A stream for the body of ``head`` when the resource that renders it streams
        request bodies (``streamsRequestBody``); else None: the body is received whole.

        The resource is looked for before the body is in, so only through the fixed
        children of ``putChild``: a ``getChild`` may read the body (a form field, say).
        """
        resource = fixed_descendant(self.resource, split_target(head.target)[2])
        if not getattr(resource, "streamsRequestBody", False):
            return None
        assert head.content_length is not None
        return RequestBody(channel, head.content_length, asyncio.get_running_loop())

    @property
    def root_path(self) -> str | None:
        """The path prefix (``/app``) the trusted proxies serve the site under, for a
        proxy that strips it without saying so (``--root-path``); None: what a trusted
        proxy's X-Forwarded-Prefix says, if anything.  It applies to requests from the
        proxies in ``trusted_proxies`` only: anyone else reached the site at its root."""
        prepath = self._root_prepath
        if prepath is None:
            return None
        return "/" + "/".join(quote_from_bytes(part, safe="") for part in prepath)

    @root_path.setter
    def root_path(self, value: str | None) -> None:
        if value is None or value.strip() in ("", "/"):
            self._root_prepath = None
            return
        prefix = checked_prefix(value)
        if prefix is None:
            raise ValueError(f"root_path: not a path prefix such as /app: {value!r}")
        self._root_prepath = _prefix_segments(prefix)

    def makeSession(self) -> Session:
        """A new session with a fresh random id (stored when saved)."""
        return site_sessions(self).make()

    def getSession(self, uid: bytes) -> Session:
        """The live session ``uid``; KeyError if it is unknown or expired."""
        return site_sessions(self).get(uid)

    def getResourceFor(self, request: Request) -> Any:
        """The resource that renders ``request``; an awaitable if a getChild is async."""
        request.site = self
        request.sitepath = request.prepath[:]
        return getChildForRequest(self.resource, request)

    def _fixed_headers(self) -> list[tuple[bytes, bytes]]:
        """Server and Date, the headers of every response; made once a second."""
        date = self.clock.http_date()
        if date is not self._date:
            self._new_second(date)
        return self._date_headers[:]

    def _new_second(self, date: bytes) -> None:
        self._date = date
        fixed = [(b"Date", date)]
        if self.server_header:
            fixed.insert(0, (b"Server", self.server_header))
        self._date_headers = fixed
        self._date_lines = header_lines(fixed)

    def _response_head(self, code: int, message: bytes, headers: Headers) -> bytes | None:
        """Status line, Server, Date and ``headers`` as bytes, for `Connection.respond_whole`;
        None if ``headers`` hold framing headers (the connection's to decide)."""
        if not FRAMING_HEADERS.isdisjoint(headers._raw):
            return None
        date = self.clock.http_date()
        if date is not self._date:
            self._new_second(date)
        status = self._status_lines.get(code)
        if status is None or status[0] != message:
            status = (message, status_line(code, message))
            if len(self._status_lines) < 64:
                self._status_lines[code] = status
        return status[1] + self._date_lines + header_lines(headers._wire_items())

    def log(self, request: Request) -> None:
        """Count a finished request and write its access log line.

        A request the client abandoned before its response was over is counted and logged
        with status 499 (nginx's "client closed request"), whatever the resource had set.
        """
        code = CLIENT_CLOSED_REQUEST if request._disconnected else request.code
        if self.stats is not None:
            self.stats.request_finished(request.method, code, request.started)
        access_log = self.access_log
        if access_log is None:
            return
        formatter = self.logFormatter
        if formatter is not None:
            # Twisted's hook: the line is the formatter's, the time in brackets.
            access_log.log(formatter(f"[{self.clock.log_stamp(request.started)}]", request))
            return
        if self.access_log_format == "json":
            # time.time(): the time base of `Request.started`, whatever clock dates lines.
            access_log.log_bytes(json_bytes(request, code, self.clock, time.time()))
        else:
            access_log.log_bytes(combined_bytes(request, code, self.clock))


def site_for_factory(factory: http.HTTPFactory) -> Site:
    """The Site that serves ``factory`` (``hive run module:factory``): requests made with
    the ``requestFactory`` of ``factory.buildProtocol(None)``, with the factory's log."""
    protocol = factory.buildProtocol(None)
    return Site(
        NoResource(),
        protocol.requestFactory or Request,
        logPath=factory.logPath,
        logFormatter=factory.logFormatter,
    )


class _HeaderDict(dict[bytes, bytes]):
    """`Request.getAllHeaders`: a dict of lowercased bytes names in which a str key finds
    its bytes name too, so a ported ``headers["host"]`` works as it did on Python 2."""

    def __missing__(self, key: object) -> bytes:
        if isinstance(key, str):
            lowered = key.encode("latin-1", "replace").lower()
            if lowered in self:
                return self[lowered]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            key = key.encode("latin-1", "replace").lower()
        return dict.__contains__(self, key)

    def get(self, key: object, default: Any = None) -> Any:
        try:
            return self[key]  # type: ignore[index]
        except KeyError:
            return default

    def copy(self) -> _HeaderDict:
        return _HeaderDict(self)


def split_target(target: bytes) -> tuple[bytes, bytes, list[bytes]]:
    """A request target's path, query and decoded path segments."""
    question = target.find(b"?")
    if question >= 0:
        query = target[question + 1 :]
        target = target[:question]
    else:
        query = b""
    if target[:1] != b"/" and target != b"*":
        # absolute-form (http://host/path): the path is what follows the authority.
        slash = target.find(b"/", target.find(b"//") + 2)
        target = target[slash:] if slash >= 0 else b"/"
    segments = target[1:].split(b"/")
    if b"%" in target:
        segments = [unquote_to_bytes(segment) for segment in segments]
    return target, query, segments


def _prefix_segments(prefix: str) -> list[bytes]:
    """``/my%20app/v1`` -> [b"my app", b"v1"]: a prefix as the prepath holds it."""
    return [unquote_to_bytes(part) for part in prefix[1:].split("/")]


def _address(host: str, port: int) -> IPv4Address | IPv6Address:
    """The address object for ``host`` (an IP address, or a name a proxy passed on)."""
    return (IPv6Address if ":" in host else IPv4Address)("TCP", host, port)
