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

Components (Twisted's ``registerAdapter(Counter, Session, ICounter)`` and
``ICounter(session)``, or ``request.getSession(ICounter)``): a Session is
`hive.components.Componentized`. A component whose attributes are all JSON values (or the
session itself) is plain data: it is saved in the session's JSON with the rest, and every
worker gets it back, rebuilt without calling its ``__init__`` again (as unpickling does),
its class found through the adapter registered for its interface, never named by the
store. Any other component stays in the memory of the worker that made it, for as long
as the session lives (a warning says so, once per class): another worker makes its own.

Differences from Twisted, on purpose:
- Every ``getSession`` extends the session (sliding expiry); Twisted's first lookup in a
  request does not.
- The cookie is ``HIVE_SESSION`` (``Site.sessionCookieName``), HttpOnly, SameSite=Lax,
  Path=/; on a secure request it is ``__Host-HIVE_SESSION`` and Secure, which browsers keep
  from being set by other subdomains or over plain HTTP.
- An unknown or expired session id is never adopted: the client gets a new one (no
  fixation). ``session.rotate()`` gives a live session a new id; call it after a login.
- ``notifyOnExpire`` callbacks run in the process that registered them, when the session
  ends: at once for ``expire()`` there, else at the session's expiry time (a timer on the
  worker's loop, which looks at the store first: a session another worker used since is
  not expired, the timer waits for its new expiry; one another worker ended is seen then,
  or at the next sweep, every `SiteSessions.purge_interval` seconds).
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

import asyncio
import contextlib
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Final, Protocol
from urllib.parse import quote_from_bytes

from zope.interface import implementer

from hive.components import Componentized, getAdapterFactory, qual
from hive.iweb import ISession
from hive.session.stores import (
    MemoryStore,
    RedisStore,
    SessionRecord,
    SessionStore,
    SessionStoreError,
    SQLiteStore,
    default_session_dir,
    session_file,
)

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


class SessionSite(Protocol):
    """What sessions need of a Site (hive.server.Site)."""

    sessionFactory: Callable[..., Session]
    sessionCookieName: bytes
    sessionStore: SessionStore | None
    _sessions: SiteSessions | None

    def makeSession(self) -> Session: ...

    def getSession(self, uid: bytes) -> Session: ...


class SessionRequest(Protocol):
    """What sessions need of a request (hive.server.Request): its cookies, and the two
    sessions ``getSession`` may give it (Twisted's attribute names)."""

    sitepath: list[bytes]
    startedWriting: bool
    _secureSession: Session | None
    _insecureSession: Session | None

    @property
    def site(self) -> SessionSite: ...

    def isSecure(self) -> bool: ...

    def getCookie(self, key: bytes) -> bytes | None: ...

    def addCookie(self, k: bytes | str, v: bytes | str, **kwargs: Any) -> None: ...


DEFAULT_COOKIE_NAME: Final = "HIVE_SESSION"
#: The prefix of the secure session cookie: browsers take such a cookie only with Secure,
#: Path=/ and no Domain, so neither plain HTTP nor a subdomain can plant one.
SECURE_PREFIX: Final = b"__Host-"

# What a session id may look like before the store is asked about it: hive's ids are 43
# characters of token_urlsafe(32); junk and huge values are turned away without a lookup.
_UID = re.compile(rb"[A-Za-z0-9_\-]{22,128}")
_COOKIE_SAFE = "!#$&'*+-.^_`|~"  # token characters quote_from_bytes would escape


# -- sessions ---------------------------------------------------------------------------------


#: Where a session's stored JSON keeps its plain-data components (no data key may be it).
COMPONENTS_KEY: Final = "__hive_components__"


