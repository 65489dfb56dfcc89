"""Examples of the standard resources: an XML-RPC calculator, a SOAP service, a guarded
page, a proxy.

Mount the pieces in a site, or run this tree on its own::

    hive run examples.standard:root
    curl -u admin:hive http://127.0.0.1:8080/private
    curl --digest -u admin:hive http://127.0.0.1:8080/private
    curl 'http://127.0.0.1:8080/soap?wsdl'
    HIVE_EXAMPLE_UPSTREAM=127.0.0.1:9000 hive run examples.standard:root   # /proxy/... to :9000

and, in Python, ``xmlrpc.client.ServerProxy("http://127.0.0.1:8080/RPC2").add(1, 2)`` or
``zeep.Client("http://127.0.0.1:8080/soap?wsdl").service.midpoint(...)``.

Written as a Twisted Web program would be: the imports are the only change.
"""

from __future__ import annotations

import asyncio
import datetime
import html
import os
from dataclasses import dataclass
from typing import Any

from zope.interface import implementer

from hive.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from hive.cred.portal import IRealm, Portal
from hive.guard import BasicCredentialFactory, DigestCredentialFactory, HTTPAuthSessionWrapper
from hive.proxy import ReverseProxyResource
from hive.resource import IResource, Resource
from hive.server import Request
from hive.soap import Fault as SOAPFault
from hive.soap import SOAPPublisher
from hive.xmlrpc import XMLRPC, Fault, addIntrospection, withRequest


class Calculator(XMLRPC):
    """Arithmetic over XML-RPC; ``system.*`` lists and explains the methods."""

    def xmlrpc_add(self, a: float, b: float) -> float:
        """Return a + b."""
        return a + b

    def xmlrpc_subtract(self, a: float, b: float) -> float:
        """Return a - b."""
        return a - b

    def xmlrpc_multiply(self, a: float, b: float) -> float:
        """Return a * b."""
        return a * b

    def xmlrpc_divide(self, a: float, b: float) -> float:
        """Return a / b; fault 1 when b is zero."""
        if b == 0:
            raise Fault(1, "division by zero")
        return a / b

    async def xmlrpc_slow_add(self, a: float, b: float, delay: float = 0.1) -> float:
        """Return a + b after ``delay`` seconds (at most 5), without blocking the worker."""
        await asyncio.sleep(min(max(delay, 0.0), 5.0))
        return a + b

    def xmlrpc_now(self) -> datetime.datetime:
        """Return the server's time (UTC, without a zone: XML-RPC dates have none)."""
        return datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)

    def xmlrpc_maybe(self, value: Any = None) -> Any:
        """Return the value given, or nil (allowNone)."""
        return value

    @withRequest
    def xmlrpc_client(self, request: Request) -> str:
        """Return the caller's address."""
        return request.getClientIP() or "unknown"

    xmlrpc_add.signature = [["double", "double", "double"]]  # type: ignore[attr-defined]  # noqa: RUF012


class Text(XMLRPC):
    """A sub-handler: its methods are published as ``text.<name>``."""

    def xmlrpc_upper(self, text: str) -> str:
        """Return the text in capitals."""
        return text.upper()

    def xmlrpc_reverse(self, text: str) -> str:
        """Return the text backwards."""
        return text[::-1]


def calculator() -> Calculator:
    """The calculator, with None and datetime support, a sub-handler and introspection."""
    calc = Calculator(allowNone=True, useDateTime=True)
    calc.putSubHandler("text", Text())
    addIntrospection(calc)
    return calc


@dataclass
class Point:
    x: float
    y: float


class Geometry(SOAPPublisher):
    """A SOAP service; its WSDL, generated from the annotations, is at ``?wsdl``."""

    namespace = "urn:hive:example:geometry"

    def soap_midpoint(self, a: Point, b: Point) -> Point:
        """The point halfway between a and b."""
        return Point((a.x + b.x) / 2, (a.y + b.y) / 2)

    def soap_centroid(self, points: list[Point]) -> Point:
        """The centre of the points; a Client fault when there are none."""
        if not points:
            raise SOAPFault("Client", "no points given")
        return Point(sum(p.x for p in points) / len(points), sum(p.y for p in points) / len(points))

    async def soap_distance(self, a: Point, b: Point) -> float:
        """The distance from a to b (an async method, as any may be)."""
        return float(((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5)


class PrivatePage(Resource):
    """What only an authenticated user sees: a page of their own."""

    isLeaf = True

    def __init__(self, user: bytes) -> None:
        super().__init__()
        self.user = user

    def render_GET(self, request: Request) -> bytes:
        user = self.user.decode("utf-8", "replace")
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return f"<p>Hello, {html.escape(user)}. This page is private.</p>".encode()


@implementer(IRealm)
class PrivateRealm:
    """Gives each authenticated user a PrivatePage of their own."""

    def requestAvatar(self, avatarId: bytes, mind: object, *interfaces: Any) -> Any:
        if IResource in interfaces:
            return IResource, PrivatePage(avatarId), lambda: None
        raise NotImplementedError()


def guarded_page(users: dict[str, str] | None = None, realm: str = "hive example") -> Any:
    """PrivatePage behind HTTP authentication: Digest (SHA-256, MD5) or Basic.

    The default user, admin with password "hive", is for trying the example only; serve
    guarded pages over TLS, and keep real passwords out of the code (HashedPasswordDB).
    """
    checker = InMemoryUsernamePasswordDatabaseDontUse(**(users or {"admin": "hive"}))
    factories = [
        DigestCredentialFactory("SHA-256", realm),
        DigestCredentialFactory("MD5", realm),
        BasicCredentialFactory(realm),
    ]
    return HTTPAuthSessionWrapper(Portal(PrivateRealm(), [checker]), factories)


def proxy_to(upstream: str, path: bytes = b"", **options: Any) -> ReverseProxyResource:
    """A reverse proxy to ``host:port`` (``[v6]:port`` for IPv6), under ``path``."""
    host, _, port = upstream.rpartition(":")
    return ReverseProxyResource(host.strip("[]"), int(port), path, **options)


def make_root(upstream: str | None = None) -> Resource:
    root = Resource()
    root.putChild(b"RPC2", calculator())
    root.putChild(b"soap", Geometry())
    root.putChild(b"private", guarded_page())
    if upstream:
        root.putChild(b"proxy", proxy_to(upstream))
    return root


root = make_root(os.environ.get("HIVE_EXAMPLE_UPSTREAM"))
