"""Socket addresses with the shape of ``twisted.internet.address``.

``request.getClientAddress()`` and ``request.getHost()`` return these.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IPv4Address:
    """An IPv4 endpoint; ``type`` is "TCP" (or "UDP"), ``host`` a dotted quad."""

    type: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class IPv6Address:
    """An IPv6 endpoint; ``host`` is text such as "::1", possibly with "%scope"."""

    type: str
    host: str
    port: int
    flowInfo: int = 0
    scopeID: str | int = 0


@dataclass(frozen=True, slots=True)
class UNIXAddress:
    """A Unix socket path as bytes, or None for an unnamed socket."""

    name: bytes | None


def address_from_sockaddr(family: int, sockaddr: object) -> IPv4Address | IPv6Address | UNIXAddress:
    """Convert what asyncio's ``get_extra_info("peername"/"sockname")`` returns.

    Raises ``ValueError`` for an unknown family or a sockaddr of the wrong shape.
    """
    if family == socket.AF_INET:
        match sockaddr:
            case (str(host), int(port)):
                return IPv4Address("TCP", host, port)
    elif family == socket.AF_INET6:
        match sockaddr:
            case (str(host), int(port), int(flow_info), int(scope_id)):
                return IPv6Address("TCP", host, port, flow_info, scope_id)
            case (str(host), int(port)):
                return IPv6Address("TCP", host, port)
    elif family == getattr(socket, "AF_UNIX", None):
        match sockaddr:
            case None | "" | b"":
                return UNIXAddress(None)
            case str(path):
                return UNIXAddress(os.fsencode(path))
            case bytes(path):
                return UNIXAddress(path)
    else:
        raise ValueError(f"unsupported address family {family!r}")
    raise ValueError(f"malformed address {sockaddr!r} for family {family!r}")
