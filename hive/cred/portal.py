"""The portal: where credentials meet checkers and a realm, with
``twisted.cred.portal``'s names.

``Portal(realm, [checkers]).login(credentials, mind, *interfaces)`` finds the checker
registered for the credentials' interface, asks it for the avatar id, and asks the realm
for the avatar: an awaitable of ``(interface, avatar, logout)``. Checkers and realms may
answer with the value itself, an awaitable, or a Twisted Deferred (awaited on the worker's
loop: hive._deferred).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from zope.interface import Interface, providedBy

from hive.cred.checkers import resolved
from hive.cred.error import UnhandledCredentials

__all__ = ["IRealm", "Portal"]

#: What a realm's requestAvatar gives and what Portal.login's awaitable gives.
LoginResult = tuple[Any, Any, Callable[[], object]]


class IRealm(Interface):
    """Turns an authenticated avatar id into the avatar: for an HTTP guard, the resource
    the user gets."""

    def requestAvatar(avatarId: Any, mind: object, *interfaces: Any) -> Any:
        """``(interface, avatar, logout)`` for one of ``interfaces`` (or an awaitable or
        Deferred of it); NotImplementedError if the realm has none of them."""


def _name(interface: Any) -> str:
    return f"{interface.__module__}.{interface.__name__}"


class Portal:
    """A realm and the checkers of the credential kinds it takes."""

    def __init__(self, realm: Any, checkers: Iterable[Any] = ()) -> None:
        self.realm = realm
        self.checkers: dict[Any, Any] = {}
        for checker in checkers:
            self.registerChecker(checker)

    def listCredentialsInterfaces(self) -> list[Any]:
        """The credential interfaces some checker takes."""
        return list(self.checkers)

    def registerChecker(self, checker: Any, *credentialInterfaces: Any) -> None:
        """Use ``checker`` for ``credentialInterfaces`` (default: those it declares)."""
        if not credentialInterfaces:
            credentialInterfaces = getattr(checker, "credentialInterfaces", None) or ()
        if not credentialInterfaces or not callable(getattr(checker, "requestAvatarId", None)):
            raise TypeError(
                f"{checker!r} is not a credentials checker: it needs credentialInterfaces and"
                " requestAvatarId(credentials) (hive.cred.checkers.ICredentialsChecker)"
            )
        for interface in credentialInterfaces:
            self.checkers[interface] = checker

    async def login(self, credentials: Any, mind: object, *interfaces: Any) -> LoginResult:
        """``(interface, avatar, logout)``; UnauthorizedLogin (or another LoginFailed)
        if the checker refuses, UnhandledCredentials if no checker takes them."""
        for interface, checker in self.checkers.items():
            if interface.providedBy(credentials):
                avatarId = await resolved(checker.requestAvatarId(credentials))
                result = await resolved(self.realm.requestAvatar(avatarId, mind, *interfaces))
                interface_, avatar, logout = result
                return interface_, avatar, logout
        kinds = ", ".join(_name(i) for i in providedBy(credentials)) or type(credentials).__name__
        raise UnhandledCredentials(f"No checker for {kinds}")
