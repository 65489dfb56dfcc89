"""Sessions every worker sees: Twisted's ``Session`` API over a store shared by processes.

Twisted keeps sessions in the memory of its one process. hive serves from one process per
core, so a session lives in a `SessionStore` that every worker opens: by default a SQLite
file in the run directory (`SQLiteStore`); `RedisStore` serves several hosts. A `Session`
object lasts one request: ``request.getSession()`` loads it, or makes a new one and sets
the cookie, and the request saves it just before its response starts, so the next request
sees the change whichever worker takes it (and again when the response ends, if the data
changed after it started).

The data: a session is a mutable mapping of str keys to JSON values (str, int, float,
bool, None, lists and dicts with str keys; tuples come back as lists), checked when set.
JSON, not pickle, because unpickling what a shared store holds would run code. Twisted code
that sets attributes on the session (``session.user = ...``) would lose them with the
request, so unknown attributes raise AttributeError: write ``session["user"] = ...``.

Differences from Twisted, on purpose:
- ``getSession`` with a ``sessionInterface`` raises TypeError: components lived in the
  process's memory; keep that state in the session's data.
- Every ``getSession`` extends the session (sliding expiry); Twisted's first lookup in a
  request does not.
- The cookie is ``HIVE_SESSION`` (``Site.sessionCookieName``), HttpOnly, SameSite=Lax,
  Path=/; on a secure request it is ``__Host-HIVE_SESSION`` and Secure, which browsers keep
  from being set by other subdomains or over plain HTTP.
- An unknown or expired session id is never adopted: the client gets a new one (no
  fixation). ``session.rotate()`` gives a live session a new id; call it after a login.
- ``notifyOnExpire`` callbacks run in the process that registered them, when it sees the
  session end: at once for ``expire()`` there, else when it next looks (a sweep at most
  every `SiteSessions.purge_interval` seconds, driven by requests).
- ``expire()`` also tells the browser to drop the cookie, if the response has not started.
- Concurrent requests of one session each save what they saw: the last one wins. A session
  ended by one request is not brought back by another that held it.
- A save that fails as the response starts is logged with its traceback; the response goes
  on and the store keeps the session as it was.

The store calls block the event loop. For SQLite that is fine: a lookup and a write take
15-30 microseconds (median; under 0.5 ms at the 99th percentile with two processes
writing), in WAL mode with synchronous=NORMAL and one statement per transaction.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import quote_from_bytes

if TYPE_CHECKING:
    import sqlite3

    from hive.server import Request, Site

__all__ = [
    "DEFAULT_COOKIE_NAME",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "Session",
    "SessionRecord",
    "SessionStore",
    "SessionStoreError",
    "SiteSessions",
    "default_session_dir",
    "session_file",
]

log = logging.getLogger("hive.session")

DEFAULT_COOKIE_NAME: Final = "HIVE_SESSION"
#: The prefix of the secure session cookie: browsers take such a cookie only with Secure,
#: Path=/ and no Domain, so neither plain HTTP nor a subdomain can plant one.
SECURE_PREFIX: Final = b"__Host-"
FILE_NAME: Final = "sessions.sqlite3"

# What a session id may look like before the store is asked about it: hive's ids are 43
# characters of token_urlsafe(32); junk and huge values are turned away without a lookup.
_UID = re.compile(rb"[A-Za-z0-9_\-]{22,128}")
_COOKIE_SAFE = "!#$&'*+-.^_`|~"  # token characters quote_from_bytes would escape


class SessionStoreError(Exception):
    """The session store cannot be opened; the message is one line."""


# -- stores -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What a store holds for one session: its data as JSON text and when it expires."""

    data: str
    #: Seconds since the epoch (time.time()).
    expires_at: float


class SessionStore(Protocol):
    """Where sessions live; every worker (and host) that serves the site opens the same one.

    ``uid`` is the session id as text. Writes with ``create=False`` and ``touch`` change only
    a session that still exists, so one ended elsewhere (a logout) is not brought back.
    """

    def get(self, uid: str) -> SessionRecord | None:
        """The record of ``uid``, expired or not, or None."""

    def save(self, uid: str, data: str, expires_at: float, create: bool = False) -> bool:
        """Store a new session (``create``) or replace an existing one's data; whether it did."""

    def touch(self, uid: str, expires_at: float) -> bool:
        """Move an existing session's expiry; whether it exists."""

    def delete(self, uid: str) -> None:
        """Remove a session, if it is there."""

    def purge_expired(self, now: float) -> int:
        """Remove every session expired at ``now``; how many (as far as the store knows)."""


