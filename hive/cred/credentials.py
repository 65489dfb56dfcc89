"""Credentials: what a client offers to prove who it is, with ``twisted.cred.credentials``'s
names.

A credentials object provides one of the interfaces below; a portal gives it to the
checker registered for that interface. ``checkPassword`` and ``checkHash`` compare in
constant time (Twisted compares with ``==``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from zope.interface import Interface, implementer

from hive import _secret
from hive.cred import _digest
from hive.cred.error import LoginFailed

__all__ = [
    "Anonymous",
    "DigestCredentialFactory",
    "DigestedCredentials",
    "IAnonymous",
    "ICredentials",
    "IUsernameDigestHash",
    "IUsernameHashedPassword",
    "IUsernamePassword",
    "UsernameHashedPassword",
    "UsernamePassword",
]


class ICredentials(Interface):
    """Something a client offers to prove who it is; a class says which kind it is with
    ``@implementer`` of one of the interfaces below."""


class IUsernameDigestHash(ICredentials):
    """Credentials a checker can verify with H(username:realm:password), as an Apache
    ``.htdigest`` file stores it."""

    username: bytes

    def checkHash(digestHash: bytes) -> Any:
        """Whether these credentials match ``digestHash`` (hex): a bool or an awaitable."""


class IUsernameHashedPassword(ICredentials):
    """A user name and something derived from the password (a Digest response): the
    checker needs the password in clear to verify it."""

    username: bytes

    def checkPassword(password: bytes) -> Any:
        """Whether these credentials match the clear ``password``: a bool or an awaitable."""


class IUsernamePassword(ICredentials):
    """A user name and the password in clear (HTTP Basic): any checker can verify it, a
    file of argon2id or bcrypt hashes too."""

    username: bytes
    password: bytes

    def checkPassword(password: bytes) -> Any:
        """Whether ``password`` is the one these credentials hold."""


class IAnonymous(ICredentials):
    """An explicit request for anonymous access (``checkers.AllowAnonymousAccess``)."""


def _same(a: bytes, b: bytes) -> bool:
    # Digests first, so that the comparison's time tells nothing of either length.
    return hmac.compare_digest(hashlib.sha256(a).digest(), hashlib.sha256(b).digest())


def _as_bytes(value: str | bytes, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    raise TypeError(f"{what} must be bytes or str, not {type(value).__name__}")


@implementer(IUsernamePassword)
class UsernamePassword:
    """A user name and a clear password (what Basic authentication gives)."""

    def __init__(self, username: bytes, password: bytes) -> None:
        self.username = username
        self.password = password

    def checkPassword(self, password: bytes) -> bool:
        return _same(self.password, _as_bytes(password, "password"))

    def __repr__(self) -> str:
        # Never let a password reach a log line or a traceback page.
        return f"UsernamePassword(username={self.username!r}, password=<hidden>)"


@implementer(IUsernameHashedPassword)
class UsernameHashedPassword:
    """A user name and a value the checker's clear password must equal (Twisted keeps it,
    deprecated, for protocols that send a transformed password)."""

    def __init__(self, username: bytes, hashed: bytes) -> None:
        self.username = username
        self.hashed = hashed

    def checkPassword(self, password: bytes) -> bool:
        return _same(self.hashed, _as_bytes(password, "password"))

    def __repr__(self) -> str:
        return f"UsernameHashedPassword(username={self.username!r}, hashed=<hidden>)"


@implementer(IAnonymous)
class Anonymous:
    """No credentials at all: what a guard tries when a request has no Authorization."""


@implementer(IUsernameHashedPassword, IUsernameDigestHash)
class DigestedCredentials:
    """The credentials of one Digest ``Authorization`` header (RFC 7616).

    ``fields`` are the header's parameters (names as str, values as bytes). ``stale`` is
    true when the nonce is this server's but has expired: the password may be right, and
    the guard then asks again with ``stale=true`` instead of counting a failure.
    """

    def __init__(
        self,
        username: bytes,
        method: bytes,
        realm: bytes,
        fields: dict[str, bytes],
        *,
        stale: bool = False,
    ) -> None:
        self.username = username
        self.method = method
        self.realm = realm
        self.fields = fields
        self.stale = stale
        self.algorithm = _digest.algorithm_name(fields.get("algorithm", b"MD5"))

    def _expected(self, ha1: bytes) -> bytes:
        fields = self.fields
        return _digest.request_digest(
            self.algorithm,
            ha1,
            nonce=fields["nonce"],
            nc=fields["nc"],
            cnonce=fields["cnonce"],
            qop=fields["qop"],
            method=self.method,
            uri=fields["uri"],
        )

    def checkPassword(self, password: bytes) -> bool:
        """Whether the client hashed ``password`` (in clear) into its response."""
        password = _as_bytes(password, "password")
        ha1 = _digest.digest_hex(self.algorithm, self.username, self.realm, password)
        return hmac.compare_digest(self._expected(ha1), self.fields["response"].lower())

    def checkHash(self, digestHash: bytes) -> bool:
        """Whether the response matches ``digestHash``, H(username:realm:password) in hex
        for this credentials' algorithm (an ``.htdigest`` line holds the MD5 one)."""
        ha1 = _as_bytes(digestHash, "digestHash").strip().lower()
        return hmac.compare_digest(self._expected(ha1), self.fields["response"].lower())

    def __repr__(self) -> str:
        return f"DigestedCredentials(username={self.username!r}, algorithm={self.algorithm!r})"


