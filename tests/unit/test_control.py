"""The control socket, over real unix sockets in tmp_path, with a loop played step by step."""

from __future__ import annotations

import logging
import os
import selectors
import socket
import stat
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest

from hive.supervisor import control
from hive.supervisor.control import (
    MAX_REQUEST_SIZE,
    REQUEST_TIMEOUT,
    ControlError,
    ControlRequest,
    ControlResponse,
    ControlServer,
    PeerCredentials,
    RunningHive,
    control_dir,
    control_path,
    peer_allowed,
    request,
    running_hives,
)

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE

needs_peercred = pytest.mark.skipif(not hasattr(socket, "SO_PEERCRED"), reason="no SO_PEERCRED")


class Loop:
    """Plays the supervisor's selector loop for one ControlServer, one bounded step at a time."""

    def __init__(self, server: ControlServer) -> None:
        self.server = server
        self.selector = selectors.DefaultSelector()
        self.selector.register(server.fileno(), READ)
        self.registered: dict[int, int] = {}
        self.requests: list[ControlRequest] = []

    def sync(self) -> None:
        """Make the selector watch what the server wants, as the real loop must."""
        wanted = self.server.watched()
        for fd in set(self.registered) - set(wanted):
            self.selector.unregister(fd)
            del self.registered[fd]
        for fd, events in wanted.items():
            if fd not in self.registered:
                self.selector.register(fd, events)
            elif self.registered[fd] != events:
                self.selector.modify(fd, events)
            self.registered[fd] = events

    def step(self, timeout: float = 0.005) -> None:
        self.sync()
        for key, events in self.selector.select(timeout):
            if key.fd == self.server.fileno():
                self.server.accept()
            else:
                self.requests += self.server.handle(
                    key.fd, bool(events & READ), bool(events & WRITE)
                )
        self.sync()

    def run_until(self, done: Callable[[], bool], steps: int = 400) -> None:
        for _ in range(steps):
            if done():
                return
            self.step()
        raise AssertionError("the loop did not get there")

    def take(self, count: int = 1) -> list[ControlRequest]:
        """Step until `count` requests have come in; return them."""
        self.run_until(lambda: len(self.requests) >= count)
        taken, self.requests = self.requests[:count], self.requests[count:]
        return taken

    def close(self) -> None:
        self.selector.close()


class Client:
    """A raw, non-blocking client socket; reading steps the loop so the server can write."""

    def __init__(self, path: Path, loop: Loop) -> None:
        self.loop = loop
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.setblocking(False)
        self.received = bytearray()
        self.eof = False

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        for _ in range(1000):
            if not view:
                return
            try:
                view = view[self.sock.send(view) :]
            except BlockingIOError:
                self.loop.step()
        raise AssertionError("could not send")

    def poll(self) -> None:
        while not self.eof:
            try:
                data = self.sock.recv(256 * 1024)
            except BlockingIOError:
                return
            except ConnectionResetError:
                data = b""
            self.received += data
            self.eof = not data

    def response(self) -> Any:
        """Step until a whole response has come, and the server has closed; return it."""

        def arrived() -> bool:
            self.poll()
            return self.eof

        self.loop.run_until(arrived)
        return msgpack.unpackb(bytes(self.received))

    def closed_without_answer(self) -> bool:
        self.poll()
        return self.eof and not self.received

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "hive.ctl"


@pytest.fixture
def server(path: Path) -> Iterator[ControlServer]:
    with ControlServer.open(str(path)) as server:
        yield server


@pytest.fixture
def loop(server: ControlServer) -> Iterator[Loop]:
    loop = Loop(server)
    yield loop
    loop.close()


@pytest.fixture
def connect(path: Path, loop: Loop) -> Iterator[Callable[[], Client]]:
    clients: list[Client] = []

    def connect() -> Client:
        clients.append(Client(path, loop))
        return clients[-1]

    yield connect
    for client in clients:
        client.close()


def packed(command: str, args: dict[str, Any] | None = None) -> bytes:
    message: dict[str, Any] = {"command": command}
    if args is not None:
        message["args"] = args
    result: bytes = msgpack.packb(message)
    return result


# -- requests and replies -------------------------------------------------------------------