class MemoryStore:
    """Sessions in this process's memory: for one process only (tests, an embedded Server).

    A Site without a ``sessionStore`` gets one when it first needs it; ``hive run`` gives
    every Site a `SQLiteStore` instead.
    """

    def __init__(self) -> None:
        self.records: dict[str, SessionRecord] = {}

    def get(self, uid: str) -> SessionRecord | None:
        return self.records.get(uid)

    def save(self, uid: str, data: str, expires_at: float, create: bool = False) -> bool:
        if (uid in self.records) == create:
            return False
        self.records[uid] = SessionRecord(data, expires_at)
        return True

    def touch(self, uid: str, expires_at: float) -> bool:
        record = self.records.get(uid)
        if record is None:
            return False
        self.records[uid] = SessionRecord(record.data, expires_at)
        return True

    def delete(self, uid: str) -> None:
        self.records.pop(uid, None)

    def purge_expired(self, now: float) -> int:
        expired = [uid for uid, record in self.records.items() if record.expires_at <= now]
        for uid in expired:
            del self.records[uid]
        return len(expired)


def default_session_dir() -> str:
    """``$XDG_RUNTIME_DIR/hive``, or ``/tmp/hive-<uid>`` (the control socket's) without one."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "hive")
    return f"/tmp/hive-{os.geteuid()}"


def session_file(directory: str | None) -> str:
    """The SQLite file of sessions in ``directory`` (None: `default_session_dir`)."""
    return os.path.join(directory or default_session_dir(), FILE_NAME)


_INHERITED: list[Any] = []  # connections a fork brought along, kept from being closed

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hive_sessions (
    uid TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hive_sessions_expiry ON hive_sessions (expires_at);
"""


class SQLiteStore:
    """Sessions in a SQLite file that every worker opens: the default store of ``hive run``.

    The file is opened on first use, in the process that uses it (a connection must not
    cross a fork), made mode 0o600 in a directory made mode 0o700; the default directory
    must be ours and closed to others. WAL mode lets readers go on while one process
    writes; each statement is its own short transaction, and one that finds the file
    locked waits up to ``busy_timeout`` seconds. synchronous=NORMAL: a power cut may lose
    the last writes, never the file.
    """

    busy_timeout: float = 5.0

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._pid = 0

    def _connection(self) -> sqlite3.Connection:
        db = self._db
        if db is None or self._pid != os.getpid():
            if db is not None:
                # Opened before a fork: never used nor closed here (closing it could
                # checkpoint and remove the WAL under the process that opened it).
                _INHERITED.append(db)
            db = self._db = self._open()
            self._pid = os.getpid()
        return db

    def _open(self) -> sqlite3.Connection:
        import sqlite3  # here, so that processes without sessions never load it

        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            _make_private_dir(directory, check=directory == default_session_dir())
            # O_NOFOLLOW: a symlink planted at the path must not lead the sessions elsewhere.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
            db = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise SessionStoreError(f"cannot open the session store {self.path}: {exc}") from exc
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            # Every worker may open the file at once; the busy timeout covers most of the
            # races, and a changed journal mode can still say "locked" at once: try again.
            for attempt in range(100):
                try:
                    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                        if mode != "wal":
                            log.warning("session store %s: WAL mode unavailable", self.path)
                    db.executescript(_SCHEMA)
                    break
                except sqlite3.OperationalError as exc:
                    if attempt == 99 or "locked" not in str(exc):
                        raise
                    time.sleep(0.01)
        except sqlite3.Error as exc:
            db.close()
            raise SessionStoreError(f"cannot open the session store {self.path}: {exc}") from exc
        return db

    def get(self, uid: str) -> SessionRecord | None:
        row = (
            self._connection()
            .execute("SELECT data, expires_at FROM hive_sessions WHERE uid = ?", (uid,))
            .fetchone()
        )
        return SessionRecord(row[0], row[1]) if row is not None else None

    def save(self, uid: str, data: str, expires_at: float, create: bool = False) -> bool:
        if create:
            sql = "INSERT OR IGNORE INTO hive_sessions (data, expires_at, uid) VALUES (?, ?, ?)"
        else:
            sql = "UPDATE hive_sessions SET data = ?, expires_at = ? WHERE uid = ?"
        return self._connection().execute(sql, (data, expires_at, uid)).rowcount == 1

    def touch(self, uid: str, expires_at: float) -> bool:
        cursor = self._connection().execute(
            "UPDATE hive_sessions SET expires_at = ? WHERE uid = ?", (expires_at, uid)
        )
        return cursor.rowcount == 1

    def delete(self, uid: str) -> None:
        self._connection().execute("DELETE FROM hive_sessions WHERE uid = ?", (uid,))

    def purge_expired(self, now: float) -> int:
        cursor = self._connection().execute(
            "DELETE FROM hive_sessions WHERE expires_at <= ?", (now,)
        )
        return cursor.rowcount

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            if self._pid == os.getpid():
                db.close()
            else:
                _INHERITED.append(db)


