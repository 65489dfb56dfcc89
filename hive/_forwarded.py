"""Trusted proxies: which X-Forwarded-For / X-Forwarded-Proto headers to believe.

Behind a reverse proxy every connection comes from the proxy, so the client's address and
scheme come from headers the proxy adds.  Anyone can send those headers, so hive believes
them only from the proxies named with ``--forwarded-allow``: the client is the right-most
address in X-Forwarded-For that is not itself a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["TrustedProxies"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """Addresses and networks (``10.0.0.0/8``, ``::1``, or ``*`` for any) to believe."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.any = False
        self.networks: list[_Network] = []
        for entry in entries:
            entry = entry.strip()
            if entry == "*":
                self.any = True
            elif entry:
                try:
                    self.networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(f"not an address or network: {entry!r}") from None

    def __bool__(self) -> bool:
        return self.any or bool(self.networks)

    def trusts(self, host: str) -> bool:
        if self.any:
            return True
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: list[bytes] | None) -> str:
        """The client's address: ``peer``, or from X-Forwarded-For if ``peer`` is trusted."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(b",")]
        for hop in reversed(hops):
            host = _host_of(hop.decode("latin-1"))
            if host is None:
                return peer  # a hop that is not an address: believe nothing more
            if not self.trusts(host):
                return host
        first = _host_of(hops[0].decode("latin-1")) if hops else None
        return first or peer

    def scheme(self, peer: str, forwarded_proto: list[bytes] | None) -> str | None:
        """ "https" or "http" from X-Forwarded-Proto if ``peer`` is trusted, else None."""
        if not forwarded_proto or not self.trusts(peer):
            return None
        proto = forwarded_proto[-1].split(b",")[-1].strip().lower()
        return proto.decode("latin-1") if proto in (b"http", b"https") else None


def _host_of(hop: str) -> str | None:
    """The address in one X-Forwarded-For hop (``1.2.3.4``, ``1.2.3.4:5``, ``[::1]:5``)."""
    if hop.startswith("["):
        hop = hop[1 : hop.find("]")] if "]" in hop else ""
    elif hop.count(":") == 1:
        hop = hop.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None
