"""The interfaces of hive's web surfaces, with ``twisted.web.iweb``'s names.

They are zope.interface Interfaces, as Twisted's are, so a ported program's
``@implementer(IResource)``, ``IRequest.providedBy(obj)`` and adapter registrations work
unchanged.  mypy checks them through the mypy-zope plugin: a class that says
``@implementer(IRequest)`` must define what the interface declares, and code typed with an
interface may use only what it declares.

This module is what lets resource code never import the server: `hive.resource`,
`hive.static` and the other resources type their requests as `IRequest`; `hive.server`
implements it.  Attributes are declared with annotations (mypy reads their types);
methods are declared without ``self``, as zope.interface wants.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, BinaryIO

from zope.interface import Attribute, Interface

from hive.address import IPv4Address, IPv6Address, UNIXAddress
from hive.http_headers import Headers
from hive.urlpath import URLPath

__all__ = [
    "IAccessLogFormatter",
    "ICredentialFactory",
    "IRenderable",
    "IRequest",
    "IResource",
    "ISession",
    "ITemplateLoader",
    "_IRequestEncoder",
    "_IRequestEncoderFactory",
]

Address = IPv4Address | IPv6Address | UNIXAddress


class IRequest(Interface):
    """One HTTP request and its response, as a resource sees them (`hive.server.Request`)."""

    method: bytes
    #: The request target as sent, query included.
    uri: bytes
    #: The target's path, without the query.
    path: bytes
    #: b"HTTP/1.1" or b"HTTP/1.0".
    clientproto: bytes
    #: Query arguments, merged with urlencoded or multipart form fields of the body.
    args: dict[bytes, list[bytes]]
    #: Path segments consumed by the traversal so far, and those still to go.
    prepath: list[bytes]
    postpath: list[bytes]
    #: The prepath of the Site's root (set when the Site takes the request).
    sitepath: list[bytes]
    requestHeaders: Headers
    #: The request body, a file object (or hive.worker.body.RequestBody when streamed).
    content: BinaryIO
    responseHeaders: Headers
    #: Set-Cookie values to send.
    cookies: list[bytes]
    received_cookies: dict[bytes, bytes]
    code: int
    code_message: bytes
    #: The status line and headers have been sent; the response has ended.
    startedWriting: bool
    finished: bool
    #: Body bytes written so far.
    sentLength: int
    etag: bytes | None
    lastModified: int | None
    #: The Content-Type of a response with a body that sets none (b"text/html"; None: none).
    defaultContentType: bytes | None
    #: When the request began, in seconds since the epoch.
    started: float
    #: The client's address (after trusted proxies) and the address it connected to.
    client: Address
    host: Address
    #: The Site serving this request, and the connection it came on.
    site: Any
    channel: Any
    #: The body's encoder (gzip), set by EncodingResourceWrapper: Twisted's private slot.
    _encoder: Any
    session = Attribute("The session getSession gave this request (of its security), or None.")

    def getHeader(key: bytes | str) -> Any:
        """The last value of the request header ``key``, or None."""

    def getAllHeaders() -> dict[bytes, bytes]:
        """Every request header, lowercased name to its last value."""

    def getCookie(key: bytes) -> bytes | None:
        """The value of the cookie ``key`` the client sent, or None."""

    def getUser() -> bytes:
        """The user name of Basic credentials, or b""."""

    def getPassword() -> bytes:
        """The password of Basic credentials, or b""."""

    def getClientAddress() -> Address:
        """The client's address."""

    def getClientIP() -> str | None:
        """The client's IP address, or None on a unix socket."""

    def getHost() -> Address:
        """The address the request came to."""

    def setHost(host: bytes, port: int, ssl: bool = False) -> None:
        """Pretend the request came to ``host:port``, as behind a proxy."""

    def getRequestHostname() -> bytes:
        """The Host header's name without the port, else the address the request came to."""

    def isSecure() -> bool:
        """Whether the request came over TLS (or through a trusted proxy that says so)."""

    def getSession(sessionInterface: object = None, forceNotSecure: bool = False) -> Any:
        """The client's session (hive.session.Session), made if it has none."""

    def prePathURL() -> bytes:
        """The URL of the resource that is rendering."""

    def URLPath() -> URLPath:
        """`prePathURL` as a URLPath."""

    def rememberRootURL() -> None:
        """Remember the current prePathURL as the application's root."""

    def getRootURL() -> bytes | None:
        """What rememberRootURL remembered."""

    def setResponseCode(code: int, message: bytes | None = None) -> None:
        """Set the response status."""

    def setHeader(name: bytes | str, value: bytes | str) -> None:
        """Set a response header, replacing any value it had."""

    def redirect(url: bytes) -> None:
        """Answer 302 Found with ``url`` as the Location."""

    def addCookie(k: bytes | str, v: bytes | str, **kwargs: Any) -> None:
        """Add a Set-Cookie header."""

    def setLastModified(when: float) -> object | None:
        """Note the modification time; return http.CACHED if the client's copy is fresh."""

    def setETag(etag: bytes) -> object | None:
        """Note the entity tag; return http.CACHED if it matches If-None-Match."""

    def write(data: bytes) -> None:
        """Send ``data`` as part of the body; the status and headers go first."""

    def finish() -> None:
        """End the response."""

    def notifyFinish() -> asyncio.Future[None]:
        """A future that completes when the response ends, or fails if the client leaves."""

    def drain() -> Awaitable[None]:
        """Wait while the client is not reading (hive's own)."""

    def sendfile(file: BinaryIO, offset: int, count: int) -> Awaitable[None]:
        """Send ``count`` bytes of ``file`` from ``offset`` as body (hive's own)."""

    def registerProducer(producer: Any, streaming: bool) -> None:
        """Twisted's producer protocol for a response body."""

    def unregisterProducer() -> None:
        """Forget the registered producer."""

    def processingFailed(reason: BaseException) -> None:
        """Log ``reason``; answer 500, or cut the connection if the response had begun."""