@implementer(ISession)
class Session(Componentized, MutableMapping[str, Any]):
    """A user's session: a mapping of JSON data that every worker sees, with Twisted's names.

    Made by ``request.getSession()`` (or ``site.makeSession()``, ``site.getSession(uid)``);
    a subclass set as ``Site.sessionFactory`` changes ``sessionTimeout``. Class attributes
    are the only attributes that may be set; data goes in ``session[key]``, or in
    components (see the module docstring).
    """

    #: Seconds after the last use (``touch``) that the session expires.
    sessionTimeout: float = 900
    #: The session id (the cookie's value).
    uid: bytes = b""
    site: Any = None
    #: When the session was last used (``touch``), in seconds since the epoch.
    lastModified: float = 0.0

    def __init__(self, site: SessionSite, uid: bytes) -> None:
        Componentized.__init__(self)
        #: Components in the stored JSON not asked for yet in this request: key -> state.
        self._stored_components: dict[str, Any] = {}
        self._sessions = site_sessions(site)
        self.site = site
        self.uid = uid
        self._data: dict[str, Any] = {}
        self._stored: str | None = None  # the data as the store has it; None: not stored
        self._touched = False
        self._expired = False
        self._request: SessionRequest | None = None
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
        if key == COMPONENTS_KEY:
            raise KeyError(f"{key!r} is where hive keeps the session's components")
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
            self._sessions.notify(self.uid, callback, self.lastModified + self.sessionTimeout)

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

    # -- components -----------------------------------------------------------------------

    def getComponent(self, interface: Any, default: Any = None) -> Any:
        """The component for ``interface``: this request's, the stored one (rebuilt), this
        worker's, or a new one from the registered adapter (Twisted's getComponent)."""
        key = qual(interface)
        cache = self._adapterCache
        if key in cache:
            return cache[key]
        state = self._stored_components.get(key)
        if state is not None:
            component = self._revive(interface, state)
            if component is not None:
                del self._stored_components[key]
                cache[key] = component
                return component
        kept = self._sessions.kept(self.uid, key)
        if kept is not None:
            for name, value in vars(kept).items():
                if isinstance(value, Session) and value.uid == self.uid:
                    setattr(kept, name, self)  # the session of this request, not an old one
            cache[key] = kept
            return kept
        return Componentized.getComponent(self, interface, default)

    def unsetComponent(self, interfaceClass: Any) -> None:
        key = qual(interfaceClass)
        found = self._adapterCache.pop(key, None) is not None
        found = self._stored_components.pop(key, None) is not None or found
        found = self._sessions.forget(self.uid, key) or found
        if not found:
            raise KeyError(key)

    def removeComponent(self, component: Any) -> list[Any]:
        removed = Componentized.removeComponent(self, component)
        for key in removed:
            self._sessions.forget(self.uid, key)
        return removed

    def _revive(self, interface: Any, state: dict[str, Any]) -> Any:
        """A stored component, its state set back; None if no adapter makes it now."""
        factory = getAdapterFactory(type(self), interface, None)
        component: Any
        if isinstance(factory, type):
            maker: Any = factory
            component = maker.__new__(maker)  # no __init__: its state is restored
        else:
            component = interface.__adapt__(self)  # a function, or another registry's
            if component is None:
                return None
        attributes = dict(state.get("attributes", {}))
        for name in state.get("session", ()):
            attributes[name] = self
        try:
            vars(component).update(attributes)
        except TypeError:
            return None
        return component

    def _component_states(self) -> dict[str, Any]:
        """The plain-data components to store (by key); the others are kept by this
        worker."""
        states = dict(self._stored_components)
        for key, component in self._adapterCache.items():
            state = _plain_state(component, self)
            if state is None:
                self._sessions.keep(self.uid, key, component)
                states.pop(key, None)
            else:
                self._sessions.forget(self.uid, key)
                states[key] = state
        return dict(sorted(states.items()))

    # -- hive's additions -------------------------------------------------------------------

    def save(self) -> None:
        """Write the session to the store now if its data changed or it was touched.

        The request does this for the sessions ``getSession`` gave it; a session got from
        ``site.makeSession()`` or ``site.getSession(uid)`` is saved by calling this.
        """
        if self._expired:
            return
        components = self._component_states()
        text = _dumps({**self._data, COMPONENTS_KEY: components} if components else self._data)
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
        components = data.pop(COMPONENTS_KEY, None)
        self._stored_components = components if isinstance(components, dict) else {}
        self._data = data
        self._stored = text
        self.lastModified = expires_at - self.sessionTimeout
        self._touched = False

    def _ended_elsewhere(self) -> None:
        # Another process ended the session while this request held it: it stays ended.
        self._expired = True
        self._sessions.ended(self.uid)


_warned: set[type] = set()


