"""Name-based virtual hosts, with the names of ``twisted.web.vhost``: ``NameVirtualHost``.

The host is the Host header without its port, compared case-insensitively and without a
trailing dot (``Example.COM.:8080`` is ``example.com``).  ``VHostMonsterResource`` is not
provided: behind a proxy, use ``--forwarded-allow`` (X-Forwarded-For / -Proto).
"""

from __future__ import annotations

from typing import Any

from hive.iweb import IRequest
from hive.resource import IResource, NoResource, Resource

__all__ = ["NameVirtualHost"]


def _host_key(name: bytes | str) -> bytes:
    if isinstance(name, str):
        name = name.encode("idna")
    return name.strip().lower().rstrip(b".")


def host_of(header: bytes) -> bytes:
    """The host part of a Host header value, lowercased: no port, no trailing dot."""
    header = header.strip()
    if header[:1] == b"[":
        # An IPv6 literal: the port comes after the closing bracket.
        end = header.find(b"]")
        host = header[: end + 1] if end >= 0 else header
    else:
        host = header.split(b":", 1)[0]
    return host.lower().rstrip(b".")


class NameVirtualHost(Resource):
    """Dispatches to a resource per host name; ``default`` answers other hosts (else 404)."""

    default: IResource | None = None

    def __init__(self) -> None:
        super().__init__()
        self.hosts: dict[bytes, IResource] = {}

    def addHost(self, name: bytes, resrc: IResource) -> None:
        """Serve ``resrc`` for requests to host ``name`` (bytes; any case, no port)."""
        self.hosts[_host_key(name)] = resrc

    def removeHost(self, name: bytes) -> None:
        """Stop serving host ``name``; KeyError if it was not added."""
        del self.hosts[_host_key(name)]

    def _getResourceForRequest(self, request: IRequest) -> Any:
        """The resource for the request's host: its own, the default, or a 404 page."""
        header = request.getHeader(b"host")
        if header is None:
            return self.default or NoResource()
        host = host_of(header)
        resource = self.hosts.get(host, self.default)
        if resource is None:
            # NoResource escapes the message: the host is the client's text.
            name = host.decode("ascii", "replace")
            return NoResource(f"host {name!r} not in vhost map")
        return resource

    def render(self, request: IRequest) -> Any:
        return self._getResourceForRequest(request).render(request)

    def getChild(self, path: bytes, request: IRequest) -> Any:
        resource = self._getResourceForRequest(request)
        if resource.isLeaf:
            # The leaf renders with this segment still in its postpath.
            request.postpath.insert(0, request.prepath.pop(-1))
            return resource
        return resource.getChildWithDefault(path, request)