def _make_private_dir(directory: str, *, check: bool) -> None:
    """Make ``directory`` (mode 0o700) if missing; with ``check``, refuse one that is not
    ours or that others may write (someone else may have made it first in /tmp)."""
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode went through the umask
    if not check:
        return
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise OSError(f"refusing {directory}: not a directory of ours closed to others")


class RedisStore:
    """Sessions in Redis, for sites served from several hosts; Redis expires them itself.

    ``client`` is a ``redis.Redis`` (redis-py 4 or later, Redis 6.2 or later); redis is not
    a dependency of hive: `from_url` imports it. The calls block the event loop, so keep
    Redis close (one round trip per lookup and one per save).
    """

    def __init__(self, client: Any, prefix: str = "hive:session:") -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str = "hive:session:") -> RedisStore:
        redis = importlib.import_module("redis")
        return cls(redis.Redis.from_url(url), prefix)

    def get(self, uid: str) -> SessionRecord | None:
        pipe = self.client.pipeline()
        pipe.get(self.prefix + uid)
        pipe.pttl(self.prefix + uid)
        data, ttl = pipe.execute()
        if data is None or ttl < 0:  # -2: gone; -1: no expiry, which hive never sets
            return None
        text = data.decode("utf-8") if isinstance(data, bytes) else str(data)
        return SessionRecord(text, time.time() + ttl / 1000)

    def save(self, uid: str, data: str, expires_at: float, create: bool = False) -> bool:
        done = self.client.set(
            self.prefix + uid, data, pxat=_millis(expires_at), nx=create, xx=not create
        )
        return bool(done)

    def touch(self, uid: str, expires_at: float) -> bool:
        return bool(self.client.pexpireat(self.prefix + uid, _millis(expires_at)))

    def delete(self, uid: str) -> None:
        self.client.delete(self.prefix + uid)

    def purge_expired(self, now: float) -> int:
        return 0  # Redis removes expired keys itself


def _millis(when: float) -> int:
    return max(1, math.ceil(when * 1000))


# -- sessions ---------------------------------------------------------------------------------


