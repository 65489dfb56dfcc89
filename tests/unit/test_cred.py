"""hive.cred: portals, checkers and credentials, with Twisted's semantics (values,
awaitables and real Deferreds from checkers and realms)."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from zope.interface import Interface, implementer

from hive.cred import _hashing
from hive.cred.checkers import (
    ANONYMOUS,
    AllowAnonymousAccess,
    FilePasswordDB,
    HashedPasswordDB,
    ICredentialsChecker,
    InMemoryUsernamePasswordDatabaseDontUse,
)
from hive.cred.credentials import (
    Anonymous,
    IAnonymous,
    IUsernameHashedPassword,
    IUsernamePassword,
    UsernameHashedPassword,
    UsernamePassword,
)
from hive.cred.error import (
    LoginDenied,
    LoginFailed,
    Unauthorized,
    UnauthorizedLogin,
    UnhandledCredentials,
)
from hive.cred.portal import IRealm, Portal
from tests.unit.harness import run

# Cheap hashes: the tests check behaviour, not cost.
FAST_ARGON2: dict[str, Any] = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


class IAvatar(Interface):
    """What the test realm gives."""


@implementer(IRealm)
class Realm:
    def __init__(self) -> None:
        self.logouts: list[object] = []

    def requestAvatar(self, avatarId: Any, mind: object, *interfaces: Any) -> Any:
        if IAvatar not in interfaces:
            raise NotImplementedError()
        return IAvatar, ("avatar", avatarId, mind), lambda: self.logouts.append(avatarId)


def login(portal: Portal, credentials: Any, *interfaces: Any) -> Any:
    return run(portal.login(credentials, "mind", *(interfaces or (IAvatar,))))


def test_error_hierarchy_is_twisteds() -> None:
    assert issubclass(UnauthorizedLogin, LoginFailed)
    assert issubclass(UnauthorizedLogin, Unauthorized)
    assert issubclass(UnhandledCredentials, LoginFailed)
    assert issubclass(LoginDenied, LoginFailed)


def test_portal_login_gives_interface_avatar_and_logout() -> None:
    realm = Realm()
    portal = Portal(realm, [InMemoryUsernamePasswordDatabaseDontUse(alice=b"s3cret")])
    interface, avatar, logout = login(portal, UsernamePassword(b"alice", b"s3cret"))
    assert interface is IAvatar
    assert avatar == ("avatar", b"alice", "mind")
    logout()
    assert realm.logouts == [b"alice"]
    with pytest.raises(UnauthorizedLogin):
        login(portal, UsernamePassword(b"alice", b"wrong"))
    with pytest.raises(UnauthorizedLogin):
        login(portal, UsernamePassword(b"nobody", b"s3cret"))


def test_credentials_no_checker_takes_are_unhandled() -> None:
    portal = Portal(Realm(), [InMemoryUsernamePasswordDatabaseDontUse(alice=b"x")])
    with pytest.raises(UnhandledCredentials, match="IAnonymous"):
        login(portal, Anonymous())
    portal.registerChecker(AllowAnonymousAccess())
    assert login(portal, Anonymous())[1] == ("avatar", ANONYMOUS, "mind")
    assert set(portal.listCredentialsInterfaces()) == {
        IUsernamePassword,
        IUsernameHashedPassword,
        IAnonymous,
    }


def test_register_checker_for_named_interfaces() -> None:
    portal = Portal(Realm())
    portal.registerChecker(AllowAnonymousAccess(), IUsernamePassword)
    assert login(portal, UsernamePassword(b"any", b"thing"))[1][1] == ANONYMOUS


def test_an_object_without_requestAvatarId_is_refused_at_once() -> None:
    class OldStyle:  # hive's former checker shape
        def check(self, username: bytes, password: bytes) -> bool:
            return True

    with pytest.raises(TypeError, match="requestAvatarId"):
        Portal(Realm(), [OldStyle()])


def test_the_realm_refusing_the_interfaces_is_an_error() -> None:
    portal = Portal(Realm(), [AllowAnonymousAccess()])
    with pytest.raises(NotImplementedError):
        login(portal, Anonymous(), Interface)


@implementer(ICredentialsChecker)
class TwistedChecker:
    """A checker as Twisted programs write them: Deferreds, fired now or later."""

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, later: bool) -> None:
        self.later = later

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[bytes]:
        if credentials.password != b"right":
            return defer.fail(UnauthorizedLogin())
        if not self.later:
            return defer.succeed(credentials.username)
        d: defer.Deferred[bytes] = defer.Deferred()
        asyncio.get_running_loop().call_soon(d.callback, credentials.username)
        return d


@implementer(IRealm)
class DeferredRealm:
    def requestAvatar(self, avatarId: Any, mind: object, *interfaces: Any) -> Any:
        return defer.succeed((IAvatar, avatarId + b"!", lambda: None))


@implementer(IRealm)
class AsyncRealm:
    async def requestAvatar(self, avatarId: Any, mind: object, *interfaces: Any) -> Any:
        await asyncio.sleep(0)
        return IAvatar, avatarId + b"?", lambda: None


@pytest.mark.parametrize("later", [False, True])
def test_deferreds_from_checkers_and_realms(later: bool) -> None:
    portal = Portal(DeferredRealm(), [TwistedChecker(later)])
    assert login(portal, UsernamePassword(b"bob", b"right"))[1] == b"bob!"
    with pytest.raises(UnauthorizedLogin):
        login(portal, UsernamePassword(b"bob", b"wrong"))
    portal = Portal(AsyncRealm(), [TwistedChecker(later)])
    assert login(portal, UsernamePassword(b"bob", b"right"))[1] == b"bob?"


def test_in_memory_database_takes_str_and_bytes() -> None:
    db = InMemoryUsernamePasswordDatabaseDontUse(alice="wonderland", bob=b"builder")
    db.addUser("dave", "pässword")
    assert db.users[b"alice"] == b"wonderland"
    portal = Portal(Realm(), [db])
    assert login(portal, UsernamePassword(b"dave", "pässword".encode()))[1][1] == b"dave"
    assert login(portal, UsernameHashedPassword(b"bob", b"builder"))[1][1] == b"bob"
    for user, password in [(b"alice", b""), (b"alice", b"wonderlan"), (b"", b"")]:
        with pytest.raises(UnauthorizedLogin):
            login(portal, UsernamePassword(user, password))


def test_unknown_users_are_compared_too() -> None:
    seen: list[bytes] = []

    @implementer(IUsernamePassword)
    class Spy(UsernamePassword):
        def checkPassword(self, password: bytes) -> bool:
            seen.append(password)
            return True  # even a "yes" for an unknown user must not let it in

    portal = Portal(Realm(), [InMemoryUsernamePasswordDatabaseDontUse(alice=b"x")])
    with pytest.raises(UnauthorizedLogin):
        login(portal, Spy(b"nobody", b"x"))
    assert len(seen) == 1


def test_password_never_in_repr() -> None:
    assert "s3cret" not in repr(UsernamePassword(b"alice", b"s3cret"))
    assert "s3cret" not in repr(UsernameHashedPassword(b"alice", b"s3cret"))


# -- FilePasswordDB -------------------------------------------------------------------------


def test_file_password_db_with_twisteds_options(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_bytes(b"alice:wonderland\nBob:builder\nbroken line\n")
    portal = Portal(Realm(), [FilePasswordDB(str(path))])
    assert login(portal, UsernamePassword(b"alice", b"wonderland"))[1][1] == b"alice"
    with pytest.raises(UnauthorizedLogin):
        login(portal, UsernamePassword(b"bob", b"builder"))  # case-sensitive by default

    portal = Portal(Realm(), [FilePasswordDB(path, caseSensitive=False)])
    assert login(portal, UsernamePassword(b"BOB", b"builder"))[1][1] == b"bob"

    other = tmp_path / "other"
    other.write_bytes(b"x|alice|s3cret\n")
    db = FilePasswordDB(str(other), delim=b"|", usernameField=1, passwordField=2)
    assert login(Portal(Realm(), [db]), UsernamePassword(b"alice", b"s3cret"))[1][1] == b"alice"


def test_file_password_db_with_a_hash_takes_clear_passwords_only(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_bytes(b"alice:" + b"terces" + b"\n")

    def reverse(username: bytes, password: bytes, stored: bytes) -> bytes:
        return password[::-1]

    db = FilePasswordDB(str(path), hash=reverse)
    assert db.credentialInterfaces == (IUsernamePassword,)
    portal = Portal(Realm(), [db])
    assert login(portal, UsernamePassword(b"alice", b"secret"))[1][1] == b"alice"
    with pytest.raises(UnauthorizedLogin):
        login(portal, UsernamePassword(b"alice", b"terces"))
    with pytest.raises(UnhandledCredentials):
        login(portal, UsernameHashedPassword(b"alice", b"terces"))


def test_file_password_db_cache_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_bytes(b"alice:one\n")
    db = FilePasswordDB(str(path), cache=True)
    portal = Portal(Realm(), [db])
    assert login(portal, UsernamePassword(b"alice", b"one"))
    path.write_bytes(b"alice:two\n")
    os.utime(path, (os.path.getmtime(path) + 10,) * 2)
    assert login(portal, UsernamePassword(b"alice", b"two"))
    with pytest.raises(UnauthorizedLogin):
        login(portal, UsernamePassword(b"alice", b"one"))


def test_a_missing_file_refuses_every_login(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for db in (FilePasswordDB(str(tmp_path / "none")), HashedPasswordDB(tmp_path / "none")):
        with pytest.raises(UnauthorizedLogin):
            login(Portal(Realm(), [db]), UsernamePassword(b"alice", b"x"))
    assert "cannot read the password file" in caplog.text


# -- HashedPasswordDB -------------------------------------------------------------------------


@pytest.fixture
def hashed_file(tmp_path: Path) -> Path:
    path = tmp_path / "passwd"
    argon = _hashing.hash_password(b"wonderland", **FAST_ARGON2)
    bcrypt_hash = _hashing.hash_password(b"builder", "bcrypt", rounds=4)
    long = _hashing.hash_password(b"x" * 72, "bcrypt", rounds=4)
    apache = bcrypt_hash.replace("$2b$", "$2y$", 1)  # htpasswd -B writes $2y$
    path.write_text(
        "# users\n"
        f"alice:{argon}\n"
        f"bob:{bcrypt_hash}\n"
        f"carol:{apache}\n"
        f"dave:{long}\n"
        "eve:plain-text-is-not-a-hash\n"
        "\n"
    )
    return path


def test_hashed_password_db_checks_argon2_and_bcrypt(
    hashed_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    portal = Portal(Realm(), [HashedPasswordDB(hashed_file)])
    for user, password in [
        (b"alice", b"wonderland"),
        (b"bob", b"builder"),
        (b"carol", b"builder"),
        # bcrypt reads 72 bytes: what older bcrypts (and htpasswd) did, not bcrypt 5's error.
        (b"dave", b"x" * 72),
        (b"dave", b"x" * 100),
    ]:
        assert login(portal, UsernamePassword(user, password))[1][1] == user
    for user, password in [
        (b"alice", b"wonderlanD"),
        (b"bob", b""),
        (b"eve", b"plain-text-is-not-a-hash"),
        (b"nobody", b"wonderland"),
    ]:
        with pytest.raises(UnauthorizedLogin):
            login(portal, UsernamePassword(user, password))
    assert "line 6: not user:hash" in caplog.text


def test_hashed_password_db_takes_no_digest(hashed_file: Path) -> None:
    portal = Portal(Realm(), [HashedPasswordDB(hashed_file)])
    with pytest.raises(UnhandledCredentials):
        login(portal, UsernameHashedPassword(b"alice", b"wonderland"))


def test_hashes_are_verified_in_threads_and_unknown_users_too(
    hashed_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, int]] = []
    real = _hashing.verify_password

    def spy(password: bytes, hashed: bytes) -> bool:
        calls.append((hashed, threading.get_ident()))
        return real(password, hashed)

    monkeypatch.setattr(_hashing, "verify_password", spy)
    db = HashedPasswordDB(hashed_file)
    portal = Portal(Realm(), [db])
    login(portal, UsernamePassword(b"alice", b"wonderland"))
    for _ in range(2):
        with pytest.raises(UnauthorizedLogin):
            login(portal, UsernamePassword(b"nobody", b"wonderland"))
    loop_thread = threading.get_ident()
    assert all(thread != loop_thread for _, thread in calls)
    # The first unknown user makes the dummy hash (as costly), the next verifies it.
    assert len(calls) == 2
    dummy = calls[1][0]
    assert dummy.startswith(b"$argon2id$v=19$m=8,t=1,p=1$")  # like the file's first hash


def test_a_full_verifier_refuses_logins_at_once(hashed_file: Path) -> None:
    release = threading.Event()
    db = HashedPasswordDB(hashed_file, threads=1, backlog=1)

    async def main() -> list[object]:
        blockers = [
            asyncio.ensure_future(db.verifier.run(lambda: release.wait(10))) for _ in range(2)
        ]
        await asyncio.sleep(0)
        results: list[object] = []
        try:
            await db.requestAvatarId(UsernamePassword(b"alice", b"wonderland"))
        except _hashing.LoginBusy as exc:
            results.append(exc)
        release.set()
        results += await asyncio.gather(*blockers)
        results.append(await db.requestAvatarId(UsernamePassword(b"alice", b"wonderland")))
        return results

    busy, first, second, user = run(main())
    assert isinstance(busy, LoginDenied)
    assert (first, second, user) == (True, True, b"alice")


def test_hashed_password_db_reads_a_changed_file(hashed_file: Path) -> None:
    db = HashedPasswordDB(hashed_file)
    portal = Portal(Realm(), [db])
    with pytest.raises(UnauthorizedLogin):
        login(portal, UsernamePassword(b"frank", b"new"))
    _hashing.write_password_file(
        str(hashed_file), b"frank", _hashing.hash_password(b"new", **FAST_ARGON2).encode()
    )
    assert login(portal, UsernamePassword(b"frank", b"new"))[1][1] == b"frank"


def test_write_password_file_sets_replaces_and_removes(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    assert not _hashing.write_password_file(str(path), b"alice", b"h1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_bytes(b"# keep me\n" + path.read_bytes())
    assert not _hashing.write_password_file(str(path), b"bob", b"h2")
    assert _hashing.write_password_file(str(path), b"alice", b"h3")
    assert path.read_bytes() == b"# keep me\nalice:h3\nbob:h2\n"
    assert _hashing.write_password_file(str(path), b"alice", None)
    assert path.read_bytes() == b"# keep me\nbob:h2\n"
    for bad in (b"", b"a:b", b"a\nb"):
        with pytest.raises(_hashing.HashError):
            _hashing.write_password_file(str(path), bad, b"h")
    assert sorted(os.listdir(tmp_path)) == ["passwd"]  # no temporary file left behind


def test_hash_password_refuses_what_bcrypt_would_cut() -> None:
    with pytest.raises(_hashing.HashError, match="72"):
        _hashing.hash_password(b"x" * 73, "bcrypt", rounds=4)
    with pytest.raises(_hashing.HashError, match="scheme"):
        _hashing.hash_password(b"x", "md5")
    assert _hashing.identify(b"$argon2id$v=19$m=8,t=1,p=1$abc$def") == "argon2"
    assert _hashing.identify(b"$1$md5crypt") is None
    assert not _hashing.verify_password(b"x", b"$argon2id$garbage")
    assert not _hashing.verify_password(b"x", b"$2b$04$" + b"!" * 53)
