"""HTTP authentication in front of a resource tree, with ``twisted.web.guard``'s names.

``HTTPAuthSessionWrapper(portal, credentialFactories)`` reads the ``Authorization``
header with the factory of its scheme, logs in through the portal (hive.cred.portal) and
lets the request go on to the avatar the realm gave, with the rest of the path; the
avatar's ``logout`` is called when the response ends. No header: an anonymous login is
tried (it succeeds only if the portal has an ``AllowAnonymousAccess``-like checker), else
401 with a challenge from every factory::

    portal = Portal(realm, [FilePasswordDB("httpd.password")])
    resource = HTTPAuthSessionWrapper(portal, [DigestCredentialFactory("SHA-256", "x"),
                                               DigestCredentialFactory("MD5", "x"),
                                               BasicCredentialFactory("x")])

Beyond Twisted:

- A factory is offered only if some checker of the portal takes the credentials it
  makes: a file of argon2id or bcrypt hashes cannot check a Digest response (that needs
  the password in clear), so with ``HashedPasswordDB`` only Basic is offered. A wrapper
  none of whose factories fits raises ValueError at once.
- `DigestCredentialFactory` is RFC 7616's (SHA-256, MD5), its nonces signed with the
  server's secret so that every worker takes them, expiring, with ``stale=true``.
- Failed logins are counted (in /metrics, ``hive_logins_total``) and limited per client
  address (`LoginLimiter`): past the limit, requests with credentials get 429 with a
  Retry-After and no password is checked. A verifier that is full (HashedPasswordDB's
  threads and queue) answers 503.

Basic sends the password in clear and Digest protects neither the body nor the other
headers: serve guarded resources over TLS.
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from zope.interface import implementer

from hive._forms import parse_basic_auth
from hive.cred import credentials as _credentials
from hive.cred._hashing import LoginBusy
from hive.cred.credentials import (
    Anonymous,
    DigestedCredentials,
    IUsernameDigestHash,
    IUsernameHashedPassword,
    IUsernamePassword,
    UsernamePassword,
)
from hive.cred.error import LoginFailed, Unauthorized
from hive.iweb import ICredentialFactory, IRequest, IResource
from hive.resource import NOT_DONE_YET, ErrorPage, Resource, isawaitable
from hive.urlpath import site_prefix

__all__ = [
    "BasicCredentialFactory",
    "DigestCredentialFactory",
    "HTTPAuthSessionWrapper",
    "LoginLimiter",
    "UnauthorizedResource",
]

log = logging.getLogger("hive.guard")


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _checked_realm(value: str | bytes) -> bytes:
    realm = _as_bytes(value)
    if any(byte < 0x20 or byte == 0x7F for byte in realm):
        raise ValueError(f"control characters in realm {realm!r}")
    return realm


@implementer(ICredentialFactory)
class BasicCredentialFactory:
    """HTTP Basic authentication (RFC 7617) for the realm ``authenticationRealm``."""

    scheme = b"basic"
    #: What `decode` gives: a clear password, which every checker can verify.
    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, authenticationRealm: str | bytes) -> None:
        self.authenticationRealm = _checked_realm(authenticationRealm)

    def getChallenge(self, request: IRequest) -> dict[str | bytes, str | bytes]:
        return {"realm": self.authenticationRealm, "charset": "UTF-8"}

    def decode(self, response: bytes, request: IRequest) -> UsernamePassword:
        # The parser request.getUser() uses, so the user checked is the user the resource sees.
        credentials = parse_basic_auth(b"Basic " + response)
        if credentials is None:
            raise LoginFailed("invalid Basic credentials")
        return UsernamePassword(*credentials)


@implementer(ICredentialFactory)
class DigestCredentialFactory:
    """HTTP Digest authentication (RFC 7616) with ``algorithm`` ("SHA-256", "MD5" or
    "SHA-512-256") for the realm ``authenticationRealm`` (bytes, or str as UTF-8).

    Offer SHA-256 and MD5 with two factories, SHA-256 first (RFC 7616 section 3.7):
    browsers still speak MD5 only, curl both. Nonces are bound to the client's address
    (after trusted proxies) and the realm, signed with the server's secret, good for
    ``CHALLENGE_LIFETIME_SECS``; a response is taken only for the URI it was made for.
    The credentials need a checker that knows the password in clear
    (``InMemoryUsernamePasswordDatabaseDontUse``, ``FilePasswordDB`` without ``hash``) or
    H(A1) (IUsernameDigestHash).
    """

    scheme = b"digest"
    credentialInterfaces = (IUsernameHashedPassword, IUsernameDigestHash)

    def __init__(self, algorithm: str | bytes, authenticationRealm: str | bytes) -> None:
        self.digest = _credentials.DigestCredentialFactory(algorithm, authenticationRealm)

    @property
    def algorithm(self) -> str:
        return self.digest.algorithm

    @property
    def authenticationRealm(self) -> bytes:
        return self.digest.authenticationRealm

    def getChallenge(self, request: IRequest) -> dict[str | bytes, str | bytes]:
        challenge: dict[str | bytes, str | bytes] = {}
        challenge.update(self.digest.getChallenge(request.getClientIP()))
        return challenge

    def decode(self, response: bytes, request: IRequest) -> DigestedCredentials:
        # The client hashed the target it sent: behind a proxy that strips a prefix, the
        # prefix and what hive received.
        target = site_prefix(request) + request.uri
        return self.digest.decode(response, request.method, request.getClientIP(), target)


# Challenge parameters whose values are tokens, sent unquoted (RFC 7616 section 3.3).
_TOKEN_PARAMS = frozenset({b"algorithm", b"stale", b"charset", b"userhash"})


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _param(name: bytes, value: bytes) -> bytes:
    if name in _TOKEN_PARAMS and _TOKEN.fullmatch(value):
        return name + b"=" + value
    return name + b'="' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def challenge_header(factory: ICredentialFactory, request: IRequest, stale: bool = False) -> bytes:
    """The WWW-Authenticate value of ``factory``'s challenge."""
    challenge = dict(factory.getChallenge(request))
    if stale:
        challenge["stale"] = b"true"
    params = b", ".join(
        _param(_as_bytes(name).lower(), _as_bytes(value)) for name, value in challenge.items()
    )
    scheme = factory.scheme[:1].upper() + factory.scheme[1:]
    return scheme + b" " + params


