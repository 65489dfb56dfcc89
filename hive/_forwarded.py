"""Trusted proxies: which Forwarded and X-Forwarded-* headers to believe.

Behind a reverse proxy every connection comes from the proxy, so the client's address, the
scheme, the host it asked for and the path prefix the site is served under come from
headers the proxy adds.  Anyone can send those headers, so hive believes them only from
the proxies named with ``--forwarded-allow``.

Each proxy appends one hop.  The standard header (RFC 7239) says it in one element per hop
(``Forwarded: for=192.0.2.60;proto=https;host=example.org``); the older headers say it in
parallel lists (X-Forwarded-For; X-Forwarded-Proto, -Host, -Prefix usually hold one
value, set by the proxy that faced the client).  When a request has a Forwarded header,
the X-Forwarded-For, -Proto and -Host ones are ignored: a proxy that speaks RFC 7239
would have written it.  X-Forwarded-Prefix is read beside either, RFC 7239 having no
prefix.  Of X-Forwarded-Proto, -Host and -Prefix the last value counts: the one the
nearest trusted proxy set (a proxy that appends instead of replacing leaves the client's
own value first).

The walk is from the right: while the address a hop came from is a trusted proxy, the hop
before it is believed.  The client is the first address that is not a trusted proxy, and
the scheme, host and prefix are what the hop that names the client says: the proxy that
faced the client wrote them.  A hop that names no usable address (``unknown``, an
obfuscated ``_name``) stops the walk there.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Hop",
    "Origin",
    "TrustedProxies",
    "checked_host",
    "checked_prefix",
    "forwarded_hops",
    "split_host",
    "x_forwarded_hops",
]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: A Forwarded element's pair: token "=" (token / quoted-string), RFC 7239 section 4.
_PAIR = re.compile(
    rb'\s*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)=([!#$%&\'*+\-.^_`|~0-9A-Za-z:\[\]]+|"(?:[^"\\]|\\.)*")\s*'
)
_QUOTED_PAIR = re.compile(rb"\\(.)")
#: Peer addresses whose verdict is remembered (a proxy or two in practice; clients too
#: when hive is reachable directly): the memo is emptied when it is full.
_VERDICTS = 1024
# RFC 9110 uri-host [":" port], as the engines check Host.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]{1,5})?")
_PREFIX = re.compile(r"(?:/[A-Za-z0-9\-._~!$&'()*+,;=:@%]*)*")


@dataclass(frozen=True, slots=True)
class Hop:
    """What one proxy says of the connection it received."""

    #: The address the proxy's connection came from (None: unknown or obfuscated).
    address: str | None
    proto: str | None = None
    host: str | None = None
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """The request as the client made it, as far as the trusted proxies tell."""

    client: str
    #: "http" or "https", if a trusted proxy said.
    scheme: str | None = None
    #: The Host the client asked for (``example.org`` or ``example.org:8443``), if said.
    host: str | None = None
    #: The path the site is served under (``/app``, no trailing slash), if said.
    prefix: str | None = None


class TrustedProxies:
    """Addresses and networks (``10.0.0.0/8``, ``::1``, or ``*`` for any) to believe."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.any = False
        self.networks: list[_Network] = []
        self._verdicts: dict[str, bool] = {}
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
        # Nearly every request comes from the same few proxies: parsing the address and
        # matching it against the networks is done once for each.
        verdict = self._verdicts.get(host)
        if verdict is None:
            verdict = self._judge(host)
            if len(self._verdicts) >= _VERDICTS:
                self._verdicts.clear()
            self._verdicts[host] = verdict
        return verdict

    def _judge(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def origin(self, peer: str, hops: list[Hop]) -> Origin:
        """Walk ``hops`` (oldest first, as the headers list them) back from ``peer``."""
        if not hops or not self.trusts(peer):
            return Origin(peer)
        client = peer
        for hop in reversed(hops):
            if hop.address is None:
                # Nothing more can be believed: the hop before this proxy is unknown.
                return _said(client, hop)
            client = hop.address
            if not self.trusts(client):
                return _said(client, hop)
        # Every hop is a trusted proxy: the first is as close to the client as we know.
        return _said(client, hops[0])

    # The two questions the access log and older callers ask.

    def client(self, peer: str, forwarded_for: list[bytes] | None) -> str:
        """The client's address: ``peer``, or from X-Forwarded-For if ``peer`` is trusted."""
        return self.origin(peer, x_forwarded_hops(forwarded_for, None, None, None)).client

    def scheme(self, peer: str, forwarded_proto: list[bytes] | None) -> str | None:
        """ "https" or "http" from X-Forwarded-Proto if ``peer`` is trusted, else None."""
        if not forwarded_proto or not self.trusts(peer):
            return None
        return _proto(_last(forwarded_proto))


def _said(client: str, hop: Hop) -> Origin:
    return Origin(client, hop.proto, hop.host, hop.prefix)


def forwarded_hops(values: list[bytes], prefix: list[bytes] | None = None) -> list[Hop]:
    """The hops of Forwarded header values (RFC 7239), oldest first, each with the
    X-Forwarded-Prefix ``prefix`` the nearest proxy set (RFC 7239 has no prefix).

    A malformed element makes a hop with nothing in it, which stops any walk that reaches
    it: a proxy chain that cannot be read is not believed past that point.
    """
    said_prefix = checked_prefix(_last(prefix).decode("latin-1")) if prefix else None
    hops: list[Hop] = []
    for value in values:
        for element in _split_elements(value):
            pairs = _pairs(element)
            if pairs is None:
                hops.append(Hop(None, prefix=said_prefix))
                continue
            hops.append(
                Hop(
                    _node_address(pairs.get("for")),
                    _proto(pairs["proto"].encode("latin-1")) if "proto" in pairs else None,
                    checked_host(pairs.get("host")),
                    said_prefix,
                )
            )
    return hops


def x_forwarded_hops(
    forwarded_for: list[bytes] | None,
    proto: list[bytes] | None,
    host: list[bytes] | None,
    prefix: list[bytes] | None,
) -> list[Hop]:
    """Hops from X-Forwarded-For, each with the -Proto, -Host and -Prefix the nearest
    trusted proxy set (the last value of each)."""
    addresses = [
        hop.strip().decode("latin-1")
        for value in forwarded_for or ()
        for hop in value.split(b",")
        if hop.strip()
    ]
    said_proto = _proto(_last(proto)) if proto else None
    said_host = checked_host(_last(host).decode("latin-1")) if host else None
    said_prefix = checked_prefix(_last(prefix).decode("latin-1")) if prefix else None
    if not addresses:
        # A proxy that sends only -Proto (or -Host, -Prefix): the peer is the client.
        if proto or host or prefix:
            return [Hop(None, said_proto, said_host, said_prefix)]
        return []
    return [
        Hop(_node_address(address), said_proto, said_host, said_prefix) for address in addresses
    ]


def _last(values: list[bytes]) -> bytes:
    return values[-1].rsplit(b",", 1)[-1].strip()


def _split_elements(value: bytes) -> list[bytes]:
    """Split on commas outside quoted strings."""
    elements: list[bytes] = []
    start = 0
    quoted = False
    escaped = False
    for index, byte in enumerate(value):
        if escaped:
            escaped = False
        elif byte == 0x5C and quoted:  # backslash
            escaped = True
        elif byte == 0x22:  # double quote
            quoted = not quoted
        elif byte == 0x2C and not quoted:  # comma
            elements.append(value[start:index])
            start = index + 1
    elements.append(value[start:])
    return [element for element in elements if element.strip()]


def _pairs(element: bytes) -> dict[str, str] | None:
    """An element's pairs by lowercased name; None if it does not parse."""
    pairs: dict[str, str] = {}
    for part in element.split(b";"):
        if not part.strip():
            continue
        match = _PAIR.fullmatch(part)
        if match is None:
            return None
        name = match.group(1).lower().decode("ascii")
        raw = match.group(2)
        if raw[:1] == b'"':
            raw = _QUOTED_PAIR.sub(rb"\1", raw[1:-1])
        if name in pairs:
            return None  # RFC 7239 section 4: each parameter at most once per element
        pairs[name] = raw.decode("latin-1")
    return pairs


def _node_address(node: str | None) -> str | None:
    """The IP address of a Forwarded node (``192.0.2.43``, ``"[2001:db8::1]:4711"``)."""
    if node is None:
        return None
    if node.startswith("["):
        end = node.find("]")
        return _address(node[1:end]) if end > 0 else None
    return _address(node.split(":", 1)[0] if node.count(":") == 1 else node)


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _proto(value: bytes) -> str | None:
    proto = value.strip().lower()
    return proto.decode("ascii") if proto in (b"http", b"https") else None


def checked_host(value: str | None) -> str | None:
    """``value`` if it is a host a link can name (RFC 9110 uri-host, a port in range)."""
    if value is None:
        return None
    value = value.strip()
    if not value or _HOST.fullmatch(value) is None:
        return None
    port = split_host(value)[1]
    return value if port is None or 0 < port < 65536 else None


def checked_prefix(value: str) -> str | None:
    """A path prefix (``/app``): starts with a slash, no query or fragment; the trailing
    slash goes.  None for anything else, and for the root itself."""
    value = value.strip().rstrip("/")
    if not value:
        return None
    return value if value.startswith("/") and _PREFIX.fullmatch(value) else None


def split_host(host: str) -> tuple[str, int | None]:
    """``example.org:8443`` -> (``example.org``, 8443); ``[2001:db8::1]`` -> (``2001:db8::1``,
    None).  The host is one `checked_host` accepted."""
    if host.startswith("["):
        end = host.index("]")
        port = host[end + 2 :]
        return host[1:end], int(port) if port else None
    name, _, port = host.partition(":")
    return name, int(port) if port else None