#: Digest parameters a response must have (RFC 7616 section 3.4).
_REQUIRED = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
_HEX = frozenset(b"0123456789abcdefABCDEF")


class DigestCredentialFactory:
    """Digest challenges and responses (RFC 7616) for one algorithm and realm.

    ``algorithm`` is ``"SHA-256"``, ``"MD5"`` or ``"SHA-512-256"`` (any case; Twisted's
    ``"sha"``, SHA-1, is no standard and raises ValueError). Nonces are signed with the
    server's secret (hive._secret), so every worker takes the ones another gave, and
    expire after ``CHALLENGE_LIFETIME_SECS``. This is the address-level class of
    ``twisted.cred.credentials``; HTTP resources use ``hive.guard.DigestCredentialFactory``.
    """

    #: Seconds a nonce is good for (Twisted's name and value).
    CHALLENGE_LIFETIME_SECS = 15 * 60

    scheme = b"digest"

    def __init__(self, algorithm: str | bytes, authenticationRealm: str | bytes) -> None:
        self.algorithm = _digest.algorithm_name(algorithm)
        realm = _as_bytes(authenticationRealm, "authenticationRealm")
        if any(byte < 0x20 or byte == 0x7F for byte in realm):
            raise ValueError(f"control characters in realm {realm!r}")
        self.authenticationRealm = realm
        self._nonces: _digest.Nonces | None = None
        self._clock = time.time

    @property
    def nonces(self) -> _digest.Nonces:
        # Made at first use, from the secret the worker inherited from the supervisor.
        nonces = self._nonces
        if nonces is None or nonces.lifetime != self.CHALLENGE_LIFETIME_SECS:
            nonces = self._nonces = _digest.Nonces(
                _secret.server_secret(), self.CHALLENGE_LIFETIME_SECS
            )
        return nonces

    def getChallenge(self, address: str | bytes | None) -> dict[str, bytes]:
        """The WWW-Authenticate parameters for a client at ``address``."""
        client = _client(address)
        realm = self.authenticationRealm
        nonces = self.nonces
        return {
            "realm": realm,
            "qop": b"auth",
            "algorithm": self.algorithm.encode("ascii"),
            "nonce": nonces.make(realm, client, self._clock()),
            "opaque": nonces.opaque(realm),
            "charset": b"UTF-8",
        }

    def decode(
        self,
        response: bytes,
        method: bytes,
        host: str | bytes | None,
        uri: bytes | None = None,
    ) -> DigestedCredentials:
        """The credentials of a Digest ``response`` to a challenge given to ``host``;
        LoginFailed if it is malformed, for another realm or algorithm, or its nonce or
        opaque is not this server's. ``uri``, when given, must be the ``uri`` the client
        hashed (hive's guard passes the request's target, so a captured header is good
        for that resource only)."""
        try:
            fields = _digest.parse_params(b" ".join(response.splitlines()))
        except ValueError as exc:
            raise LoginFailed(f"malformed Digest credentials: {exc}") from None
        missing = [name for name in _REQUIRED if name not in fields]
        if "username*" in fields and "username" in missing:
            missing.remove("username")
            fields["username"] = _ext_value(fields["username*"])
        if missing:
            raise LoginFailed(f"Digest credentials without {', '.join(missing)}")
        if fields.get("userhash", b"false").lower() != b"false":
            raise LoginFailed("Digest userhash is not supported")
        if fields["qop"].lower() != b"auth":
            raise LoginFailed(f"Digest qop {fields['qop']!r}: only auth is offered")
        fields["qop"] = b"auth"
        try:
            algorithm = _digest.algorithm_name(fields.get("algorithm", b"MD5"))
        except ValueError:
            raise LoginFailed("unknown Digest algorithm") from None
        if algorithm != self.algorithm:
            raise LoginFailed(f"Digest algorithm {algorithm}, not {self.algorithm}")
        if fields["realm"] != self.authenticationRealm:
            raise LoginFailed("Digest credentials for another realm")
        nc = fields["nc"]
        if len(nc) != 8 or not _HEX.issuperset(nc):
            raise LoginFailed("Digest nc is not 8 hex digits")
        if not _HEX.issuperset(fields["response"]):
            raise LoginFailed("Digest response is not hex")
        if uri is not None and fields["uri"] != uri:
            raise LoginFailed("Digest credentials for another URI")
        nonces = self.nonces
        realm = self.authenticationRealm
        opaque = fields.get("opaque")
        if opaque is None or not hmac.compare_digest(opaque, nonces.opaque(realm)):
            raise LoginFailed("Digest opaque is not this server's")
        state = nonces.check(fields["nonce"], realm, _client(host), self._clock())
        if state is _digest.NonceState.FORGED:
            raise LoginFailed("Digest nonce is not this server's")
        return DigestedCredentials(
            fields["username"],
            method,
            realm,
            fields,
            stale=state is _digest.NonceState.STALE,
        )


def _client(address: str | bytes | None) -> bytes:
    if not address:
        return b""
    return address.encode("ascii", "replace") if isinstance(address, str) else address


def _ext_value(value: bytes) -> bytes:
    """The bytes of an RFC 8187 ext-value (``UTF-8''%c3%a4``); LoginFailed if malformed."""
    from urllib.parse import unquote_to_bytes

    charset, quote, rest = value.partition(b"'")
    _, quote2, encoded = rest.partition(b"'")
    if not quote or not quote2 or charset.lower() != b"utf-8":
        raise LoginFailed("Digest username* is not a UTF-8 ext-value")
    return unquote_to_bytes(encoded)