def test_status_round_trip_with_a_late_reply(
    server: ControlServer, loop: Loop, connect: Callable[[], Client]
) -> None:
    client = connect()
    client.send(packed("status", {}))
    (req,) = loop.take()
    assert (req.command, req.args) == ("status", {})

    # The answer may take its time: the connection stays open, nothing is sent meanwhile.
    for _ in range(5):
        loop.step()
    client.poll()
    assert not client.received
    assert not client.eof
    server.check_deadlines(0.0)
    server.check_deadlines(10 * REQUEST_TIMEOUT)  # waiting for a reply has no deadline

    server.reply(req.client_id, True, data={"pid": 1, "workers": []})
    assert client.response() == {"ok": True, "error": None, "data": {"pid": 1, "workers": []}}
    loop.step()
    assert server.watched() == {}


def test_two_clients_at_once_get_their_own_answers(
    server: ControlServer, loop: Loop, connect: Callable[[], Client]
) -> None:
    first, second = connect(), connect()
    first.send(packed("status"))
    second.send(packed("scale", {"workers": 4}))
    requests = {req.command: req for req in loop.take(2)}
    assert requests["scale"].args == {"workers": 4}
    assert requests["status"].args == {}  # "args" left out means none
    assert requests["scale"].client_id != requests["status"].client_id

    server.reply(requests["scale"].client_id, True, data={"workers": 4})
    assert second.response() == {"ok": True, "error": None, "data": {"workers": 4}}
    assert not first.eof
    server.reply(requests["status"].client_id, False, error="hive is stopping")
    assert first.response() == {"ok": False, "error": "hive is stopping", "data": None}


def test_a_large_answer_is_written_as_the_client_reads(
    server: ControlServer, loop: Loop, connect: Callable[[], Client]
) -> None:
    client = connect()
    client.send(packed("status"))
    (req,) = loop.take()
    blob = b"x" * (4 * 1024 * 1024)  # more than a socket buffer holds
    server.reply(req.client_id, True, data=blob)
    assert list(server.watched().values()) == [WRITE]  # the rest waits for the client
    assert client.response()["data"] == blob


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\xc1", "bad request: not valid msgpack"),
        (msgpack.packb([1, 2]), "bad request: expected a map, got list"),
        (msgpack.packb({"args": {}}), "bad request: 'command' must be a non-empty string"),
        (msgpack.packb({"command": 5}), "bad request: 'command' must be a non-empty string"),
        (
            msgpack.packb({"command": "x", "args": [1]}),
            "bad request: 'args' must be a map, got list",
        ),
        (
            msgpack.packb({"command": "x", "args": {b"k": 1}}),
            "bad request: the keys of 'args' must be strings",
        ),
        (packed("status") + packed("stop"), "bad request: one request per connection"),
    ],
)
def test_a_bad_request_gets_an_error_and_is_closed(
    server: ControlServer, loop: Loop, connect: Callable[[], Client], data: bytes, error: str
) -> None:
    client = connect()
    client.send(data)
    assert client.response() == {"ok": False, "error": error, "data": None}
    assert loop.requests == []
    assert server.watched() == {}


def test_more_after_a_request_is_a_bad_request(
    server: ControlServer, loop: Loop, connect: Callable[[], Client]
) -> None:
    client = connect()
    client.send(packed("reload"))
    (req,) = loop.take()
    client.send(packed("stop"))
    error = "bad request: one request per connection"
    assert client.response() == {"ok": False, "error": error, "data": None}
    server.reply(req.client_id, True)  # too late: ignored
    assert server.watched() == {}


def test_a_request_of_exactly_the_limit_is_served(
    loop: Loop, connect: Callable[[], Client]
) -> None:
    overhead = len(packed("status", {"pad": "x" * 60000})) - 60000  # str16 either way
    data = packed("status", {"pad": "x" * (MAX_REQUEST_SIZE - overhead)})
    assert len(data) == MAX_REQUEST_SIZE
    connect().send(data)
    (req,) = loop.take()
    assert len(req.args["pad"]) == MAX_REQUEST_SIZE - overhead


def test_an_oversize_request_is_dropped(
    server: ControlServer, loop: Loop, connect: Callable[[], Client], caplog: Any
) -> None:
    client = connect()
    # The start of a valid, longer message: 65535 uint8 values, 2 bytes each.
    with caplog.at_level(logging.WARNING, logger="hive.control"):
        client.send((b"\xdc\xff\xff" + b"\xcc\x00" * 40000)[: MAX_REQUEST_SIZE + 1])
        loop.run_until(client.closed_without_answer)
    assert "request over 65536 bytes" in caplog.text
    assert loop.requests == []
    assert server.watched() == {}