class Session(MutableMapping[str, Any]):
    """A user's session: a mapping of JSON data that every worker sees, with Twisted's names.

    Made by ``request.getSession()`` (or ``site.makeSession()``, ``site.getSession(uid)``);
    a subclass set as ``Site.sessionFactory`` changes ``sessionTimeout``. Class attributes
    are the only attributes that may be set; data goes in ``session[key]``.
    """

    #: Seconds after the last use (``touch``) that the session expires.
    sessionTimeout: float = 900
    #: The session id (the cookie's value).
    uid: bytes = b""
    site: Any = None
    #: When the session was last used (``touch``), in seconds since the epoch.
    lastModified: float = 0.0

    def __init__(self, site: Site, uid: bytes) -> None:
        self._sessions = site_sessions(site)
        self.site = site
        self.uid = uid
        self._data: dict[str, Any] = {}
        self._stored: str | None = None  # the data as the store has it; None: not stored
        self._touched = False
        self._expired = False
        self._request: Request | None = None
        self._cookie = b""
        self._secure = False
        self.touch()

    def __setattr__(self, name: str, value: Any) -> None:
        # A Twisted-style attribute would vanish with this request's object: say so now.
        if name[:1] != "_" and not hasattr(type(self), name):
            raise AttributeError(
                f"{type(self).__name__} keeps no attribute {name!r}: it would be lost after"
                f" this request; store data as session[{name!r}] = ..."
            )
        object.__setattr__(self, name, value)

    # -- the data -----------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys are str, not {type(key).__name__}")
        _check_json(value, key)
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        return True  # an empty session is still a session (``if not session`` means None)

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} keys={sorted(self._data)!r}>"  # no uid: a credential

    # -- Twisted's API --------------------------------------------------------------------------

    def touch(self) -> None:
        """Note a use now: the session lasts ``sessionTimeout`` from now (stored on save)."""
        self.lastModified = self._sessions.clock()
        self._touched = True

    def startCheckingExpiration(self) -> None:
        """Twisted's timer start; here the store's expiry time does the job."""

    def notifyOnExpire(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` when the session ends (``expire()`` or a timeout), as this
        process sees it: see the module docstring. A rotated session keeps its callbacks."""
        if self._expired:
            callback()
        else:
            self._sessions.notify(self.uid, callback)

    def expire(self) -> None:
        """End the session now (log out): remove it from the store, run the callbacks and,
        if the response has not started, tell the browser to drop the cookie."""
        if self._expired:
            return
        self._expired = True
        self._sessions.store.delete(self.uid.decode("ascii"))
        request = self._request
        if request is not None and not request.startedWriting:
            request.addCookie(self._cookie, b"", max_age=0, **_cookie_attributes(self._secure))
        self._sessions.ended(self.uid)

    # -- hive's additions -------------------------------------------------------------------

    def save(self) -> None:
        """Write the session to the store now if its data changed or it was touched.

        The request does this for the sessions ``getSession`` gave it; a session got from
        ``site.makeSession()`` or ``site.getSession(uid)`` is saved by calling this.
        """
        if self._expired:
            return
        text = _dumps(self._data)
        expires_at = self.lastModified + self.sessionTimeout
        store = self._sessions.store
        uid = self.uid.decode("ascii")
        if self._stored is None:
            store.save(uid, text, expires_at, create=True)
        elif text != self._stored:
            if not store.save(uid, text, expires_at):
                self._ended_elsewhere()
                return
        elif self._touched:
            if not store.touch(uid, expires_at):
                self._ended_elsewhere()
                return
        else:
            return
        self._stored = text
        self._touched = False

    def rotate(self) -> None:
        """Give the session a new id, keeping its data, and send the new cookie.

        Call it when the user logs in: an id someone planted in the browser beforehand is
        then worth nothing. Raises RuntimeError once the response has started.
        """
        request = self._request
        if self._expired:
            raise RuntimeError("an expired session cannot be rotated")
        if request is not None and request.startedWriting:
            raise RuntimeError("the response has started: the new cookie cannot be sent")
        old = self.uid
        if self._stored is not None:
            self._sessions.store.delete(old.decode("ascii"))
        self.uid = self._sessions.new_uid()
        self._stored = None
        self._sessions.moved(old, self.uid)
        if request is not None:
            request.addCookie(self._cookie, self.uid, **_cookie_attributes(self._secure))

    @property
    def expired(self) -> bool:
        """Whether the session has ended (``expire()``, or ended by another process)."""
        return self._expired

    # -- internals ---------------------------------------------------------------------------

    def _loaded(self, data: dict[str, Any], text: str, expires_at: float) -> None:
        self._data = data
        self._stored = text
        self.lastModified = expires_at - self.sessionTimeout
        self._touched = False

    def _ended_elsewhere(self) -> None:
        # Another process ended the session while this request held it: it stays ended.
        self._expired = True
        self._sessions.ended(self.uid)


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def _check_json(value: Any, where: str) -> None:
    """Refuse what JSON would not bring back as it was (tuples excepted: they become lists)."""
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"session value {where!r}: {value} is not a JSON number")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"session value {where!r}: key {key!r} is not a str")
            _check_json(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"session value {where!r} is a {type(value).__name__}; sessions hold JSON values:"
        " str, int, float, bool, None, and lists and dicts of them"
    )


def _cookie_attributes(secure: bool) -> dict[str, Any]:
    return {"path": b"/", "secure": secure, "httpOnly": True, "sameSite": b"lax"}


def cookie_name(base: bytes, secure: bool, sitepath: list[bytes]) -> bytes:
    """The session cookie's name: Twisted joins the site's path to it, and so does hive."""
    parts = [base, *(quote_from_bytes(part, safe=_COOKIE_SAFE).encode() for part in sitepath)]
    name = b"_".join(parts)
    return SECURE_PREFIX + name if secure else name


class SiteSessions:
    """A Site's sessions in this process: lookups, new ids, sweeps and expiry callbacks.

    ``clock`` gives the time (seconds since the epoch: the store is shared by processes, so
    it is wall-clock time); tests replace it.
    """

    #: Seconds between sweeps of the store (each started by a session lookup).
    purge_interval: float = 60.0

    def __init__(self, site: Site) -> None:
        self.site = site
        self.clock: Callable[[], float] = time.time
        self._callbacks: dict[bytes, list[Callable[[], object]]] = {}
        self._next_sweep = 0.0

    @property
    def store(self) -> SessionStore:
        store = self.site.sessionStore
        if store is None:
            store = self.site.sessionStore = MemoryStore()
        return store

    def new_uid(self) -> bytes:
        return secrets.token_urlsafe(32).encode("ascii")

    def make(self) -> Session:
        """A new session, not stored until it is saved."""
        self._maybe_sweep()
        session: Session = self.site.sessionFactory(self.site, self.new_uid())
        return session

    def get(self, uid: bytes) -> Session:
        """The live session ``uid``; KeyError if it is unknown or expired."""
        now = self._maybe_sweep()
        if not isinstance(uid, bytes) or _UID.fullmatch(uid) is None:
            raise KeyError(uid)
        key = uid.decode("ascii")
        store = self.store
        record = store.get(key)
        if record is None or record.expires_at <= now:
            if record is not None:
                store.delete(key)  # the lazy half of purging
            self.ended(uid)
            raise KeyError(uid)
        try:
            data = json.loads(record.data)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            log.warning("dropped a session whose stored data is not a JSON object")
            store.delete(key)
            raise KeyError(uid)
        session: Session = self.site.sessionFactory(self.site, uid)
        session._loaded(data, record.data, record.expires_at)
        return session

    def sweep(self, now: float | None = None) -> int:
        """Purge expired sessions; run the callbacks of those ended elsewhere (one lookup
        per session with callbacks here). How many the purge removed."""
        now = self.clock() if now is None else now
        store = self.store
        purged = store.purge_expired(now)
        for uid in list(self._callbacks):
            record = store.get(uid.decode("ascii"))
            if record is None or record.expires_at <= now:
                self.ended(uid)
        return purged

    def _maybe_sweep(self) -> float:
        now = self.clock()
        if now >= self._next_sweep:
            self._next_sweep = now + self.purge_interval
            try:
                self.sweep(now)
            except Exception:
                # A failed sweep is retried at the next interval; the request goes on.
                log.exception("cannot purge expired sessions")
        return now

    def notify(self, uid: bytes, callback: Callable[[], object]) -> None:
        self._callbacks.setdefault(uid, []).append(callback)

    def moved(self, old: bytes, new: bytes) -> None:
        callbacks = self._callbacks.pop(old, None)
        if callbacks:
            self._callbacks[new] = callbacks

    def ended(self, uid: bytes) -> None:
        """Run (once) the callbacks this process registered for ``uid``."""
        for callback in self._callbacks.pop(uid, ()):
            try:
                callback()
            except Exception:
                log.exception("error in a session expiry callback")


def site_sessions(site: Site) -> SiteSessions:
    """``site``'s `SiteSessions`, made on first use."""
    sessions = site._sessions
    if sessions is None:
        sessions = site._sessions = SiteSessions(site)
    return sessions


# -- the request's side --------------------------------------------------------------------


def request_session(
    request: Request, sessionInterface: object = None, forceNotSecure: bool = False
) -> Session:
    """``Request.getSession``: the request's session, found by its cookie or made (and the
    cookie set). A cookie naming no live session gets a new id: ids come only from hive."""
    if sessionInterface is not None:
        raise TypeError(
            "hive sessions have no components (getSession(sessionInterface)): they lived in"
            " one process's memory; keep the state in the session's data, session[key] = value"
        )
    secure = request.isSecure() and not forceNotSecure
    session = request._secureSession if secure else request._insecureSession
    if session is not None and not session._expired:
        session.touch()
        return session
    site = request.site
    name = cookie_name(site.sessionCookieName, secure, request.sitepath)
    session = None
    value = request.getCookie(name)
    if value:
        with contextlib.suppress(KeyError):  # unknown or expired: a new id below
            session = site.getSession(value)
    if session is None:
        session = site.makeSession()
        request.addCookie(name, session.uid, **_cookie_attributes(secure))
    session._request = request
    session._cookie = name
    session._secure = secure
    session.touch()
    if secure:
        request._secureSession = session
    else:
        request._insecureSession = session
    return session


def save_request_sessions(request: Request) -> None:
    """Save the sessions ``getSession`` gave ``request`` (as its response starts or ends)."""
    for session in (request._insecureSession, request._secureSession):
        if session is not None:
            try:
                session.save()
            except Exception:
                # The response goes on; the store keeps the session as it was.
                log.exception("cannot save a session")