class IResource(Interface):
    """A node of the resource tree (`hive.resource.Resource`)."""

    isLeaf: bool

    def getChildWithDefault(name: bytes, request: IRequest) -> Any:
        """The child for the path segment ``name``: a resource, or an awaitable of one."""

    def putChild(path: bytes, child: IResource) -> None:
        """Make ``child`` answer for the path segment ``path``."""

    def render(request: IRequest) -> Any:
        """Bytes, NOT_DONE_YET, or an awaitable of either."""


class ISession(Interface):
    """A user's session (`hive.session.Session`), as ``request.getSession()`` gives it.

    Componentized, as Twisted's is: ``registerAdapter(Counter, ISession, ICounter)`` adapts
    every session class, ``ISession.providedBy(request.getSession())`` is true.
    """

    uid: bytes
    sessionTimeout: float
    lastModified: float

    def touch() -> None:
        """Note a use now: the session lasts ``sessionTimeout`` from now."""

    def expire() -> None:
        """End the session now (log out)."""

    def notifyOnExpire(callback: Callable[[], object]) -> None:
        """Call ``callback`` when the session ends."""

    def getComponent(interface: Any, default: Any = None) -> Any:
        """The session's component for ``interface``, made by its adapter if need be."""

    def setComponent(interfaceClass: Any, component: Any) -> None:
        """Make ``component`` the session's component for ``interfaceClass``."""


class IRenderable(Interface):
    """Something a template flattens by asking it to render (hive.template.Element)."""

    def lookupRenderMethod(name: str) -> Callable[..., Any]:
        """The renderer called ``name``."""

    def render(request: IRequest | None) -> Any:
        """What to flatten in this object's place."""


class ITemplateLoader(Interface):
    """Loads a template (hive.template's loaders)."""

    def load() -> list[Any]:
        """The template, as a list of things a flattener takes."""


class ICredentialFactory(Interface):
    """One HTTP authentication scheme: its challenge, and how to read its credentials."""

    scheme: bytes

    def getChallenge(request: IRequest) -> Mapping[str | bytes, str | bytes]:
        """The WWW-Authenticate parameters to send with a 401."""

    def decode(response: bytes, request: IRequest) -> Any:
        """The credentials in the Authorization header's ``response``; raises LoginFailed."""


class IAccessLogFormatter(Interface):
    """Formats a request's access log line (Twisted's ``Site(logFormatter=...)``)."""

    def __call__(timestamp: str, request: IRequest) -> str:
        """The line, without its line end."""


class _IRequestEncoder(Interface):
    """Encodes a response body (gzip), set in ``request._encoder``."""

    def encode(data: bytes) -> bytes:
        """Encoded ``data``; may be b"" while the encoder buffers."""

    def finish() -> bytes:
        """What is left to send at the end."""


class _IRequestEncoderFactory(Interface):
    """Gives an encoder for a request when the client accepts its coding."""

    def encoderForRequest(request: IRequest) -> Any:
        """An `_IRequestEncoder`, or None."""