def test_a_slow_client_is_dropped_by_check_deadlines(
    server: ControlServer, loop: Loop, connect: Callable[[], Client]
) -> None:
    slow, quick = connect(), connect()
    slow.send(packed("status")[:3])
    loop.run_until(lambda: len(server.watched()) == 2)
    server.check_deadlines(100.0)  # the deadline starts here
    quick.send(packed("status"))
    (req,) = loop.take()
    server.check_deadlines(100.0 + REQUEST_TIMEOUT - 0.1)
    loop.step()
    assert not slow.closed_without_answer()
    server.check_deadlines(100.0 + REQUEST_TIMEOUT)
    loop.run_until(slow.closed_without_answer)
    server.reply(req.client_id, True)  # a waiting client had no deadline
    assert quick.response()["ok"] is True


def test_a_client_that_does_not_read_its_answer_is_dropped(
    server: ControlServer, loop: Loop, connect: Callable[[], Client]
) -> None:
    client = connect()
    client.send(packed("status"))
    (req,) = loop.take()
    server.reply(req.client_id, True, data=b"x" * (4 * 1024 * 1024))
    server.check_deadlines(0.0)
    server.check_deadlines(REQUEST_TIMEOUT)
    loop.step()
    assert server.watched() == {}


def test_a_client_that_leaves_before_its_answer_is_forgotten(
    server: ControlServer, loop: Loop, connect: Callable[[], Client]
) -> None:
    client = connect()
    client.send(packed("reload"))
    (req,) = loop.take()
    client.close()
    loop.run_until(lambda: not server.watched())
    server.reply(req.client_id, True)  # nobody to tell; no error


def test_an_unencodable_answer_becomes_an_error(
    server: ControlServer, loop: Loop, connect: Callable[[], Client], caplog: Any
) -> None:
    client = connect()
    client.send(packed("status"))
    (req,) = loop.take()
    with caplog.at_level(logging.ERROR, logger="hive.control"):
        server.reply(req.client_id, True, data=object())
    error = "internal error: unencodable answer"
    assert client.response() == {"ok": False, "error": error, "data": None}
    assert "cannot encode" in caplog.text


# -- who may connect ------------------------------------------------------------------------


def test_peer_credentials_are_parsed() -> None:
    raw = struct.pack("3i", 4242, 1000, 100)
    assert PeerCredentials.from_bytes(raw) == PeerCredentials(pid=4242, uid=1000, gid=100)
    with pytest.raises(ValueError, match="expected 12"):
        PeerCredentials.from_bytes(raw[:8])


@pytest.mark.parametrize(("uid", "allowed"), [(1000, True), (0, True), (1001, False)])
def test_only_our_user_and_root_are_allowed(uid: int, allowed: bool) -> None:
    assert peer_allowed(PeerCredentials(pid=1, uid=uid, gid=1), own_uid=1000) is allowed


@needs_peercred
def test_accept_reads_the_peers_real_credentials(
    monkeypatch: pytest.MonkeyPatch, server: ControlServer, loop: Loop, path: Path
) -> None:
    seen: list[PeerCredentials] = []

    def record(peer: PeerCredentials, own_uid: int) -> bool:
        seen.append(peer)
        return True

    monkeypatch.setattr(control, "peer_allowed", record)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(path))
        loop.run_until(lambda: bool(seen))
    assert seen == [PeerCredentials(os.getpid(), os.geteuid(), os.getegid())]


@needs_peercred
def test_a_refused_peer_is_closed_and_logged(
    monkeypatch: pytest.MonkeyPatch,
    server: ControlServer,
    loop: Loop,
    connect: Callable[[], Client],
    caplog: Any,
) -> None:
    monkeypatch.setattr(control, "peer_allowed", lambda peer, own_uid: False)
    with caplog.at_level(logging.WARNING, logger="hive.control"):
        client = connect()
        loop.run_until(client.closed_without_answer)
    assert server.watched() == {}
    assert f"refused a connection from pid {os.getpid()}" in caplog.text


# -- the socket file ------------------------------------------------------------------------


def test_the_socket_is_owner_only_and_removed_on_close(path: Path) -> None:
    server = ControlServer.open(str(path))
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    server.close()
    assert not path.exists()
    server.close()  # twice is fine


def test_close_in_child_closes_sockets_and_leaves_the_file(path: Path) -> None:
    server = ControlServer.open(str(path))
    loop = Loop(server)
    client = Client(path, loop)
    try:
        client.send(packed("status"))
        loop.take()
        server.close_in_child()
        assert client.closed_without_answer()
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        with pytest.raises(ControlError, match="refuses connections"):
            request(str(path), "status")  # nobody listens any more
    finally:
        client.close()
        loop.close()
        server.close()


