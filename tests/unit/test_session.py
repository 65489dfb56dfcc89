"""Sessions: the stores, and Request.getSession through a real Connection in memory.

Two Sites sharing one SQLite file stand for two worker processes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from zope.interface import Attribute, Interface, implementer
from zope.interface.declarations import implementedBy

from hive import components
from hive._config import Config, ConfigError
from hive._forwarded import TrustedProxies
from hive.resource import Resource
from hive.server import NOT_DONE_YET, Request, Site
from hive.session import (
    MemoryStore,
    Session,
    SessionRecord,
    SessionStore,
    SessionStoreError,
    SQLiteStore,
    default_session_dir,
    session_file,
    site_sessions,
)
from hive.worker.main import load_site
from tests.stores import check_store_purge, check_store_semantics
from tests.unit.harness import Harness, Response

UID = re.compile(r"[A-Za-z0-9_\-]{43}")


# -- stores -------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    """The stores of one host; RedisStore is checked against a real Redis in
    tests/integration/test_redis.py, with the same checks (tests/stores.py)."""
    if request.param == "sqlite":
        sqlite = SQLiteStore(str(tmp_path / "sessions" / "sessions.sqlite3"))
        yield sqlite
        sqlite.close()
    else:
        yield MemoryStore()


def test_store_semantics(store: SessionStore) -> None:
    check_store_semantics(store)


def test_store_purge(store: SessionStore) -> None:
    check_store_purge(store)


def test_sqlite_store_file_is_private_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "run" / "sessions.sqlite3"
    one, two = SQLiteStore(str(path)), SQLiteStore(str(path))  # two workers
    assert not path.exists()  # opened on first use only
    one.save("a", '{"n":1}', time.time() + 60, create=True)
    record = two.get("a")
    assert record == SessionRecord('{"n":1}', record.expires_at if record else 0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert one._connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    one.close()
    two.close()


def test_default_session_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_session_dir() == str(tmp_path / "hive")
    assert session_file(None) == str(tmp_path / "hive" / "sessions.sqlite3")
    assert session_file("/srv/x") == "/srv/x/sessions.sqlite3"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_session_dir() == f"/tmp/hive-{os.geteuid()}"


def test_default_dir_open_to_others_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "hive").mkdir()
    (tmp_path / "hive").chmod(0o777)
    store = SQLiteStore(session_file(None))
    with pytest.raises(SessionStoreError, match="refusing"):
        store.get("a")


def test_symlink_at_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_text("")
    (tmp_path / "sessions.sqlite3").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SessionStoreError):
        SQLiteStore(str(tmp_path / "sessions.sqlite3")).get("a")


# -- requests -------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Counter(Resource):
    """Counts visits in the session; answers JSON with the count and the session id."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        session = request.getSession()
        session["visits"] = session.get("visits", 0) + 1
        return json.dumps({"visits": session["visits"], "uid": session.uid.decode()}).encode()


class Worker:
    """One Site on a shared store, as a worker process would have it."""

    def __init__(
        self,
        resource: Resource,
        store: SessionStore,
        clock: Clock,
        factory: type[Session] = Session,
    ) -> None:
        self.site = Site(resource)
        self.site.sessionStore = store
        self.site.sessionFactory = factory
        self.site.trusted_proxies = TrustedProxies(["192.0.2.7"])  # the harness's peer
        site_sessions(self.site).clock = clock

    def get(self, path: str = "/", cookie: str | None = None, https: bool = False) -> Response:
        headers = {"Cookie": cookie} if cookie else {}
        if https:
            headers["X-Forwarded-Proto"] = "https"
        return Harness(self.site).get(path, headers)


def set_cookies(response: Response) -> list[str]:
    return response.headers.get_all("Set-Cookie") or []


def cookie_value(response: Response, name: str = "HIVE_SESSION") -> str:
    jar: SimpleCookie = SimpleCookie()
    for header in set_cookies(response):
        jar.load(header)
    return jar[name].value


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(str(tmp_path / "sessions.sqlite3"))
    yield store
    store.close()


def test_new_session_cookie_attributes(shared: SQLiteStore) -> None:
    response = Worker(Counter(), shared, Clock()).get()
    (header,) = set_cookies(response)
    name_value, *attributes = header.split("; ")
    name, _, value = name_value.partition("=")
    assert name == "HIVE_SESSION" and UID.fullmatch(value)
    assert attributes == ["Path=/", "HttpOnly", "SameSite=lax"]
    assert json.loads(response.body) == {"visits": 1, "uid": value}


