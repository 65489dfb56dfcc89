"""Credentials checkers, with ``twisted.cred.checkers``'s names, and one beyond Twisted.

A checker says which credential interfaces it takes (``credentialInterfaces``) and turns
credentials into an avatar id (``requestAvatarId``): the user name as bytes, `ANONYMOUS`,
or UnauthorizedLogin. As in Twisted, the result may be the value itself, an awaitable or
a Deferred.

Beyond Twisted, `HashedPasswordDB` reads a file of argon2id or bcrypt hashes (``htpasswd
-B`` files too; ``hive passwd`` writes them) and verifies in a thread, so the event loop
never waits for a hash.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from zope.interface import Attribute, Interface, implementer

from hive._deferred import is_deferred, to_future
from hive.cred import _hashing
from hive.cred.credentials import (
    IAnonymous,
    IUsernameHashedPassword,
    IUsernamePassword,
)
from hive.cred.error import UnauthorizedLogin
from hive.resource import isawaitable

__all__ = [
    "ANONYMOUS",
    "AllowAnonymousAccess",
    "FilePasswordDB",
    "HashedPasswordDB",
    "ICredentialsChecker",
    "InMemoryUsernamePasswordDatabaseDontUse",
    "OnDiskUsernamePasswordDatabase",
]

log = logging.getLogger("hive.cred")

#: The avatar id of an anonymous user: neither None nor b"", which a mistake could give.
ANONYMOUS: tuple[()] = ()


class ICredentialsChecker(Interface):
    """Checks credentials of the kinds it names, and says whose they are."""

    credentialInterfaces = Attribute("The credential interfaces this checker takes.")

    def requestAvatarId(credentials: Any) -> Any:
        """The avatar id (bytes, or ANONYMOUS) of ``credentials``, or UnauthorizedLogin:
        the value itself, an awaitable or a Deferred of it."""


async def resolved(value: Any) -> Any:
    """``value``, awaited if it is an awaitable or a Deferred (Twisted's maybeDeferred)."""
    while True:
        if is_deferred(value):
            value = await to_future(value)
        elif isawaitable(value):
            value = await value
        else:
            return value


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


@implementer(ICredentialsChecker)
class AllowAnonymousAccess:
    """Lets anyone in, as `ANONYMOUS`."""

    credentialInterfaces = (IAnonymous,)

    def requestAvatarId(self, credentials: Any) -> tuple[()]:
        return ANONYMOUS


@implementer(ICredentialsChecker)
class InMemoryUsernamePasswordDatabaseDontUse:
    """Users and clear-text passwords in memory: for tests and examples, as the name says.

    ``InMemoryUsernamePasswordDatabaseDontUse(alice=b"s3cret")``; passwords may be str
    (encoded as UTF-8) where Twisted wants bytes. An unknown user is compared too, against
    a password no one has, so the answer takes as long.
    """

    credentialInterfaces = (IUsernamePassword, IUsernameHashedPassword)

    def __init__(self, **users: bytes | str) -> None:
        self.users: dict[bytes, bytes] = {}
        for username, password in users.items():
            self.addUser(username, password)

    def addUser(self, username: bytes | str, password: bytes | str) -> None:
        self.users[_as_bytes(username)] = _as_bytes(password)

    async def requestAvatarId(self, credentials: Any) -> bytes:
        password = self.users.get(credentials.username)
        matched = await resolved(credentials.checkPassword(password or _NO_PASSWORD))
        if matched and password is not None:
            return bytes(credentials.username)
        raise UnauthorizedLogin()


_NO_PASSWORD = b"\0no password matches this\0"


@implementer(ICredentialsChecker)
class FilePasswordDB:
    """Users and passwords in a text file, one user a line, with Twisted's options.

    ``delim`` splits a line into fields; ``usernameField`` and ``passwordField`` index
    them. ``caseSensitive=False`` lower-cases user names. ``hash(username, password,
    stored)`` turns a clear password into the stored form (then only IUsernamePassword is
    taken); without it passwords are stored in clear, and Digest works too. ``cache``
    keeps the file in memory, read again when its mtime changes; without it the file is
    read at every login, on the event loop, as in Twisted. For argon2id or bcrypt hashes,
    use `HashedPasswordDB`: a ``hash`` function here runs on the loop and blocks it.
    """

    def __init__(
        self,
        filename: str | bytes | os.PathLike[str],
        delim: bytes = b":",
        usernameField: int = 0,
        passwordField: int = 1,
        caseSensitive: bool = True,
        hash: Callable[[bytes, bytes, bytes], bytes] | None = None,
        cache: bool = False,
    ) -> None:
        self.filename = os.fsdecode(filename)
        self.delim = _as_bytes(delim)
        self.ufield = usernameField
        self.pfield = passwordField
        self.caseSensitive = caseSensitive
        self.hash = hash
        self.cache = cache
        self._credCache: dict[bytes, bytes] | None = None
        self._cacheTimestamp = 0.0
        if hash is None:
            self.credentialInterfaces: tuple[Any, ...] = (
                IUsernamePassword,
                IUsernameHashedPassword,
            )
        else:
            self.credentialInterfaces = (IUsernamePassword,)

    def _loadCredentials(self) -> Iterator[tuple[bytes, bytes]]:
        """(username, password) of each line with both fields; UnauthorizedLogin if the
        file cannot be read (logged)."""
        try:
            with open(self.filename, "rb") as file:
                lines = file.read().splitlines()
        except OSError as exc:
            log.error("cannot read the password file %s: %s", self.filename, exc)
            raise UnauthorizedLogin() from None
        for line in lines:
            parts = line.rstrip().split(self.delim)
            if self.ufield >= len(parts) or self.pfield >= len(parts):
                continue
            username = parts[self.ufield]
            yield (username if self.caseSensitive else username.lower()), parts[self.pfield]

    def getUser(self, username: bytes) -> tuple[bytes, bytes]:
        """(the user name as stored, the stored password); KeyError if unknown."""
        if not self.caseSensitive:
            username = username.lower()
        if self.cache:
            try:
                mtime = os.path.getmtime(self.filename)
            except OSError as exc:
                log.error("cannot read the password file %s: %s", self.filename, exc)
                raise UnauthorizedLogin() from None
            if self._credCache is None or mtime > self._cacheTimestamp:
                self._cacheTimestamp = mtime
                self._credCache = dict(self._loadCredentials())
            return username, self._credCache[username]
        for name, password in self._loadCredentials():
            if name == username:
                return name, password
        raise KeyError(username)

    async def requestAvatarId(self, credentials: Any) -> bytes:
        try:
            username, stored = self.getUser(credentials.username)
        except KeyError:
            raise UnauthorizedLogin() from None
        if self.hash is not None:
            if not IUsernamePassword.providedBy(credentials):
                raise UnauthorizedLogin()
            computed = self.hash(credentials.username, credentials.password, stored)
            if hmac.compare_digest(_digest(_as_bytes(computed)), _digest(stored)):
                return username
            raise UnauthorizedLogin()
        if await resolved(credentials.checkPassword(stored)):
            return username
        raise UnauthorizedLogin()


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


#: Twisted's old name.
OnDiskUsernamePasswordDatabase = FilePasswordDB


@implementer(ICredentialsChecker)
class HashedPasswordDB:
    """A password file of argon2id or bcrypt hashes: ``user:$argon2id$...`` lines, as
    ``hive passwd`` writes them (or Apache's ``htpasswd -B``, whose ``$2y$`` bcrypt lines
    are read as they are). Blank lines and lines starting with ``#`` are skipped.

    Passwords are verified in threads (`_hashing.Verifier`: ``threads`` of them, at most
    ``backlog`` waiting; past that a login is refused with LoginBusy, which the guard
    answers with 503). An unknown user is verified against a dummy hash as costly as the
    file's, so that it takes as long to refuse as a wrong password. The file is read
    again when its mtime or size changes. Only IUsernamePassword is taken: a hash cannot
    check a Digest response, which needs the password in clear.
    """

    credentialInterfaces = (IUsernamePassword,)

    def __init__(
        self,
        filename: str | os.PathLike[str],
        delim: bytes = b":",
        caseSensitive: bool = True,
        threads: int = 1,
        backlog: int = 64,
    ) -> None:
        self.filename = os.fspath(filename)
        self.delim = delim
        self.caseSensitive = caseSensitive
        self.verifier = _hashing.Verifier(threads, backlog)
        self._users: dict[bytes, bytes] = {}
        self._stamp: tuple[float, int] | None = None
        self._dummy: bytes | None = None

    def users(self) -> dict[bytes, bytes]:
        """The file's users and hashes, read again if the file changed."""
        try:
            info = os.stat(self.filename)
        except OSError as exc:
            log.error("cannot read the password file %s: %s", self.filename, exc)
            raise UnauthorizedLogin() from None
        stamp = (info.st_mtime, info.st_size)
        if stamp != self._stamp:
            self._users = self._read()
            self._stamp = stamp
            self._dummy = None  # made again, like the file's first hash, when needed
        return self._users

    def _read(self) -> dict[bytes, bytes]:
        try:
            with open(self.filename, "rb") as file:
                lines = file.read().splitlines()
        except OSError as exc:
            log.error("cannot read the password file %s: %s", self.filename, exc)
            raise UnauthorizedLogin() from None
        users: dict[bytes, bytes] = {}
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith(b"#"):
                continue
            username, delim, hashed = line.partition(self.delim)
            if not delim or _hashing.identify(hashed) is None:
                log.warning(
                    "%s line %d: not user%shash with an argon2 or bcrypt hash; skipped",
                    self.filename,
                    number,
                    self.delim.decode("ascii", "replace"),
                )
                continue
            users[username if self.caseSensitive else username.lower()] = hashed
        return users

    async def requestAvatarId(self, credentials: Any) -> bytes:
        username = bytes(credentials.username)
        if not self.caseSensitive:
            username = username.lower()
        users = self.users()
        hashed = users.get(username)
        password = bytes(credentials.password)
        if hashed is not None and await self.verifier.verify(password, hashed):
            return username
        if hashed is None:
            like = next(iter(users.values()), None)
            await self.verifier.run(lambda: self._verify_unknown(password, like))
        raise UnauthorizedLogin()

    def _verify_unknown(self, password: bytes, like: bytes | None) -> bool:
        # In a verifier thread, as every hash.
        # Making the dummy costs what verifying costs, so the first unknown user makes it.
        if self._dummy is None:
            self._dummy = _hashing.dummy_hash(like)
        else:
            _hashing.verify_password(password, self._dummy)
        return False