def test_close_in_a_forked_child_leaves_the_file(
    monkeypatch: pytest.MonkeyPatch, path: Path
) -> None:
    server = ControlServer.open(str(path))
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as if in a child that forgot close_in_child
    server.close()
    monkeypatch.undo()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_a_stale_socket_is_replaced(path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))  # bound, never listening: connecting is refused
    with ControlServer.open(str(path)) as server:
        loop = Loop(server)
        client = Client(path, loop)
        try:
            client.send(packed("status"))
            (req,) = loop.take()
            server.reply(req.client_id, True, data="alive")
            assert client.response()["data"] == "alive"
        finally:
            client.close()
            loop.close()


def test_another_running_hive_is_refused(server: ControlServer, path: Path) -> None:
    with pytest.raises(ControlError) as info:
        ControlServer.open(str(path))
    assert str(info.value) == (
        f"another hive is running (control socket {path}); stop it, or give this one"
        " another --name (or --control path)"
    )
    assert stat.S_ISSOCK(os.lstat(path).st_mode)  # the running hive keeps its socket


def test_a_path_that_is_not_a_socket_is_refused(path: Path) -> None:
    path.write_text("precious")
    with pytest.raises(ControlError, match="path exists and is not a socket"):
        ControlServer.open(str(path))
    assert path.read_text() == "precious"


def test_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    where = tmp_path / "nowhere" / "hive.ctl"
    with pytest.raises(ControlError) as info:
        ControlServer.open(str(where))
    assert str(info.value) == f"cannot create control socket {where}: no such file or directory"


# -- where sockets live, by name ----------------------------------------------------------------


def test_the_control_dir_is_in_the_runtime_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert control_dir() == str(tmp_path / "hive")
    assert control_path("127.0.0.1:8080") == str(tmp_path / "hive" / "127.0.0.1:8080.ctl")


def test_without_a_runtime_dir_the_control_dir_is_in_tmp(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert control._TMP == "/tmp"
    monkeypatch.setattr(control, "_TMP", str(tmp_path))
    expected = f"{tmp_path}/hive-{os.geteuid()}"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))
    assert control_dir() == expected
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert control_dir() == expected
    assert not os.path.exists(expected)  # only serving makes the directory


@pytest.fixture
def run_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private XDG_RUNTIME_DIR: control sockets go to run_dir / "hive"."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    return tmp_path / "hive"


@pytest.mark.parametrize(
    ("name", "file"),
    [
        ("127.0.0.1:8080", "127.0.0.1:8080.ctl"),
        ("[::1]:8080", "[::1]:8080.ctl"),
        ("unix:/run/app.sock", "unix:%2Frun%2Fapp.sock.ctl"),
        ("blog", "blog.ctl"),
        ("a b/c%", "a%20b%2Fc%25.ctl"),
    ],
)
def test_control_paths_are_named_after_the_hive(run_dir: Path, name: str, file: str) -> None:
    assert control_path(name) == str(run_dir / file)


def test_a_name_too_long_for_a_socket_path_is_cut_with_a_hash(run_dir: Path) -> None:
    long = "unix:/" + "x" * 300
    path = control_path(long)
    other = control_path(long + "y")
    assert len(os.fsencode(path)) <= 107 and len(os.fsencode(other)) <= 107
    assert path != other and os.path.dirname(path) == str(run_dir)
    with ControlServer.open(path) as server:
        assert server.path == path


def test_serving_in_the_control_dir_makes_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(control, "_TMP", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    where = control_path("127.0.0.1:8080")
    old_umask = os.umask(0o022)
    try:
        with ControlServer.open(where):
            assert stat.S_IMODE(os.stat(os.path.dirname(where)).st_mode) == 0o700
            assert stat.S_IMODE(os.lstat(where).st_mode) == 0o600
            # Bound under a temporary name, then linked: nothing else is left behind.
            assert os.listdir(os.path.dirname(where)) == ["127.0.0.1:8080.ctl"]
    finally:
        os.umask(old_umask)
    assert os.listdir(os.path.dirname(where)) == []
    with ControlServer.open(where):  # the directory exists now; used as it is
        pass
    os.chmod(os.path.dirname(where), 0o770)
    with pytest.raises(ControlError, match="writable by group or others"):
        ControlServer.open(where)
    with pytest.raises(ControlError, match="writable by group or others"):
        control_path("x")  # nor does the CLI talk through it


def answer_in_thread(server: ControlServer, data: dict[str, Any]) -> Callable[[], None]:
    """Serve `server` in a thread, answering every request with `data`; returns stop()."""
    stop = threading.Event()

    def serve() -> None:
        loop = Loop(server)
        try:
            while not stop.is_set():
                loop.step()
                for req in loop.requests:
                    server.reply(req.client_id, True, data=data)
                loop.requests.clear()
        finally:
            loop.close()

    thread = threading.Thread(target=serve)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=5.0)

    return halt