class UnauthorizedResource(Resource):
    """401 with a challenge from every credential factory; stops the traversal.

    ``stale`` is the factory whose nonce expired under good credentials: its challenge
    says ``stale=true``, so the client asks again without asking its user.
    """

    isLeaf = True

    def __init__(
        self, factories: Sequence[ICredentialFactory], stale: ICredentialFactory | None = None
    ) -> None:
        super().__init__()
        self._credentialFactories = factories
        self._stale = stale

    def render(self, request: IRequest) -> bytes:
        request.setResponseCode(401)
        for factory in self._credentialFactories:
            header = challenge_header(factory, request, stale=factory is self._stale)
            request.responseHeaders.addRawHeader(b"www-authenticate", header)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"" if request.method == b"HEAD" else b"Unauthorized"

    def getChildWithDefault(self, path: bytes, request: IRequest) -> Resource:
        return self


class _RetryLater(Resource):
    """``code`` with a Retry-After of ``seconds``: refused logins that are no 401."""

    isLeaf = True

    def __init__(self, code: int, seconds: float, message: bytes) -> None:
        super().__init__()
        self._code = code
        self._seconds = max(1, math.ceil(seconds))
        self._message = message

    def render(self, request: IRequest) -> bytes:
        request.setResponseCode(self._code)
        request.setHeader(b"retry-after", b"%d" % self._seconds)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"" if request.method == b"HEAD" else self._message

    def getChildWithDefault(self, path: bytes, request: IRequest) -> Resource:
        return self