def test_secure_session_cookie(shared: SQLiteStore) -> None:
    worker = Worker(Counter(), shared, Clock())
    response = worker.get(https=True)
    (header,) = set_cookies(response)
    assert header.startswith("__Host-HIVE_SESSION=")
    assert header.endswith("; Path=/; Secure; HttpOnly; SameSite=lax")
    value = cookie_value(response, "__Host-HIVE_SESSION")
    # The plain-HTTP cookie does not reach the secure session, nor the other way round.
    again = worker.get(cookie=f"__Host-HIVE_SESSION={value}", https=True)
    assert json.loads(again.body)["visits"] == 2
    plain = worker.get(cookie=f"__Host-HIVE_SESSION={value}")
    assert json.loads(plain.body)["visits"] == 1


def test_force_not_secure_gives_the_plain_session(shared: SQLiteStore) -> None:
    class Plain(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            session: Session = request.getSession(forceNotSecure=True)
            assert request.session is None  # the secure one was not asked for
            return session.uid

    response = Worker(Plain(), shared, Clock()).get(https=True)
    (header,) = set_cookies(response)
    assert header == f"HIVE_SESSION={response.body.decode()}; Path=/; HttpOnly; SameSite=lax"


def test_count_is_shared_by_workers(shared: SQLiteStore) -> None:
    clock = Clock()
    workers = [Worker(Counter(), shared, clock), Worker(Counter(), shared, clock)]
    first = workers[0].get()
    cookie = f"HIVE_SESSION={cookie_value(first)}"
    for visit in range(2, 8):
        response = workers[visit % 2].get(cookie=cookie)
        assert json.loads(response.body)["visits"] == visit
        assert set_cookies(response) == []  # a known session needs no new cookie


def test_data_round_trip(shared: SQLiteStore) -> None:
    data = {"name": "Zoë ☃", "n": 3, "f": 0.5, "ok": True, "none": None, "list": [1, [2, 3]]}

    class Write(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            session = request.getSession()
            session.update(data)
            session["pair"] = (1, 2)
            session["nested"] = {"a": {"b": []}}
            return b""

    class Read(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            session = request.getSession()
            session["nested"]["a"]["b"].append("x")  # changed in place: saved all the same
            return json.dumps(dict(session)).encode()

    clock = Clock()
    cookie = f"HIVE_SESSION={cookie_value(Worker(Write(), shared, clock).get())}"
    reader = Worker(Read(), shared, clock)
    assert json.loads(reader.get(cookie=cookie).body) == {
        **data,
        "pair": [1, 2],  # JSON has no tuples
        "nested": {"a": {"b": ["x"]}},
    }
    assert json.loads(reader.get(cookie=cookie).body)["nested"] == {"a": {"b": ["x", "x"]}}


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("k", object(), TypeError),
        ("k", {1, 2}, TypeError),
        ("k", b"bytes", TypeError),
        ("k", {1: "int key"}, TypeError),
        ("k", [{"deep": {2: 3}}], TypeError),
        ("k", float("nan"), ValueError),
        (1, "x", TypeError),
    ],
)
def test_values_must_be_json(key: Any, value: Any, error: type[Exception]) -> None:
    session = Site(Resource()).makeSession()
    with pytest.raises(error):
        session[key] = value
    assert len(session) == 0


def test_attributes_are_refused() -> None:
    session = Site(Resource()).makeSession()
    with pytest.raises(AttributeError, match=r"session\['user'\]"):
        session.user = "ada"
    session.sessionTimeout = 60  # a class attribute: allowed
    assert session and len(session) == 0  # an empty session is still true


def test_unknown_or_junk_cookie_gets_a_new_id(shared: SQLiteStore) -> None:
    """No fixation: an id the client makes up is never adopted."""
    worker = Worker(Counter(), shared, Clock())
    for planted in ["A" * 43, "x", "%00", "z" * 5000, "a-b_c" * 9]:
        response = worker.get(cookie=f"HIVE_SESSION={planted}")
        value = cookie_value(response)
        assert value != planted and UID.fullmatch(value)
        assert json.loads(response.body)["visits"] == 1
        assert shared.get(planted) is None
        assert shared.get(value) is not None


def test_expiry_with_an_injected_clock(shared: SQLiteStore) -> None:
    class Short(Session):
        sessionTimeout = 60

    clock = Clock()
    worker = Worker(Counter(), shared, clock, Short)
    first = worker.get()
    uid = cookie_value(first)
    cookie = f"HIVE_SESSION={uid}"
    record = shared.get(uid)
    assert record is not None and record.expires_at == clock.now + 60
    clock.now += 59  # each use extends the session: sliding expiry
    assert json.loads(worker.get(cookie=cookie).body)["visits"] == 2
    clock.now += 59
    assert json.loads(worker.get(cookie=cookie).body)["visits"] == 3
    clock.now += 60  # expired at exactly sessionTimeout after the last use
    response = worker.get(cookie=cookie)
    assert json.loads(response.body)["visits"] == 1
    assert cookie_value(response) != uid
    assert shared.get(uid) is None  # the lazy purge


def test_expired_sessions_are_purged_periodically(shared: SQLiteStore) -> None:
    clock = Clock()
    worker = Worker(Counter(), shared, clock)
    shared.save("gone" * 8, "{}", clock.now - 1, create=True)
    worker.get()  # the first lookup in a process sweeps
    assert shared.get("gone" * 8) is None
    shared.save("late" * 8, "{}", clock.now + 10, create=True)
    clock.now += 30
    worker.get()
    assert shared.get("late" * 8) is not None  # no sweep until purge_interval passed
    clock.now += site_sessions(worker.site).purge_interval
    worker.get()
    assert shared.get("late" * 8) is None


def test_expire_runs_callbacks_and_drops_the_cookie(shared: SQLiteStore) -> None:
    calls: list[str] = []

    class Logout(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            session = request.getSession()
            session.notifyOnExpire(lambda: calls.append("expired"))
            session.expire()
            session.expire()  # twice is harmless
            assert session.expired and calls == ["expired"]
            fresh = request.getSession()  # a new one, as in Twisted
            assert fresh is not session and fresh.uid != session.uid
            return b""

    clock = Clock()
    uid = cookie_value(Worker(Counter(), shared, clock).get())
    response = Worker(Logout(), shared, clock).get(cookie=f"HIVE_SESSION={uid}")
    dropped, fresh = set_cookies(response)
    assert dropped == "HIVE_SESSION=; Path=/; Max-Age=0; HttpOnly; SameSite=lax"
    assert fresh.startswith("HIVE_SESSION=") and uid not in fresh
    assert shared.get(uid) is None
    assert calls == ["expired"]


def test_notify_on_expire_after_a_timeout(shared: SQLiteStore) -> None:
    calls: list[int] = []

    class Watch(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            session = request.getSession()
            if "watched" not in session:
                session["watched"] = True
                session.notifyOnExpire(lambda: calls.append(1))
            return b""

    clock = Clock()
    worker = Worker(Watch(), shared, clock)
    uid = cookie_value(worker.get())
    worker.get(cookie=f"HIVE_SESSION={uid}")
    assert calls == []
    clock.now += Session.sessionTimeout
    worker.get(cookie=f"HIVE_SESSION={uid}")  # this process finds it expired
    assert calls == [1]


def test_notify_on_expire_when_another_worker_ends_it(shared: SQLiteStore) -> None:
    calls: list[int] = []

    class Watch(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            request.getSession().notifyOnExpire(lambda: calls.append(1))
            return b""

    class Logout(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            request.getSession().expire()
            return b""

    clock = Clock()
    watcher = Worker(Watch(), shared, clock)
    uid = cookie_value(watcher.get())
    Worker(Logout(), shared, clock).get(cookie=f"HIVE_SESSION={uid}")
    assert calls == []  # the other process ended it; this one has not looked yet
    clock.now += site_sessions(watcher.site).purge_interval
    watcher.get()  # any request here, after purge_interval, sweeps
    assert calls == [1]
    clock.now += site_sessions(watcher.site).purge_interval
    watcher.get()
    assert calls == [1]  # once


def test_saved_before_the_response_starts(shared: SQLiteStore) -> None:
    """The next request may reach another worker as soon as the client has the response."""
    seen: list[Any] = []

    class Stream(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> object:
            session = request.getSession()
            session["step"] = 1
            request.write(b"first")
            seen.append(json.loads(shared.get(session.uid.decode()).data))  # type: ignore[union-attr]
            session["step"] = 2
            request.finish()
            seen.append(json.loads(shared.get(session.uid.decode()).data))  # type: ignore[union-attr]
            return NOT_DONE_YET

    Worker(Stream(), shared, Clock()).get()
    assert seen == [{"step": 1}, {"step": 2}]


def test_a_logged_out_session_is_not_brought_back(shared: SQLiteStore) -> None:
    """A request that held the session while another worker ended it does not save it."""
    held: list[Request] = []

    class Hold(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> object:
            request.getSession()
            held.append(request)
            return NOT_DONE_YET

    class Logout(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            request.getSession().expire()
            return b""

    clock = Clock()
    uid = cookie_value(Worker(Counter(), shared, clock).get())
    holder = Harness(Worker(Hold(), shared, clock).site)
    holder.send(f"GET / HTTP/1.1\r\nHost: x\r\nCookie: HIVE_SESSION={uid}\r\n\r\n".encode())
    (request,) = held
    Worker(Logout(), shared, clock).get(cookie=f"HIVE_SESSION={uid}")
    session = request.getSession()
    session["visits"] = 100
    request.finish()
    assert holder.response().status == 200
    assert session.expired
    assert shared.get(uid) is None


def test_rotate_keeps_the_data_under_a_new_id(shared: SQLiteStore) -> None:
    class Login(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            session: Session = request.getSession()
            session["user"] = "ada"
            session.rotate()
            return session.uid

    clock = Clock()
    old = cookie_value(Worker(Counter(), shared, clock).get())
    response = Worker(Login(), shared, clock).get(cookie=f"HIVE_SESSION={old}")
    new = cookie_value(response)
    assert new == response.body.decode() and new != old
    assert shared.get(old) is None
    record = shared.get(new)
    assert record is not None and json.loads(record.data) == {"visits": 1, "user": "ada"}


def test_an_interface_nothing_adapts_gives_none() -> None:
    class INothing(Interface):
        """No adapter is registered for it."""

    class Component(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            assert request.getSession(INothing) is None
            with pytest.raises(TypeError):
                INothing(request.getSession())
            return b"ok"

    assert Harness(Component()).get().body == b"ok"


def test_site_make_and_get_session(shared: SQLiteStore) -> None:
    site = Site(Resource())
    site.sessionStore = shared
    session = site.makeSession()
    assert UID.fullmatch(session.uid.decode())
    with pytest.raises(KeyError):
        site.getSession(session.uid)  # not stored until saved
    session["a"] = 1
    session.save()
    assert dict(site.getSession(session.uid)) == {"a": 1}
    with pytest.raises(KeyError):
        site.getSession(b"no such session id, not even the right form")


def test_memory_store_is_the_default_outside_hive_run() -> None:
    site = Site(Counter())
    uid = cookie_value(Harness(site).get())
    assert isinstance(site.sessionStore, MemoryStore)
    response = Harness(site).get("/", {"Cookie": f"HIVE_SESSION={uid}"})
    assert json.loads(response.body)["visits"] == 2


def test_store_failure_is_logged_and_the_response_goes_on(
    shared: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(MemoryStore):
        def save(self, uid: str, data: str, expires_at: float, create: bool = False) -> bool:
            raise OSError("disk full")

    with caplog.at_level(logging.ERROR, "hive.session"):
        response = Worker(Counter(), Broken(), Clock()).get()
    assert response.status == 200
    assert "cannot save a session" in caplog.text


def test_cookie_name_setting(tmp_path: Path) -> None:
    for bad in ["", "a b", "a;b", "__Host-x", "__secure-x", "é"]:
        with pytest.raises(ConfigError, match="session_cookie"):
            Config(session_cookie=bad)
    config = Config(
        app="examples.sessions:root", session_dir=str(tmp_path), session_cookie="APP_SID"
    )
    site = load_site(config, None)
    assert site.sessionCookieName == b"APP_SID"
    assert isinstance(site.sessionStore, SQLiteStore)
    assert site.sessionStore.path == str(tmp_path / "sessions.sqlite3")
    response = Harness(site).get()
    assert b"1 time." in response.body
    assert set_cookies(response)[0].startswith("APP_SID=")
    assert (tmp_path / "sessions.sqlite3").exists()
    site.sessionStore.close()


# -- components -------------------------------------------------------------------------------


class ICounter(Interface):
    value = Attribute("An int value which counts up once per page view.")


@implementer(ICounter)
class VisitCounter:
    """The session-store lesson's component: plain data."""

    def __init__(self, session: Session) -> None:
        self.value = 0
        self.inits = 1 + getattr(self, "inits", 0)


class IHandle(Interface):
    """A component holding what JSON cannot (a file, a socket, a lock...)."""


@implementer(IHandle)
class Handle(components.Adapter):
    def __init__(self, original: Session) -> None:
        super().__init__(original)
        self.thing = object()


@pytest.fixture
def adapters() -> Iterator[None]:
    components.registerAdapter(VisitCounter, Session, ICounter)
    components.registerAdapter(Handle, Session, IHandle)
    yield
    registry: Any = components.globalRegistry
    for target in (ICounter, IHandle):
        registry.unregister([implementedBy(Session)], target, "")  # type: ignore[no-untyped-call]


class CountVisits(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        counter = ICounter(request.getSession())
        assert counter is request.getSession(ICounter)  # one component per session
        counter.value += 1
        return b"Visit #%d inits=%d" % (counter.value, counter.inits)


def test_plain_components_are_stored_for_every_worker(shared: SQLiteStore, adapters: None) -> None:
    clock = Clock()
    workers = [Worker(CountVisits(), shared, clock), Worker(CountVisits(), shared, clock)]
    first = workers[0].get()
    assert first.body == b"Visit #1 inits=1"
    cookie = f"HIVE_SESSION={cookie_value(first)}"
    for visit in range(2, 6):
        # __init__ ran once, in the first request: later ones rebuild the stored state.
        assert workers[visit % 2].get(cookie=cookie).body == b"Visit #%d inits=1" % visit
    record = shared.get(cookie_value(first))
    assert record is not None
    stored = json.loads(record.data)["__hive_components__"]
    assert stored == {"tests.unit.test_session.ICounter": {"attributes": {"value": 5, "inits": 1}}}


def test_other_components_stay_in_the_worker(
    shared: SQLiteStore, adapters: None, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[object, Session]] = []

    class Hold(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            handle: Any = IHandle(request.getSession())
            seen.append((handle.thing, handle.original))
            assert handle.original is request.getSession()  # this request's session
            return b""

    clock = Clock()
    one, other = Worker(Hold(), shared, clock), Worker(Hold(), shared, clock)
    cookie = f"HIVE_SESSION={cookie_value(one.get())}"
    one.get(cookie=cookie)
    other.get(cookie=cookie)
    assert seen[0][0] is seen[1][0]  # the same worker keeps it
    assert seen[2][0] is not seen[0][0]  # another worker makes its own
    assert caplog.text.count("kept in this worker's memory only") == 1
    record = shared.get(cookie.partition("=")[2])
    assert record is not None and "__hive_components__" not in json.loads(record.data)


def test_set_unset_and_remove_components(shared: SQLiteStore, adapters: None) -> None:
    class Manage(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            session = request.getSession()
            action = request.args.get(b"do", [b""])[0]
            if action == b"set":
                counter = VisitCounter(session)
                counter.value = 41
                session.setComponent(ICounter, counter)
            elif action == b"unset":
                session.unsetComponent(ICounter)
                with pytest.raises(KeyError):
                    session.unsetComponent(ICounter)
            elif action == b"remove":
                assert session.removeComponent(ICounter(session)) == [
                    "tests.unit.test_session.ICounter"
                ]
            return b"%d" % ICounter(session).value

    clock = Clock()
    worker = Worker(Manage(), shared, clock)
    cookie = f"HIVE_SESSION={cookie_value(worker.get('/?do=set'))}"
    assert worker.get("/", cookie=cookie).body == b"41"
    assert worker.get("/?do=unset", cookie=cookie).body == b"0"
    worker.get("/?do=set", cookie=cookie)
    assert worker.get("/?do=remove", cookie=cookie).body == b"0"


def test_the_components_key_is_not_data(shared: SQLiteStore, adapters: None) -> None:
    class Misuse(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            session = request.getSession()
            ICounter(session).value = 3
            with pytest.raises(KeyError, match="components"):
                session["__hive_components__"] = {}
            assert dict(session) == {}
            session["a"] = 1
            return b""

    clock = Clock()
    worker = Worker(Misuse(), shared, clock)
    uid = cookie_value(worker.get())
    assert dict(site_sessions(worker.site).get(uid.encode())) == {"a": 1}


class IUnadapted(Interface):
    """No adapter gives it."""


def test_registering_twice_is_refused_as_in_twisted(adapters: None) -> None:
    with pytest.raises(ValueError, match="already registered"):
        components.registerAdapter(VisitCounter, Session, ICounter)
    assert components.getAdapterFactory(Session, ICounter, None) is VisitCounter
    assert components.getAdapterFactory(Session, IUnadapted, "none") == "none"


def test_proxy_for_interface_forwards_what_the_interface_declares() -> None:
    class IGreeter(Interface):
        name = Attribute("who")

        def greet() -> str:
            """A greeting."""

    @implementer(IGreeter)
    class Greeter:
        name = "ada"

        def greet(self) -> str:
            return "hello " + self.name

    class Loud(components.proxyForInterface(IGreeter)):  # type: ignore[misc]
        def greet(self) -> str:
            return str(self.original.greet()).upper()

    proxy = Loud(Greeter())
    assert IGreeter.providedBy(proxy)
    assert proxy.greet() == "HELLO ADA"
    proxy.name = "bob"
    assert proxy.original.name == "bob"


# -- expiry on time ---------------------------------------------------------------------------


class Timers:
    """call_later on an explicit clock: the test moves time and fires what is due."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.pending: list[tuple[float, Callable[[], None], list[bool]]] = []

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any:
        cancelled = [False]
        self.pending.append((self.clock.now + delay, callback, cancelled))

        class Handle:
            def cancel(self) -> None:
                cancelled[0] = True

        return Handle()

    def advance(self, seconds: float) -> None:
        """Move the clock by ``seconds``, firing timers in order as their time comes."""
        end = self.clock.now + seconds
        while True:
            due = sorted(
                (t for t in self.pending if t[0] <= end and not t[2][0]), key=lambda t: t[0]
            )
            if not due:
                break
            when, callback, _ = due[0]
            self.pending.remove(due[0])
            self.clock.now = max(self.clock.now, when)
            callback()
        self.clock.now = end

    @property
    def live(self) -> list[float]:
        return sorted(when for when, _, cancelled in self.pending if not cancelled[0])


class Logme(Resource):
    """The session-endings lesson's resource."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.expired: list[tuple[bytes, float]] = []

    def render_GET(self, request: Request) -> bytes:
        session = request.getSession()
        if "watched" not in session:
            session["watched"] = True
            clock = site_sessions(request.site).clock
            session.notifyOnExpire(lambda: self.expired.append((session.uid, clock())))
        return b""


class FiveSeconds(Session):
    sessionTimeout = 5


def timed_worker(resource: Resource, store: SessionStore, clock: Clock, timers: Timers) -> Worker:
    worker = Worker(resource, store, clock, FiveSeconds)
    site_sessions(worker.site).call_later = timers.call_later
    return worker


def test_expiry_callbacks_fire_on_time(shared: SQLiteStore) -> None:
    clock = Clock()
    timers = Timers(clock)
    logme = Logme()
    worker = timed_worker(logme, shared, clock, timers)
    start = clock.now
    uid = cookie_value(worker.get())
    assert timers.live == [start + 5]
    timers.advance(4.9)
    assert logme.expired == []
    timers.advance(0.2)
    assert logme.expired == [(uid.encode(), start + 5)]  # no request was needed
    assert shared.get(uid) is None  # and the store is kept right
    assert timers.live == []


def test_a_session_used_again_is_rescheduled_not_expired(shared: SQLiteStore) -> None:
    clock = Clock()
    timers = Timers(clock)
    logme = Logme()
    here = timed_worker(logme, shared, clock, timers)
    there = timed_worker(Logme(), shared, clock, Timers(clock))  # another worker
    start = clock.now
    cookie = f"HIVE_SESSION={cookie_value(here.get())}"
    timers.advance(3)
    there.get(cookie=cookie)  # touched elsewhere: expires at start + 8 now
    timers.advance(2.5)  # this worker's timer fired at start + 5, saw the new expiry
    assert logme.expired == []
    assert timers.live == [start + 8]
    timers.advance(3)
    assert [when for _, when in logme.expired] == [start + 8]


def test_a_session_another_worker_ended_ends_here_at_its_time(shared: SQLiteStore) -> None:
    class Logout(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            request.getSession().expire()
            return b""

    clock = Clock()
    timers = Timers(clock)
    logme = Logme()
    here = timed_worker(logme, shared, clock, timers)
    cookie = f"HIVE_SESSION={cookie_value(here.get())}"
    timed_worker(Logout(), shared, clock, Timers(clock)).get(cookie=cookie)
    timers.advance(5)
    assert len(logme.expired) == 1


def test_expire_here_cancels_the_timer(shared: SQLiteStore) -> None:
    class Both(Logme):
        def render_GET(self, request: Request) -> bytes:
            super().render_GET(request)
            if request.args.get(b"out"):
                request.getSession().expire()
            return b""

    clock = Clock()
    timers = Timers(clock)
    both = Both()
    worker = timed_worker(both, shared, clock, timers)
    cookie = f"HIVE_SESSION={cookie_value(worker.get())}"
    worker.get("/?out=1", cookie=cookie)
    assert len(both.expired) == 1
    assert timers.live == []
    timers.advance(10)
    assert len(both.expired) == 1  # once


def test_a_rotated_session_is_watched_under_its_new_id(shared: SQLiteStore) -> None:
    class Rotate(Logme):
        def render_GET(self, request: Request) -> bytes:
            super().render_GET(request)
            if request.args.get(b"login"):
                request.getSession().rotate()
            return b""

    clock = Clock()
    timers = Timers(clock)
    rotate = Rotate()
    worker = timed_worker(rotate, shared, clock, timers)
    cookie = f"HIVE_SESSION={cookie_value(worker.get())}"
    response = worker.get("/?login=1", cookie=cookie)
    new = cookie_value(response)
    assert shared.get(new) is not None
    timers.advance(6)
    # The callback (registered under the old id) ran once, at the new id's expiry.
    assert [when for _, when in rotate.expired] == [clock.now - 1]
    assert shared.get(new) is None


def test_a_failed_store_lookup_is_tried_again(
    shared: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    timers = Timers(clock)
    logme = Logme()
    worker = timed_worker(logme, shared, clock, timers)
    cookie_value(worker.get())
    real_get = shared.get
    monkeypatch.setattr(shared, "get", lambda uid: 1 / 0)
    timers.advance(5)
    assert logme.expired == []
    monkeypatch.setattr(shared, "get", real_get)
    timers.advance(site_sessions(worker.site).retry_interval)
    assert len(logme.expired) == 1


def test_kept_components_are_dropped_when_the_session_expires(
    shared: SQLiteStore, adapters: None
) -> None:
    class Hold(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            IHandle(request.getSession())
            return b""

    clock = Clock()
    timers = Timers(clock)
    worker = timed_worker(Hold(), shared, clock, timers)
    uid = cookie_value(worker.get()).encode()
    sessions = site_sessions(worker.site)
    assert sessions.kept(uid, components.qual(IHandle)) is not None
    timers.advance(6)
    assert sessions.kept(uid, components.qual(IHandle)) is None


def test_sessions_provide_isession_and_adapt_through_it() -> None:
    from hive.iweb import ISession

    class ITheme(Interface):
        """What a page's colours are, per session."""

    @implementer(ITheme)
    class Theme:
        def __init__(self, session: Session) -> None:
            self.colour = "blue"

    components.registerAdapter(Theme, ISession, ITheme)  # every session class, subclasses too
    try:

        class Page(Resource):
            isLeaf = True

            def render_GET(self, request: Request) -> bytes:
                session = request.getSession()
                assert ISession.providedBy(session) and ISession(session) is session
                theme = ITheme(session)
                assert theme is request.getSession(ITheme) and isinstance(theme, Theme)
                return theme.colour.encode()

        class Short(Session):
            sessionTimeout = 5.0

        site = Site(Page())
        assert Harness(site).get().body == b"blue"
        site.sessionFactory = Short
        assert Harness(site).get().body == b"blue"
        assert ISession.implementedBy(Short)
    finally:
        registry: Any = components.globalRegistry
        registry.unregister([ISession], ITheme, "")
