"""Where sessions live: the `SessionStore` protocol and its three stores.

`SQLiteStore` is the default of ``hive run`` (a file every worker of a host opens),
`RedisStore` serves several hosts, `MemoryStore` one process (tests, embedding).  A store
holds each session's data as JSON text and its expiry time, and nothing of requests.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "FILE_NAME",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "SessionRecord",
    "SessionStore",
    "SessionStoreError",
    "default_session_dir",
    "session_file",
]

log = logging.getLogger("hive.session")

FILE_NAME: Final = "sessions.sqlite3"


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
