"""HTTP Digest authentication's arithmetic (RFC 7616), without requests or time of its own.

What hive offers of the RFC, and why:

- algorithms MD5, SHA-256 and SHA-512-256; not the ``-sess`` variants, whose H(A1) the
  server would have to remember from the first request of each client;
- ``qop=auth`` only: ``auth-int`` hashes the body, which a guard sees only after the
  resource was chosen; a response without ``qop`` (RFC 2069) is refused;
- no ``userhash`` (the server would have to hash every user name to find the user).

A nonce is ``base64url(time || random || mac)``, the mac an HMAC-SHA256 under the server's
secret of the time, the random bytes, the realm and the client's address: any worker
that holds the secret can tell a nonce it made from a forged one, and an old one from a
fresh one, without remembering any of them. The price of keeping no state: a nonce can be
used again until it expires (nonce counts are not tracked across workers), so a captured
``Authorization`` header can be replayed, for the same method and URI, from the same
address, within the nonce's lifetime.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import hashlib
import hmac
import re
import secrets
import struct
from collections.abc import Callable
from typing import Final

__all__ = [
    "ALGORITHMS",
    "NonceState",
    "Nonces",
    "algorithm_name",
    "digest_hex",
    "parse_params",
    "request_digest",
]


def _sha512_256() -> Callable[[bytes], hashlib._Hash]:
    def make(data: bytes) -> hashlib._Hash:
        return hashlib.new("sha512_256", data)

    make(b"")  # raises ValueError where OpenSSL lacks it
    return make


#: Digest algorithm names (RFC 7616 section 6.1) and their hash functions.
ALGORITHMS: dict[str, Callable[[bytes], hashlib._Hash]] = {
    "MD5": hashlib.md5,
    "SHA-256": hashlib.sha256,
}
with contextlib.suppress(ValueError):  # an OpenSSL without SHA-512/256
    ALGORITHMS["SHA-512-256"] = _sha512_256()

_ALIASES = {"SHA256": "SHA-256", "SHA512-256": "SHA-512-256", "SHA-512/256": "SHA-512-256"}


def algorithm_name(name: str | bytes) -> str:
    """The RFC 7616 spelling of ``name`` (case-insensitive); ValueError if hive has no such
    algorithm, with what to use instead."""
    text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
    upper = text.strip().upper()
    upper = _ALIASES.get(upper, upper)
    if upper in ALGORITHMS:
        return upper
    if upper == "SHA":
        raise ValueError(
            "Digest algorithm 'sha' (SHA-1) is in no RFC and no client offers it:"
            " use 'SHA-256' (RFC 7616) or 'MD5'"
        )
    if upper.endswith("-SESS"):
        raise ValueError(
            f"Digest algorithm {text!r}: the -sess variants are not supported; use {upper[:-5]!r}"
        )
    raise ValueError(f"unknown Digest algorithm {text!r}: use one of {', '.join(ALGORITHMS)}")


def digest_hex(algorithm: str, *parts: bytes) -> bytes:
    """H(part1:part2:...) in lower-case hex, as the RFC writes every hash."""
    return ALGORITHMS[algorithm](b":".join(parts)).hexdigest().encode("ascii")


def request_digest(
    algorithm: str,
    ha1: bytes,
    *,
    nonce: bytes,
    nc: bytes,
    cnonce: bytes,
    qop: bytes,
    method: bytes,
    uri: bytes,
) -> bytes:
    """The ``response`` a client that knows H(A1) sends (RFC 7616 section 3.4.1)."""
    ha2 = digest_hex(algorithm, method, uri)
    return digest_hex(algorithm, ha1, nonce, nc, cnonce, qop, ha2)


# auth-param = token BWS "=" BWS ( token / quoted-string ), comma separated (RFC 9110 11.2).
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(
    rb"[ \t]*(" + _TOKEN + rb")[ \t]*=[ \t]*(?:\"((?:[^\"\\]|\\.)*)\"|(" + _TOKEN + rb"))[ \t]*"
)
_QUOTED_PAIR = re.compile(rb"\\(.)")
#: More parameters than this is no client's Authorization header.
MAX_PARAMS: Final = 32


def parse_params(text: bytes) -> dict[str, bytes]:
    """The auth-params of a credentials or challenge string; ValueError if malformed.

    Names are lower-cased; a repeated name is an error (RFC 7235: each may occur once).
    """
    params: dict[str, bytes] = {}
    pos, end = 0, len(text)
    while pos < end:
        match = _PARAM.match(text, pos)
        if match is None:
            raise ValueError(f"malformed auth-param at byte {pos}")
        name = match.group(1).decode("ascii").lower()
        quoted, token = match.group(2), match.group(3)
        value = _QUOTED_PAIR.sub(rb"\1", quoted) if quoted is not None else token
        if name in params:
            raise ValueError(f"auth-param {name!r} given twice")
        params[name] = value
        if len(params) > MAX_PARAMS:
            raise ValueError("too many auth-params")
        pos = match.end()
        if pos < end:
            if text[pos : pos + 1] != b",":
                raise ValueError(f"expected ',' at byte {pos}")
            pos += 1
            while pos < end and text[pos : pos + 1] in b" \t,":  # empty list elements
                pos += 1
    return params


class NonceState(enum.Enum):
    """What a nonce turned out to be."""

    FRESH = "fresh"
    #: Made by this server for this realm and client, but older than the lifetime.
    STALE = "stale"
    #: Not made by this server, or for another realm or client, or not a nonce at all.
    FORGED = "forged"


_NONCE_HEAD = struct.Struct(">Q8s")  # seconds since the epoch, random bytes
_MAC_SIZE = 16
_NONCE_SIZE = _NONCE_HEAD.size + _MAC_SIZE
#: A nonce from up to this far in the future is taken (clocks of several hosts).
_CLOCK_SKEW = 60


class Nonces:
    """Makes and checks nonces signed with ``secret``; ``lifetime`` in seconds."""

    def __init__(self, secret: bytes, lifetime: float) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret must have at least 16 bytes")
        self._secret = secret
        self.lifetime = lifetime

    def _mac(self, head: bytes, realm: bytes, client: bytes) -> bytes:
        message = b"\0".join((b"hive digest nonce", head, realm, client))
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_MAC_SIZE]

    def make(self, realm: bytes, client: bytes, now: float) -> bytes:
        head = _NONCE_HEAD.pack(int(now), secrets.token_bytes(8))
        return base64.urlsafe_b64encode(head + self._mac(head, realm, client)).rstrip(b"=")

    def check(self, nonce: bytes, realm: bytes, client: bytes, now: float) -> NonceState:
        try:
            raw = base64.urlsafe_b64decode(nonce + b"=" * (-len(nonce) % 4))
        except ValueError:
            return NonceState.FORGED
        if len(raw) != _NONCE_SIZE:
            return NonceState.FORGED
        head, mac = raw[: _NONCE_HEAD.size], raw[_NONCE_HEAD.size :]
        if not hmac.compare_digest(mac, self._mac(head, realm, client)):
            return NonceState.FORGED
        made, _ = _NONCE_HEAD.unpack(head)
        if made > now + _CLOCK_SKEW:
            return NonceState.FORGED
        if now - made > self.lifetime:
            return NonceState.STALE
        return NonceState.FRESH

    def opaque(self, realm: bytes) -> bytes:
        """The realm's ``opaque``: constant, so that clients may cache it, and signed."""
        message = b"\0".join((b"hive digest opaque", realm))
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32].encode("ascii")
