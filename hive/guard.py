"""HTTP authentication in front of a resource, in the spirit of ``twisted.web.guard``.

``HTTPAuthSessionWrapper`` asks for credentials (401 with a ``WWW-Authenticate`` challenge
per credential factory), checks them, and on success lets the request go on to the
wrapped resource, which sees the user as ``request.getUser()``::

    checker = InMemoryUsernamePasswordDatabaseDontUse(alice=b"s3cret")
    guarded = HTTPAuthSessionWrapper(checker, [BasicCredentialFactory(b"admin area")], admin)

Twisted authenticates through twisted.cred (portals, realms, checkers and credential
interfaces); a full cred port is not part of hive.  What hive keeps:

- a checker is anything with ``check(username, password)`` returning a bool, or an
  awaitable of one (look users up in a database with ``async def``);
- ``Portal(realm, [checkers])`` with a realm's ``requestAvatar(avatarId, mind, *interfaces)``
  returning ``(IResource, resource, logout)``, for Twisted programs that pick the resource
  per user: they port by changing imports;
- no ``Authorization`` header gets a 401; Twisted first tries an anonymous login.

There is no ``DigestCredentialFactory``: Digest authentication (RFC 7616) is obsolete in
practice.  It makes the server store a password-equivalent (the MD5 of user, realm and
password), depends on MD5, protects neither the body nor the rest of the request, and
browsers never adopted its stronger variants.  Basic over TLS is what sites use.  Basic
sends the password in clear on every request: serve guarded resources over TLS.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any, Protocol, runtime_checkable

from zope.interface import implementer

from hive._forms import parse_basic_auth
from hive.iweb import ICredentialFactory, IRequest, IResource
from hive.resource import Resource

__all__ = [
    "BasicCredentialFactory",
    "HTTPAuthSessionWrapper",
    "ICredentialFactory",
    "ICredentialsChecker",
    "IRealm",
    "InMemoryUsernamePasswordDatabaseDontUse",
    "LoginFailed",
    "Portal",
    "UnauthorizedLogin",
    "UnauthorizedResource",
    "UsernamePassword",
]

log = logging.getLogger("hive.guard")


class LoginFailed(Exception):
    """The credentials could not be read or were refused (``twisted.cred.error``)."""


class UnauthorizedLogin(LoginFailed):
    """The credentials were read but are wrong."""


@dataclass(frozen=True, slots=True)
class UsernamePassword:
    """Credentials from a Basic ``Authorization`` header."""

    username: bytes
    password: bytes

    def __repr__(self) -> str:
        # Never let a password reach a log line or a traceback page.
        return f"UsernamePassword(username={self.username!r}, password=<hidden>)"


@runtime_checkable
class ICredentialsChecker(Protocol):
    """Decides whether a user name and password are right; may be ``async def``."""

    def check(self, username: bytes, password: bytes) -> bool | Awaitable[bool]: ...


class IRealm(Protocol):
    """Gives the resource (the avatar) for an authenticated user."""

    def requestAvatar(self, avatarId: bytes, mind: object, *interfaces: object) -> Any: ...


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


class InMemoryUsernamePasswordDatabaseDontUse:
    """Users and clear-text passwords in memory: for tests and examples, as the name says.

    Comparisons take the same time whatever the password and whether the user exists:
    the SHA-256 of the given password is compared with ``hmac.compare_digest`` against the
    stored one's (equal lengths, so the length of the password leaks nothing either).
    """

    def __init__(self, **users: str | bytes) -> None:
        self._digests: dict[bytes, bytes] = {}
        for username, password in users.items():
            self.addUser(username, password)

    def addUser(self, username: str | bytes, password: str | bytes) -> None:
        self._digests[_as_bytes(username)] = hashlib.sha256(_as_bytes(password)).digest()

    def check(self, username: bytes, password: bytes) -> bool:
        expected = self._digests.get(username)
        known = expected is not None
        if expected is None:
            # An unknown user is compared too, against a digest no password has: same time.
            expected = _NO_DIGEST
        same = hmac.compare_digest(hashlib.sha256(password).digest(), expected)
        return same and known


_NO_DIGEST = b"\x00" * 32


class Portal:
    """``twisted.cred.portal.Portal`` cut down: checkers with ``check``, and a realm."""

    def __init__(self, realm: IRealm, checkers: Iterable[ICredentialsChecker] = ()) -> None:
        self.realm = realm
        self.checkers: list[ICredentialsChecker] = list(checkers)

    def registerChecker(self, checker: ICredentialsChecker) -> None:
        self.checkers.append(checker)

    async def login(
        self, credentials: UsernamePassword, mind: object, *interfaces: object
    ) -> tuple[Any, Any, Callable[[], None]]:
        """(interface, avatar, logout) from the realm; UnauthorizedLogin if no checker agrees."""
        for checker in self.checkers:
            if await _checked(checker, credentials):
                result = self.realm.requestAvatar(credentials.username, mind, *interfaces)
                if isawaitable(result):
                    result = await result
                interface, avatar, logout = result
                return interface, avatar, logout
        raise UnauthorizedLogin("wrong user name or password")


async def _checked(checker: ICredentialsChecker, credentials: UsernamePassword) -> bool:
    result = checker.check(credentials.username, credentials.password)
    if isawaitable(result):
        result = await result
    return bool(result)


@implementer(ICredentialFactory)
class BasicCredentialFactory:
    """HTTP Basic authentication (RFC 7617) for the realm ``authenticationRealm``."""

    scheme = b"basic"

    def __init__(self, authenticationRealm: str | bytes) -> None:
        realm = _as_bytes(authenticationRealm)
        if any(byte < 0x20 or byte == 0x7F for byte in realm):
            raise ValueError(f"control characters in realm {realm!r}")
        self.authenticationRealm = realm

    def getChallenge(self, request: IRequest) -> dict[str | bytes, str | bytes]:
        return {"realm": self.authenticationRealm}

    def decode(self, response: bytes, request: IRequest) -> UsernamePassword:
        # The parser request.getUser() uses, so the user checked is the user the resource sees.
        credentials = parse_basic_auth(b"Basic " + response)
        if credentials is None:
            raise LoginFailed("invalid Basic credentials")
        return UsernamePassword(*credentials)


def _quoted(value: bytes) -> bytes:
    """An RFC 9110 quoted-string."""
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class UnauthorizedResource(Resource):
    """401 with a challenge from every credential factory; stops the traversal."""

    isLeaf = True

    def __init__(self, factories: Sequence[ICredentialFactory]) -> None:
        super().__init__()
        self._credentialFactories = factories

    def render(self, request: IRequest) -> bytes:
        request.setResponseCode(401)
        for factory in self._credentialFactories:
            params = b", ".join(
                _as_bytes(name) + b"=" + _quoted(_as_bytes(value))
                for name, value in factory.getChallenge(request).items()
            )
            scheme = factory.scheme[:1].upper() + factory.scheme[1:]
            request.responseHeaders.addRawHeader(b"www-authenticate", scheme + b" " + params)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"" if request.method == b"HEAD" else b"Unauthorized"

    def getChildWithDefault(self, path: bytes, request: IRequest) -> Resource:
        return self


@implementer(IResource)
class HTTPAuthSessionWrapper:
    """Lets requests through to a resource only with credentials a checker accepts.

    ``portal`` is a checker (then ``resource`` is what authenticated users get) or a
    `Portal` (its realm gives the resource per user).  ``credentialFactories`` are the
    schemes offered, e.g. ``[BasicCredentialFactory(b"realm")]``.  The wrapper consumes no
    path segment: ``/guarded/a/b`` reaches the wrapped resource's child ``a``, then ``b``.
    """

    isLeaf = False

    def __init__(
        self,
        portal: Portal | ICredentialsChecker,
        credentialFactories: Sequence[ICredentialFactory],
        resource: IResource | None = None,
    ) -> None:
        if not isinstance(portal, Portal) and resource is None:
            raise TypeError("a checker needs the resource to guard (or pass a Portal)")
        self._portal = portal
        self._credentialFactories = list(credentialFactories)
        self._resource = resource

    def putChild(self, path: bytes, child: IResource) -> None:
        raise NotImplementedError("put children on the wrapped resource")

    def getChildWithDefault(self, path: bytes, request: IRequest) -> Any:
        """The wrapped resource (or a 401) in place of this one; may be awaitable."""
        # Transparent: give the segment back for the wrapped resource to consume.
        request.postpath.insert(0, request.prepath.pop())
        return self._authorizedResource(request)

    def render(self, request: IRequest) -> Any:
        """Render the wrapped resource if the credentials are good, else a 401."""
        resource = self._authorizedResource(request)
        if isinstance(resource, Resource) or not isawaitable(resource):
            return resource.render(request)
        return _render_later(resource, request)

    def _authorizedResource(self, request: IRequest) -> Any:
        header = request.getHeader(b"authorization")
        if not header:
            return UnauthorizedResource(self._credentialFactories)
        scheme, _, response = bytes(header).strip().partition(b" ")
        scheme = scheme.lower()
        factory = next((f for f in self._credentialFactories if f.scheme == scheme), None)
        if factory is None:
            return UnauthorizedResource(self._credentialFactories)
        try:
            credentials = factory.decode(response.strip(), request)
        except LoginFailed:
            return UnauthorizedResource(self._credentialFactories)
        portal = self._portal
        if isinstance(portal, Portal):
            return self._login(portal, credentials, request)
        result = portal.check(credentials.username, credentials.password)
        if isawaitable(result):
            return self._checked_later(result)
        return self._resource if result else UnauthorizedResource(self._credentialFactories)

    async def _checked_later(self, result: Awaitable[bool]) -> Any:
        if await result:
            return self._resource
        return UnauthorizedResource(self._credentialFactories)

    async def _login(self, portal: Portal, credentials: UsernamePassword, request: IRequest) -> Any:
        try:
            _, avatar, logout = await portal.login(credentials, None, IResource)
        except LoginFailed:
            return UnauthorizedResource(self._credentialFactories)

        def logged_out(finished: Any) -> None:
            if not finished.cancelled():
                finished.exception()  # a client that went away is no error here
            logout()

        request.notifyFinish().add_done_callback(logged_out)
        return avatar


async def _render_later(resource: Awaitable[Any], request: IRequest) -> Any:
    body = (await resource).render(request)
    if not isinstance(body, bytes) and isawaitable(body):
        body = await body
    return body
