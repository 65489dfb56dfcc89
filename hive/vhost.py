"""Name-based virtual hosts, with the names of ``twisted.web.vhost``: ``NameVirtualHost``.

The host is the Host header without its port, compared case-insensitively and without a
trailing dot (``Example.COM.:8080`` is ``example.com``); ``addHost`` takes bytes or str.

``VHostMonsterResource`` lets a proxy in front say, in the URL, which scheme, host and port
the client used: mounted at ``/vhost``, a request for
``/vhost/https/example.com:8443/a/b`` is served as ``/a/b`` from the site's root, as if
it had come to ``https://example.com:8443`` (``isSecure()``, ``getHost()``, the Host
header, ``prePathURL()`` and every URL built from them say so).  Whoever can reach it
chooses those values: mount it only where just the proxy can (or use
``--forwarded-allow``, which believes X-Forwarded-* only from trusted addresses).
"""

from __future__ import annotations

from typing import Any

from hive import http
from hive.iweb import IRequest
from hive.resource import ErrorPage, IResource, NoResource, Resource

__all__ = ["NameVirtualHost", "VHostMonsterResource"]


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


class VHostMonsterResource(Resource):
    """``<mount>/<http|https>/<host[:port]>/<path>`` is served as ``/<path>`` for a client
    of ``<scheme>://<host:port>`` (Twisted's; see the module's docstring)."""

    def getChild(self, path: bytes, request: IRequest) -> Resource:
        if path not in (b"http", b"https"):
            return NoResource("The scheme must be http or https.")
        return _HostResource(path == b"https")


class _HostResource(Resource):
    def __init__(self, secure: bool) -> None:
        super().__init__()
        self.secure = secure

    def getChild(self, path: bytes, request: IRequest) -> Any:
        if path.startswith(b"["):  # an IPv6 literal
            end = path.find(b"]") + 1
            host, after = path[:end], path[end:]
            port_text = after[1:] if after.startswith(b":") else after or b""
            if after and not after.startswith(b":"):
                host = b""
        else:
            host, _, port_text = path.partition(b":")
        try:
            port = int(port_text) if port_text else (443 if self.secure else 80)
        except ValueError:
            port = 0
        if not host or not 0 < port < 65536:
            name = path.decode("ascii", "replace")
            return ErrorPage(http.BAD_REQUEST, "Bad Request", f"not a host[:port]: {name!r}")
        request.setHost(host, port, self.secure)
        # What follows the host segment is served from the root, as the client asked for it.
        consumed = len(request.prepath)
        raw_path, question, query = request.uri.partition(b"?")
        rest = raw_path.split(b"/")[consumed + 1 :]
        request.uri = b"/" + b"/".join(rest) + question + query
        request.path = b"/" + b"/".join(request.postpath)
        del request.prepath[:]
        return request.site.getResourceFor(request)
