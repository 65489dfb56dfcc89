"""Resources: the tree a request is dispatched through, with ``twisted.web.resource``'s names.

A request's path is consumed one segment at a time: each resource's ``getChildWithDefault``
gives the resource for the next segment, until the path is used up or a resource says it is
a leaf (``isLeaf``).  That resource renders the request.

Beyond Twisted, ``getChild`` and ``render_<METHOD>`` may be ``async def``, or return a
Twisted Deferred: the server awaits the result and treats it as it would a synchronous one.

The walk is written here once: `getChildForRequest` (which ``Site.getResourceFor``
delegates to) goes on in `_walk_async` when a ``getChild`` gives an awaitable, and
`fixed_descendant` follows only ``putChild`` children, for decisions made before a
request's body is in.
"""

from __future__ import annotations

import html
import inspect
from collections.abc import Awaitable, Iterable
from types import GeneratorType
from typing import Any, Final

from zope.interface import implementer

from hive._deferred import is_deferred, to_future
from hive._encoding import VaryOnly
from hive.error import UnsupportedMethod
from hive.iweb import IRequest, IResource

__all__ = [
    "NOT_DONE_YET",
    "EncodingResourceWrapper",
    "ErrorPage",
    "ForbiddenResource",
    "IResource",
    "NoResource",
    "Resource",
    "getChildForRequest",
]


class _NotDoneYet:
    """The type of NOT_DONE_YET."""

    _instance: _NotDoneYet | None = None

    def __new__(cls) -> _NotDoneYet:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_DONE_YET"


#: Returned by a render method that will answer later through write() and finish().
NOT_DONE_YET: Final = _NotDoneYet()


@implementer(IResource)
class Resource:
    """A node of the resource tree.

    Subclasses define ``render_GET``, ``render_POST``... returning bytes, or NOT_DONE_YET
    after which they call ``request.write`` and ``request.finish``; and ``getChild`` for
    children made on demand.  ``putChild`` adds a fixed child.
    """

    isLeaf: bool = False
    #: hive's own: render as soon as the head of a request with a Content-Length is in, and
    #: read ``request.content`` (a hive.worker.body.RequestBody) while the body arrives.
    #: Only for a resource reached through ``putChild`` children (or the root).
    streamsRequestBody: bool = False
    #: Methods this resource answers; computed from its ``render_*`` methods when unset.
    allowedMethods: tuple[bytes, ...]
    server: Any = None

    def __init__(self) -> None:
        self.children: dict[bytes, IResource] = {}

    def getChild(self, path: bytes, request: IRequest) -> Any:
        """The child for ``path`` when no fixed child has that name: 404 by default."""
        return NoResource("No such child resource.")

    def getChildWithDefault(self, path: bytes, request: IRequest) -> Any:
        """The fixed child called ``path``, or else ``getChild(path, request)``."""
        child = self.children.get(path)
        if child is not None:
            return child
        return self.getChild(path, request)

    def getChildForRequest(self, request: IRequest) -> Any:
        """Deprecated in Twisted; kept for ports."""
        return getChildForRequest(self, request)

    def putChild(self, path: bytes, child: IResource) -> None:
        """Make ``child`` answer for the path segment ``path`` (bytes, no slashes)."""
        if not isinstance(path, bytes):
            raise TypeError(f"path segment must be bytes, not {type(path).__name__}: {path!r}")
        if b"/" in path:
            raise ValueError(f"path segment must not contain a slash: {path!r}")
        self.children[path] = child
        child.server = self.server  # type: ignore[attr-defined]

    def render(self, request: IRequest) -> Any:
        """Call ``render_<METHOD>``; HEAD falls back to GET; otherwise 405."""
        method = request.method
        handler = getattr(self, "render_" + method.decode("ascii", "replace"), None)
        if handler is None and method == b"HEAD":
            handler = getattr(self, "render_GET", None)
        if handler is None:
            allowed = getattr(self, "allowedMethods", None)
            if allowed is None:
                allowed = allowed_methods(type(self))
            raise UnsupportedMethod(allowed)
        return handler(request)


_allowed_cache: dict[type, tuple[bytes, ...]] = {}


def allowed_methods(cls: type) -> tuple[bytes, ...]:
    """The methods a resource class renders, from its ``render_*`` methods (HEAD with GET)."""
    allowed = _allowed_cache.get(cls)
    if allowed is None:
        names = {name[7:] for name in dir(cls) if name.startswith("render_") and name[7:]}
        if "GET" in names:
            names.add("HEAD")
        allowed = tuple(sorted(name.encode("ascii") for name in names))
        _allowed_cache[cls] = allowed
    return allowed