class LoginLimiter:
    """Failed logins per client address: past ``failures`` within ``window`` seconds, the
    address is refused for ``window`` seconds (429, and no password is checked).

    A success does not clear the count: otherwise someone with one account of their own
    could guess another's password between logins to it. IPv6 clients are counted by
    their /64, which one host commonly has whole. At most ``max_clients`` addresses are
    remembered (the least recently failed are forgotten first). Each worker counts its
    own clients: with N workers, an address that spreads its connections may have up to
    N times ``failures`` before every worker refuses it. ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        failures: int = 10,
        window: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or window <= 0 or max_clients < 1:
            raise ValueError("a LoginLimiter needs failures >= 1, window > 0, max_clients >= 1")
        self.failures = failures
        self.window = window
        self.max_clients = max_clients
        self.clock = clock
        # address -> [failures in the window, when the window began, refused until]
        self._clients: collections.OrderedDict[str, list[float]] = collections.OrderedDict()

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0 when it may now."""
        entry = self._clients.get(address)
        if entry is None:
            return 0.0
        return max(0.0, entry[2] - self.clock())

    def failed(self, address: str) -> bool:
        """Count a failed login of ``address``; whether that makes it refused."""
        now = self.clock()
        clients = self._clients
        entry = clients.get(address)
        if entry is None or now - entry[1] >= self.window:
            entry = [0.0, now, entry[2] if entry is not None else 0.0]
        entry[0] += 1
        if entry[0] >= self.failures:
            entry[2] = now + self.window
            entry[0], entry[1] = 0.0, now
        clients[address] = entry
        clients.move_to_end(address)
        while len(clients) > self.max_clients:
            clients.popitem(last=False)
        return entry[2] > now


def client_key(request: IRequest) -> str:
    """The address a request's failures are counted under (IPv6: its /64)."""
    ip = request.getClientIP()
    if ip is None:
        return "unix"
    if ":" in ip:
        try:
            return str(ipaddress.IPv6Network((ip.split("%", 1)[0], 64), strict=False))
        except ValueError:
            return ip
    return ip


def _count(request: IRequest, result: str) -> None:
    """Count a login's result in the worker's stats (hive.worker.stats), if it keeps any."""
    stats = getattr(request.site, "stats", None)
    login = getattr(stats, "login", None)
    if login is not None:
        login(result)


#: The default of ``HTTPAuthSessionWrapper(loginLimiter=...)``: a limiter of its own.
DEFAULT_LIMIT: Final = object()


def _takes(accepted: list[Any], factory: Any) -> bool:
    made = getattr(factory, "credentialInterfaces", None)
    if made is None:
        return True  # a factory of the application's: it knows
    return any(kind.isOrExtends(interface) for kind in made for interface in accepted)