def _plain_state(component: Any, session: Session) -> dict[str, Any] | None:
    """``{"attributes": ..., "session": [names]}`` of a component whose attributes are
    JSON values (or the session), else None (it stays in this worker's memory)."""
    try:
        attributes = vars(component)
    except TypeError:
        attributes = None  # __slots__
    state: dict[str, Any] = {}
    refs: list[str] = []
    problem = "it has no __dict__"
    for name, value in (attributes or {}).items():
        if isinstance(value, Session) and value.uid == session.uid:
            refs.append(name)
            continue
        try:
            _check_json(value, name)
        except (TypeError, ValueError) as exc:
            problem = str(exc)
            attributes = None
            break
        state[name] = value
    if attributes is None:
        kind = type(component)
        if kind not in _warned:
            _warned.add(kind)
            log.warning(
                "session component %s.%s is kept in this worker's memory only (%s);"
                " other workers make their own",
                kind.__module__,
                kind.__qualname__,
                problem,
            )
        return None
    return {"attributes": state, "session": refs} if refs else {"attributes": state}


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
    """A Site's sessions in this process: lookups, new ids, sweeps, expiry callbacks and
    timers, and the components kept in this worker's memory.

    ``clock`` gives the time (seconds since the epoch: the store is shared by processes, so
    it is wall-clock time); ``call_later(delay, callback)`` schedules a timer (default: the
    running loop's; none outside a loop, where sweeps alone notice expiry). Tests replace
    both.
    """

    #: Seconds between sweeps of the store (each started by a session lookup).
    purge_interval: float = 60.0
    #: Seconds before a timer whose store lookup failed tries again.
    retry_interval: float = 5.0

    def __init__(self, site: SessionSite) -> None:
        self.site = site
        self.clock: Callable[[], float] = time.time
        self.call_later: Callable[[float, Callable[[], None]], Any] | None = None
        self._callbacks: dict[bytes, list[Callable[[], object]]] = {}
        self._kept: dict[bytes, dict[str, Any]] = {}
        self._timers: dict[bytes, Any] = {}
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
        """Purge expired sessions; end those this process watches that are gone (one
        lookup per session with callbacks or components here). How many the purge
        removed."""
        now = self.clock() if now is None else now
        store = self.store
        purged = store.purge_expired(now)
        for uid in list(self._callbacks.keys() | self._kept.keys()):
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

    # -- what this process watches ----------------------------------------------------------

    def notify(self, uid: bytes, callback: Callable[[], object], expires_at: float) -> None:
        """Run ``callback`` when session ``uid`` ends; it ends at ``expires_at`` unless
        used again."""
        self._callbacks.setdefault(uid, []).append(callback)
        self._watch(uid, expires_at)

    def keep(self, uid: bytes, key: str, component: Any) -> None:
        """Keep a component that cannot be stored, in this worker, while the session lives."""
        self._kept.setdefault(uid, {})[key] = component
        if uid not in self._timers:
            record = self.store.get(uid.decode("ascii"))
            self._watch(uid, record.expires_at if record is not None else self.clock())

    def kept(self, uid: bytes, key: str) -> Any:
        """The component `keep` kept, or None."""
        return self._kept.get(uid, {}).get(key)

    def forget(self, uid: bytes, key: str) -> bool:
        """Drop a kept component; whether there was one."""
        components = self._kept.get(uid)
        if not components or components.pop(key, None) is None:
            return False
        if not components:
            del self._kept[uid]
        return True

    def moved(self, old: bytes, new: bytes) -> None:
        callbacks = self._callbacks.pop(old, None)
        if callbacks:
            self._callbacks[new] = callbacks
        components = self._kept.pop(old, None)
        if components:
            self._kept[new] = components
        timer = self._timers.pop(old, None)
        if timer is not None:
            timer.cancel()
            self._watch(new, self.clock())  # the timer finds the new id's record

    def ended(self, uid: bytes) -> None:
        """Run (once) the callbacks this process registered for ``uid``; drop what it kept."""
        timer = self._timers.pop(uid, None)
        if timer is not None:
            timer.cancel()
        self._kept.pop(uid, None)
        for callback in self._callbacks.pop(uid, ()):
            try:
                callback()
            except Exception:
                log.exception("error in a session expiry callback")

    # -- timers -------------------------------------------------------------------------------

    def _watch(self, uid: bytes, expires_at: float) -> None:
        if uid in self._timers:
            return  # the timer looks at the store when it fires: a later expiry is seen
        self._schedule(uid, expires_at - self.clock())

    def _schedule(self, uid: bytes, delay: float) -> None:
        call_later = self.call_later
        if call_later is None:
            try:
                call_later = asyncio.get_running_loop().call_later
            except RuntimeError:
                return  # no loop: the sweeps notice
        self._timers[uid] = call_later(max(0.0, delay), lambda: self._due(uid))

    def _due(self, uid: bytes) -> None:
        """A watched session's expiry time came: end it, or wait for its new expiry."""
        self._timers.pop(uid, None)
        if uid not in self._callbacks and uid not in self._kept:
            return
        now = self.clock()
        key = uid.decode("ascii")
        try:
            record = self.store.get(key)
            if record is not None and record.expires_at > now:
                # Used since, here or by another worker: not over yet.
                self._schedule(uid, record.expires_at - now)
                return
            if record is not None:
                self.store.delete(key)
        except Exception:
            log.exception("cannot look up an expiring session; trying again")
            self._schedule(uid, self.retry_interval)
            return
        self.ended(uid)


def site_sessions(site: SessionSite) -> SiteSessions:
    """``site``'s `SiteSessions`, made on first use."""
    sessions = site._sessions
    if sessions is None:
        sessions = site._sessions = SiteSessions(site)
    return sessions


# -- the request's side --------------------------------------------------------------------


def request_session(request: SessionRequest, forceNotSecure: bool = False) -> Session:
    """``Request.getSession``: the request's session, found by its cookie or made (and the
    cookie set). A cookie naming no live session gets a new id: ids come only from hive."""
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


def save_request_sessions(request: SessionRequest) -> None:
    """Save the sessions ``getSession`` gave ``request`` (as its response starts or ends)."""
    for session in (request._insecureSession, request._secureSession):
        if session is not None:
            try:
                session.save()
            except Exception:
                # The response goes on; the store keeps the session as it was.
                log.exception("cannot save a session")