def test_running_hives_are_listed_by_name_and_stale_sockets_removed(run_dir: Path) -> None:
    assert running_hives() == []  # no directory yet
    first = ControlServer.open(control_path("127.0.0.1:8081"))
    second = ControlServer.open(control_path("blog"))
    stale = control_path("127.0.0.1:9999")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(stale)  # a hive killed with SIGKILL leaves its socket file
    (run_dir / "notes.txt").write_text("not a socket")
    stops = [
        answer_in_thread(first, {"name": "127.0.0.1:8081", "pid": 1, "workers": []}),
        answer_in_thread(second, {"name": "blog", "pid": 2, "workers": []}),
    ]
    try:
        hives = running_hives()
    finally:
        for stop in stops:
            stop()
        first.close()
        second.close()
    assert [(hive.name, hive.path, hive.status and hive.status["pid"]) for hive in hives] == [
        ("127.0.0.1:8081", first.path, 1),
        ("blog", second.path, 2),
    ]
    assert not os.path.exists(stale)
    assert (run_dir / "notes.txt").exists()


def test_a_hive_that_does_not_answer_is_listed_with_why(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "LIST_TIMEOUT", 0.01)
    with ControlServer.open(control_path("busy")) as server:  # nobody runs its loop
        (hive,) = running_hives()
    assert hive == RunningHive(
        server.path, None, f"hive did not answer within 0.01 s (control socket {server.path})"
    )
    assert hive.name == "busy"


def test_the_private_dir_is_made_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "hive-1"
    old_umask = os.umask(0o022)
    try:
        assert control._private_dir(str(directory), os.geteuid(), create=True) == str(directory)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    # Existing and safe: used as it is.
    assert control._private_dir(str(directory), os.geteuid(), create=True) == str(directory)


def test_an_unsafe_private_dir_is_refused(tmp_path: Path) -> None:
    uid = os.geteuid()
    directory = tmp_path / "hive-1"
    directory.mkdir()
    directory.chmod(0o777)
    with pytest.raises(ControlError) as info:
        control._private_dir(str(directory), uid, create=True)
    assert str(info.value) == (
        f"refusing control directory {directory}: writable by group or others (mode 0o777)"
    )
    directory.chmod(0o700)
    with pytest.raises(ControlError, match=f"owned by uid {uid}, not {uid + 1}$"):
        control._private_dir(str(directory), uid + 1, create=False)
    link = tmp_path / "link"
    link.symlink_to(directory)
    with pytest.raises(ControlError, match=r"not a directory$"):
        control._private_dir(str(link), uid, create=True)


# -- the client -----------------------------------------------------------------------------


def test_request_without_a_hive_is_one_line(path: Path) -> None:
    with pytest.raises(ControlError) as info:
        request(str(path), "status")
    assert str(info.value) == f"no hive is running (control socket {path} does not exist)"


def test_request_to_a_stale_socket_is_one_line(path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))
    with pytest.raises(ControlError) as info:
        request(str(path), "status")
    assert str(info.value) == f"no hive is running (control socket {path} refuses connections)"


def test_request_times_out(server: ControlServer, path: Path) -> None:
    # Nobody runs the loop: the connection waits in the backlog, unanswered.
    with pytest.raises(ControlError) as info:
        request(str(path), "status", timeout=0.01)
    assert str(info.value) == f"hive did not answer within 0.01 s (control socket {path})"


def test_request_round_trip(server: ControlServer, path: Path) -> None:
    stop = threading.Event()

    def serve() -> None:
        loop = Loop(server)
        try:
            while not stop.is_set():
                loop.step()
                for req in loop.requests:
                    server.reply(req.client_id, True, data={"got": [req.command, req.args]})
                loop.requests.clear()
        finally:
            loop.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        response = request(str(path), "scale", {"workers": 3}, timeout=5.0)
    finally:
        stop.set()
        thread.join(timeout=5.0)
    assert response == ControlResponse(ok=True, error=None, data={"got": ["scale", {"workers": 3}]})