def getChildForRequest(resource: Any, request: IRequest) -> Any:
    """Walk ``request.postpath`` from ``resource`` and return the resource that renders.

    Each segment moves from ``postpath`` to ``prepath``.  When a ``getChild`` is
    ``async def`` (hive's own), the walk goes on once it has answered, and what is returned
    is an awaitable of the resource: await it.
    """
    postpath = request.postpath
    prepath = request.prepath
    while postpath and not resource.isLeaf:
        name = postpath.pop(0)
        prepath.append(name)
        resource = resource.getChildWithDefault(name, request)
        if not isinstance(resource, Resource) and isawaitable(resource):
            return _walk_async(resource, request)
    return resource


async def _walk_async(pending: Awaitable[Any], request: IRequest) -> Any:
    """`getChildForRequest` from the point where a ``getChild`` gave an awaitable (a
    coroutine, a future, or a Twisted Deferred)."""
    resource = await _asyncio_awaitable(pending)
    postpath = request.postpath
    prepath = request.prepath
    while postpath and not resource.isLeaf:
        name = postpath.pop(0)
        prepath.append(name)
        resource = resource.getChildWithDefault(name, request)
        if not isinstance(resource, Resource) and isawaitable(resource):
            resource = await _asyncio_awaitable(resource)
    return resource


def _asyncio_awaitable(value: Awaitable[Any]) -> Awaitable[Any]:
    # A Deferred has __await__, but awaiting it straight from a Task only works once it
    # has fired: hive awaits it through a future instead.
    return to_future(value) if is_deferred(value) else value


def fixed_descendant(resource: Any, segments: list[bytes]) -> Any:
    """The resource ``segments`` lead to through ``putChild`` children alone, or None.

    The walk `getChildForRequest` would make, for a tree whose resources keep
    Resource's own ``getChildWithDefault``; None where one does not (its ``getChild``
    might read the request, which is not ready) or a segment has no fixed child.
    """
    for name in segments:
        if resource.isLeaf:
            break
        if type(resource).getChildWithDefault is not Resource.getChildWithDefault:
            return None
        resource = getattr(resource, "children", {}).get(name)
        if resource is None:
            return None
    return resource


def isawaitable(value: object) -> bool:
    """Whether ``value`` can be awaited: inspect.isawaitable, cheaper on the hot path
    (looked up on the type, so a resource's __getattr__ cannot answer for it)."""
    kind = type(value)
    return hasattr(kind, "__await__") or (kind is GeneratorType and inspect.isawaitable(value))


_PAGE = """<html>
  <head><title>%(code)d - %(brief)s</title></head>
  <body>
    <h1>%(brief)s</h1>
    <p>%(detail)s</p>
  </body>
</html>
"""


class ErrorPage(Resource):
    """A page answering every request with ``status``; ``brief`` and ``detail`` are escaped."""

    isLeaf = True

    def __init__(self, status: int, brief: str, detail: str) -> None:
        super().__init__()
        self.code = status
        self.brief = brief
        self.detail = detail

    def render(self, request: IRequest) -> bytes:
        request.setResponseCode(self.code)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        page = _PAGE % {
            "code": self.code,
            "brief": html.escape(self.brief),
            "detail": html.escape(self.detail),
        }
        return page.encode("utf-8")

    def getChild(self, path: bytes, request: IRequest) -> Resource:
        return self


class NoResource(ErrorPage):
    """404 Not Found."""

    def __init__(self, message: str = "Sorry. No luck finding that resource.") -> None:
        super().__init__(404, "No Such Resource", message)


class ForbiddenResource(ErrorPage):
    """403 Forbidden."""

    def __init__(self, message: str = "Sorry, resource is forbidden.") -> None:
        super().__init__(403, "Forbidden Resource", message)


@implementer(IResource)
class EncodingResourceWrapper:
    """Wrap a resource so that its responses are compressed when the client allows it.

    ``encoders`` are encoder factories such as ``hive.server.GzipEncoderFactory()``, best
    first: the first that gives an encoder for a request is used.  As in Twisted, children
    of the wrapped resource are not wrapped: wrap a leaf, or each child.  Unlike Twisted,
    every response that could have been encoded gets ``Vary: Accept-Encoding`` (so a cache
    keeps both forms apart), and small, already encoded or compressed-media responses are
    sent as they are (see ``hive._encoding``).
    """

    server: Any = None

    def __init__(self, original: IResource, encoders: Iterable[Any]) -> None:
        self.original = original
        self._encoders = list(encoders)

    @property
    def isLeaf(self) -> bool:
        return bool(self.original.isLeaf)

    def getEncoder(self, request: IRequest) -> Any:
        """The first encoder a factory gives for ``request``, or None."""
        for factory in self._encoders:
            encoder = factory.encoderForRequest(request)
            if encoder is not None:
                return encoder
        return None

    def getChildWithDefault(self, name: bytes, request: IRequest) -> Any:
        return self.original.getChildWithDefault(name, request)

    def putChild(self, path: bytes, child: IResource) -> None:
        self.original.putChild(path, child)

    def render(self, request: IRequest) -> Any:
        encoder = self.getEncoder(request)
        request._encoder = encoder if encoder is not None else VaryOnly()
        return self.original.render(request)