@implementer(IResource)
class HTTPAuthSessionWrapper:
    """Lets requests through to the avatar of the credentials the portal accepts.

    ``portal`` is a `hive.cred.portal.Portal` whose realm gives an IResource avatar;
    ``credentialFactories`` the schemes offered. The wrapper consumes no path segment:
    ``/guarded/a/b`` reaches the avatar's child ``a``, then ``b``. ``loginLimiter`` (hive's)
    is the `LoginLimiter` of failed logins (default: one of its own, 10 per minute per
    address; share one between wrappers to count them together; None: no limit).
    """

    isLeaf = False

    def __init__(
        self,
        portal: Any,
        credentialFactories: Sequence[ICredentialFactory],
        *resource: Any,
        loginLimiter: Any = DEFAULT_LIMIT,
    ) -> None:
        if resource or not callable(getattr(portal, "login", None)):
            raise TypeError(
                "HTTPAuthSessionWrapper(portal, credentialFactories) takes a"
                " hive.cred.portal.Portal whose realm gives the resource (hive's old"
                " (checker, factories, resource) form is gone: see the README,"
                " 'Authentication')"
            )
        self._portal = portal
        self._credentialFactories = list(credentialFactories)
        limiter = LoginLimiter() if loginLimiter is DEFAULT_LIMIT else loginLimiter
        self._limiter: LoginLimiter | None = limiter
        accepted = self._accepted()
        if accepted:
            offered = [f for f in self._credentialFactories if _takes(accepted, f)]
            if self._credentialFactories and not offered:
                names = ", ".join(i.__name__ for i in accepted)
                raise ValueError(
                    f"no credential factory fits this portal: its checkers take {names};"
                    " Digest needs a checker with clear passwords (IUsernameHashedPassword)"
                    " or H(A1) (IUsernameDigestHash): use BasicCredentialFactory"
                )
            for factory in self._credentialFactories:
                if factory not in offered:
                    log.warning(
                        "%r is not offered: no checker of the portal takes what it makes", factory
                    )

    def _accepted(self) -> list[Any]:
        listing = getattr(self._portal, "listCredentialsInterfaces", None)
        return list(listing()) if listing is not None else []

    def _factories(self) -> list[ICredentialFactory]:
        accepted = self._accepted()
        if not accepted:
            return self._credentialFactories
        return [f for f in self._credentialFactories if _takes(accepted, f)]

    def putChild(self, path: bytes, child: IResource) -> None:
        raise NotImplementedError("put children on the avatar")

    def getChildWithDefault(self, path: bytes, request: IRequest) -> Any:
        """The avatar (or a 401) in place of this resource; may be awaitable."""
        # Transparent: give the segment back for the avatar to consume.
        request.postpath.insert(0, request.prepath.pop())
        return self._authorizedResource(request)

    def render(self, request: IRequest) -> Any:
        """Render the avatar if the credentials are good, else a 401."""
        resource = self._authorizedResource(request)
        if isawaitable(resource):
            return _render_later(resource, request)
        return resource.render(request)

    def _authorizedResource(self, request: IRequest) -> Any:
        factories = self._factories()
        header = request.getHeader(b"authorization")
        if not header:
            return self._login(Anonymous(), request, factories, None)
        limiter = self._limiter
        if limiter is not None:
            wait = limiter.retry_after(client_key(request))
            if wait > 0:
                _count(request, "limited")
                return _RetryLater(429, wait, b"Too many failed logins: try again later")
        scheme, _, response = bytes(header).strip().partition(b" ")
        scheme = scheme.lower()
        response = response.strip()
        failure: LoginFailed | None = None
        for factory in factories:
            if factory.scheme != scheme:
                continue
            try:
                credentials = factory.decode(response, request)
            except LoginFailed as exc:
                failure = exc  # another factory of the scheme may take it (MD5, SHA-256)
                continue
            except Exception:
                log.exception("unexpected failure from credential factory %r", factory)
                return ErrorPage(500, "Internal Error", "")
            return self._login(credentials, request, factories, factory)
        if failure is None:
            return UnauthorizedResource(factories)  # a scheme not offered: no attempt
        log.debug("unreadable credentials: %s", failure)
        return self._failed(request, factories)

    def _failed(self, request: IRequest, factories: list[ICredentialFactory]) -> Resource:
        _count(request, "failed")
        limiter = self._limiter
        if limiter is not None:
            limiter.failed(client_key(request))
        return UnauthorizedResource(factories)

    async def _login(
        self,
        credentials: Any,
        request: IRequest,
        factories: list[ICredentialFactory],
        factory: ICredentialFactory | None,
    ) -> Any:
        try:
            _, avatar, logout = await self._portal.login(credentials, None, IResource)
        except LoginBusy:
            _count(request, "busy")
            return _RetryLater(503, 1, b"Too many logins in progress: try again shortly")
        except (Unauthorized, LoginFailed):
            if factory is None:
                return UnauthorizedResource(factories)  # no credentials: not a failure
            return self._failed(request, factories)
        except Exception:
            log.exception("HTTPAuthSessionWrapper: unexpected error in the login")
            return ErrorPage(500, "Internal Error", "")
        if getattr(credentials, "stale", False):
            # The password was right for an expired nonce: ask again, without counting.
            logout()
            return UnauthorizedResource(factories, stale=factory)
        if factory is not None:
            _count(request, "succeeded")

        def logged_out(finished: Any) -> None:
            if not finished.cancelled():
                finished.exception()  # a client that went away is no error here
            try:
                logout()
            except Exception:
                log.exception("error in a cred logout")

        request.notifyFinish().add_done_callback(logged_out)
        return avatar


async def _render_later(resource: Awaitable[Any], request: IRequest) -> Any:
    avatar = await resource
    render = getattr(request, "render", None)
    if render is None:  # another server's request
        body = avatar.render(request)
        return await body if not isinstance(body, bytes) and isawaitable(body) else body
    # hive's Request renders as it would have from the start (405s, async bodies).
    render(avatar)
    return NOT_DONE_YET
