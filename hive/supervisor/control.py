"""The control socket: how ``hive status|reload|stop|scale`` give orders to the supervisor.

Wire protocol: a unix stream socket, one msgpack object each way, then the server closes::

    request   {"command": "status" | "reload" | "stop" | "scale", "args": {...}}
    response  {"ok": bool, "error": str | None, "data": Any}

``args`` may be left out (it means ``{}``); other keys in a request are ignored, so that a
newer CLI can talk to an older supervisor. The server does not interpret commands: it hands
each one to its caller as a `ControlRequest` and sends whatever the caller passes to
`ControlServer.reply`, which may come much later (a reload answers when it is done).

`ControlServer` never blocks and never reads a clock; it fits a `selectors` loop::

    server = ControlServer.open(path)
    selector.register(server.fileno(), EVENT_READ)
    while running:
        sync(selector, server.watched())
        for key, events in selector.select(timeout):
            if key.fd == server.fileno():
                server.accept()
            else:
                requests += server.handle(key.fd, bool(events & EVENT_READ),
                                          bool(events & EVENT_WRITE))
        server.check_deadlines(time.monotonic())    # about once a second
    server.close()

``sync`` makes the selector watch exactly `watched()`: unregister the fds no longer listed,
register new ones, modify changed events. Do it after any call to `accept`, `handle`,
`reply` or `check_deadlines` and before the next select. Client sockets are closed only
inside `watched` (and `close`), so a finished client's fd number cannot be reused, by a new
client or by any other socket the process opens, before the loop has unregistered it; and
a client dropped by `check_deadlines` is only disconnected at the next `watched`.

Who may connect: the socket file is mode 0o600 and, where SO_PEERCRED exists (Linux), a peer
whose uid is neither ours nor root's is turned away at `accept`.

Several hives on one host: each hive has a name, by default the first address it listens
on (``127.0.0.1:8080``, the real port after port 0), and its control socket is
``<name>.ctl`` in `control_dir` (`control_path`).  Two hives on different addresses so get
different sockets with no setting at all, and the commands find them by name;
`running_hives` lists them (and removes the sockets dead hives left).  A name says what
the user sees in the "listening on" line, so it needs no new word to learn; ``--name``
gives another one.  Two hives on the same address do not get this far: the second cannot
bind it (hive.supervisor.listeners checks that even with SO_REUSEPORT).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import logging
import os
import selectors
import socket
import stat
import struct
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import msgpack  # type: ignore[import-untyped]

__all__ = [
    "MAX_REQUEST_SIZE",
    "REQUEST_TIMEOUT",
    "ControlError",
    "ControlRequest",
    "ControlResponse",
    "ControlServer",
    "PeerCredentials",
    "RunningHive",
    "control_dir",
    "control_path",
    "peer_allowed",
    "request",
    "running_hives",
]

log = logging.getLogger("hive.control")

#: A client sending more than this many bytes is dropped.
MAX_REQUEST_SIZE = 64 * 1024
#: A client must complete its request (and later read its response) within this many seconds.
REQUEST_TIMEOUT = 10.0
#: Listen queue of the control socket: a few CLI invocations at a time, not a crowd.
BACKLOG = 16
#: Mode of the socket file: connecting needs write permission, so only our user may.
SOCKET_MODE = 0o600
#: Largest response `request` accepts; a status of a thousand workers is ~150 KiB.
MAX_RESPONSE_SIZE = 16 * 1024 * 1024

_SUFFIX = ".ctl"
#: How long `running_hives` waits for each hive's answer.
LIST_TIMEOUT = 3.0
# sockaddr_un holds 108 bytes with the final NUL; a longer name is shortened with a hash.
_MAX_PATH = 107
_TMP = "/tmp"  # not $TMPDIR: the CLI and the supervisor may not share an environment
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_READ_SIZE = 16 * 1024


class ControlError(Exception):
    """The control socket cannot be served or reached. The message is one line."""


class _NotRunning(ControlError):
    """Nothing listens at the control socket's path."""


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """A command from a client; answer it with `ControlServer.reply(client_id, ...)`."""

    client_id: int
    command: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ControlResponse:
    """The supervisor's answer: `data` when `ok`, else a one-line `error`."""

    ok: bool
    error: str | None
    data: Any


# -- where the socket lives -----------------------------------------------------------------


def control_dir() -> str:
    """Where control sockets live: ``$XDG_RUNTIME_DIR/hive``, or ``/tmp/hive-<uid>``
    without a runtime dir (the session store's directory too).

    The directory is checked when it exists (it must be a directory of ours that neither
    group nor others may write), so no side talks through a directory another user
    controls; `ControlServer.open` makes it, mode 0o700, when missing. Raises ControlError.
    """
    return _private_dir(_default_dir(), os.geteuid(), create=False)


def _default_dir() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "hive")
    return os.path.join(_TMP, f"hive-{os.geteuid()}")


def control_path(name: str) -> str:
    """The control socket of the hive called `name`, in `control_dir`.

    The file name is `name` percent-encoded (``unix:/run/a.sock`` has slashes); a name too
    long for a socket path is cut and given a hash of the whole, so it stays unique.
    """
    directory = control_dir()
    base = urllib.parse.quote(name, safe="[]:@")
    path = os.path.join(directory, base + _SUFFIX)
    if len(os.fsencode(path)) > _MAX_PATH:
        digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        room = _MAX_PATH - len(os.fsencode(directory)) - len(_SUFFIX) - len(digest) - 2
        path = os.path.join(directory, f"{base[: max(room, 0)]}-{digest}{_SUFFIX}")
    return path


def _private_dir(directory: str, uid: int, *, create: bool) -> str:
    """`directory` once it is safe: see `default_control_path`."""
    if create:
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass  # checked below, like any directory we did not just make
        except OSError as exc:
            raise ControlError(
                f"cannot create control directory {directory}: {_reason(exc)}"
            ) from exc
        else:
            # mkdir's mode went through the umask; a umask like 0o777 would lock us out.
            os.chmod(directory, 0o700)
    _check_private_dir(directory, uid)
    return directory


def _check_private_dir(directory: str, uid: int) -> None:
    try:
        # lstat: a symlink planted at the path must not lead us into someone else's directory.
        info = os.lstat(directory)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ControlError(f"cannot use control directory {directory}: {_reason(exc)}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise ControlError(f"refusing control directory {directory}: not a directory")
    if info.st_uid != uid:
        raise ControlError(
            f"refusing control directory {directory}: owned by uid {info.st_uid}, not {uid}"
        )
    if info.st_mode & 0o022:
        raise ControlError(
            f"refusing control directory {directory}: writable by group or others"
            f" (mode {stat.S_IMODE(info.st_mode):#o})"
        )


# -- peer credentials -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerCredentials:
    """Who is on the other end of a unix socket, as SO_PEERCRED tells."""

    pid: int
    uid: int
    gid: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> PeerCredentials:
        """Parse a ``struct ucred``; raises ValueError when `raw` is not one."""
        if len(raw) != _PEERCRED.size:
            raise ValueError(f"SO_PEERCRED gave {len(raw)} bytes, expected {_PEERCRED.size}")
        pid, uid, gid = _PEERCRED.unpack(raw)
        return cls(pid, uid, gid)


def peer_allowed(peer: PeerCredentials, own_uid: int) -> bool:
    """Whether `peer` may give orders: our own user, or root."""
    return peer.uid in (own_uid, 0)


def _peer_credentials(sock: socket.socket) -> PeerCredentials | None:
    """The peer's credentials; None where the platform has no SO_PEERCRED."""
    option: int | None = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        # The socket file's mode is then the only gate; it suffices on its own.
        return None
    return PeerCredentials.from_bytes(sock.getsockopt(socket.SOL_SOCKET, option, _PEERCRED.size))


# -- the server -----------------------------------------------------------------------------


class _Phase(Enum):
    READING = "reading"  # the request is not complete yet
    WAITING = "waiting"  # handed to the caller; waiting for reply()
    WRITING = "writing"  # the response is being sent
    CLOSED = "closed"


@dataclass(eq=False, slots=True)
class _Client:
    client_id: int
    sock: socket.socket
    unpacker: Any = field(
        default_factory=lambda: msgpack.Unpacker(max_buffer_size=MAX_REQUEST_SIZE, raw=False)
    )
    phase: _Phase = _Phase.READING
    received: int = 0
    outgoing: bytearray = field(default_factory=bytearray)
    #: When `check_deadlines` first saw the current reading or writing phase.
    since: float | None = None


class ControlServer:
    """The supervisor's end of the control socket; see the module docstring for the loop."""

    def __init__(self, listener: socket.socket, path: str) -> None:
        """Use `open`; this takes over a listening, non-blocking unix socket bound at `path`."""
        self.path = path
        self._listener = listener
        self._own_uid = os.geteuid()
        self._clients: dict[int, _Client] = {}  # by client_id
        self._by_fd: dict[int, _Client] = {}
        self._doomed: list[socket.socket] = []  # closed at the next watched()
        self._next_id = 1
        self._closed = False
        # close() removes the file only if it is still the one we bound, and only in the
        # process that bound it: a forked worker closing its inherited copy must leave it.
        self._owner_pid = os.getpid()
        info = os.lstat(path)
        self._file_id = (info.st_dev, info.st_ino)

    @classmethod
    def open(cls, path: str, *, backlog: int = BACKLOG) -> ControlServer:
        """Listen at `path` (mode 0o600, non-blocking).

        A stale socket file left by a dead hive is removed; a live one, or a path that is
        not a socket, raises ControlError. The default directory is made when missing (see
        `control_dir`).

        The socket is bound and listening under a temporary name first and then linked to
        `path`, which fails if the path exists: so the path never names a socket that
        refuses connections (which `running_hives` would take for a dead hive's), and of
        two hives started at once with one name, one is refused.
        """
        uid = os.geteuid()
        directory = os.path.dirname(os.path.abspath(path))
        if directory == _default_dir():
            _private_dir(directory, uid, create=True)
        _clear_path(path)
        temporary = os.path.join(directory, f".{os.getpid()}-{next(_TEMPORARY)}.ctl-new")
        _unlink_quietly(temporary)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                sock.bind(temporary)
                # Until listen() every connect is refused, so nobody gets in while the file
                # still has the looser mode the umask gave it.
                os.chmod(temporary, SOCKET_MODE)
                sock.listen(backlog)
                sock.setblocking(False)
                try:
                    os.link(temporary, path)
                except FileExistsError:
                    _clear_path(path)  # raises if a live hive took it meanwhile
                    os.link(temporary, path)
            finally:
                _unlink_quietly(temporary)
            return cls(sock, path)
        except BaseException as exc:
            sock.close()
            if isinstance(exc, OSError):
                raise ControlError(f"cannot create control socket {path}: {_reason(exc)}") from exc
            raise

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fileno(self) -> int:
        """The listening socket: call `accept` when it is readable."""
        return self._listener.fileno()

    def accept(self) -> None:
        """Accept every pending connection; turn away other users' (logged as a warning)."""
        while True:
            try:
                sock, _ = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                # EMFILE and the like: leave the rest in the backlog for the next round.
                log.warning("control socket: cannot accept: %s", _reason(exc))
                return
            try:
                peer = _peer_credentials(sock)
            except (OSError, ValueError) as exc:
                log.warning("control socket: refused a connection: no peer credentials: %s", exc)
                sock.close()
                continue
            if peer is not None and not peer_allowed(peer, self._own_uid):
                log.warning(
                    "control socket: refused a connection from pid %d uid %d"
                    " (only uid %d and root may control this hive)",
                    peer.pid,
                    peer.uid,
                    self._own_uid,
                )
                sock.close()
                continue
            sock.setblocking(False)
            client = _Client(self._next_id, sock)
            self._next_id += 1
            self._clients[client.client_id] = client
            self._by_fd[sock.fileno()] = client

    def watched(self) -> dict[int, int]:
        """Client fds to watch and their `selectors` events; call once per loop iteration.

        The listening socket is not included. Sockets of finished clients are closed here.
        """
        for sock in self._doomed:
            sock.close()
        self._doomed.clear()
        return {
            fd: selectors.EVENT_WRITE if client.phase is _Phase.WRITING else selectors.EVENT_READ
            for fd, client in self._by_fd.items()
        }

    def handle(self, fd: int, readable: bool, writable: bool) -> list[ControlRequest]:
        """Serve client `fd` after the selector's report; returns requests now complete.

        An fd that is no longer ours (a client that just left) is ignored.
        """
        client = self._by_fd.get(fd)
        if client is None:
            return []
        if writable and client.phase is _Phase.WRITING:
            self._flush(client)
        if readable and client.phase in (_Phase.READING, _Phase.WAITING):
            return self._read(client)
        return []

    def reply(self, client_id: int, ok: bool, data: Any = None, error: str | None = None) -> None:
        """Answer request `client_id`; the connection closes once the answer is sent.

        A client that has left meanwhile (or was already answered) is ignored.
        """
        client = self._clients.get(client_id)
        if client is None or client.phase is not _Phase.WAITING:
            log.debug("control socket: client %d has left; reply dropped", client_id)
            return
        try:
            payload = _pack({"ok": ok, "error": error, "data": data})
        except (TypeError, ValueError, OverflowError):
            log.exception("control socket: cannot encode the answer to %d", client_id)
            payload = _pack(
                {"ok": False, "error": "internal error: unencodable answer", "data": None}
            )
        self._send(client, payload)

    def check_deadlines(self, now: float) -> None:
        """Drop clients slower than REQUEST_TIMEOUT; call about once a second.

        A deadline starts at the first call that sees the client reading (or writing), so a
        client is dropped between REQUEST_TIMEOUT and REQUEST_TIMEOUT plus one interval late.
        Clients waiting for a `reply` have no deadline.
        """
        for client in list(self._clients.values()):
            if client.phase not in (_Phase.READING, _Phase.WRITING):
                continue
            if client.since is None:
                client.since = now
            elif now - client.since >= REQUEST_TIMEOUT:
                log.warning(
                    "control socket: dropped client %d: %s",
                    client.client_id,
                    "no complete request" if client.phase is _Phase.READING else "answer unread",
                )
                self._drop(client)

    def close(self) -> None:
        """Close every socket (unanswered clients get no answer) and remove the socket file.

        Safe to call twice.
        """
        if self._closed:
            return
        self._close_sockets()
        if os.getpid() != self._owner_pid:
            return
        with contextlib.suppress(OSError):
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == self._file_id:
                os.unlink(self.path)

    def close_in_child(self) -> None:
        """In a forked child: close the inherited sockets, leave the socket file alone.

        Otherwise the child's copy of the listener would outlive the supervisor (a new hive
        would find the path "running") and clients would not see their connection close.
        """
        self._close_sockets()

    def _close_sockets(self) -> None:
        self._closed = True
        for client in list(self._clients.values()):
            self._drop(client)
        for sock in self._doomed:
            sock.close()
        self._doomed.clear()
        self._listener.close()

    # -- per client ---------------------------------------------------------------------

    def _read(self, client: _Client) -> list[ControlRequest]:
        try:
            data = client.sock.recv(_READ_SIZE)
        except BlockingIOError:
            return []
        except OSError:
            self._drop(client)
            return []
        if not data:
            # The client hung up; one that was waiting gave up, and its reply is dropped.
            self._drop(client)
            return []
        if client.phase is _Phase.WAITING:
            self._fail(client, "bad request: one request per connection")
            return []
        client.received += len(data)
        if client.received > MAX_REQUEST_SIZE:
            log.warning(
                "control socket: dropped client %d: request over %d bytes",
                client.client_id,
                MAX_REQUEST_SIZE,
            )
            self._drop(client)
            return []
        client.unpacker.feed(data)
        try:
            message = client.unpacker.unpack()
        except msgpack.OutOfData:
            return []
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            detail = f" ({exc})" if str(exc) else ""
            self._fail(client, f"bad request: not valid msgpack{detail}")
            return []
        if client.unpacker.tell() != client.received:
            self._fail(client, "bad request: one request per connection")
            return []
        try:
            command, args = _parse_request(message)
        except ValueError as exc:
            self._fail(client, f"bad request: {exc}")
            return []
        client.phase = _Phase.WAITING
        client.since = None
        return [ControlRequest(client.client_id, command, args)]

    def _fail(self, client: _Client, error: str) -> None:
        log.warning("control socket: client %d: %s", client.client_id, error)
        self._send(client, _pack({"ok": False, "error": error, "data": None}))

    def _send(self, client: _Client, payload: bytes) -> None:
        client.phase = _Phase.WRITING
        client.since = None
        client.outgoing += payload
        self._flush(client)

    def _flush(self, client: _Client) -> None:
        while client.outgoing:
            try:
                sent = client.sock.send(client.outgoing)
            except BlockingIOError:
                return  # the rest goes when the loop reports the socket writable
            except OSError:
                self._drop(client)
                return
            del client.outgoing[:sent]
        self._drop(client)

    def _drop(self, client: _Client) -> None:
        if client.phase is _Phase.CLOSED:
            return
        client.phase = _Phase.CLOSED
        del self._clients[client.client_id]
        del self._by_fd[client.sock.fileno()]
        self._doomed.append(client.sock)


def _parse_request(message: object) -> tuple[str, dict[str, Any]]:
    """(command, args) of a decoded request; ValueError says what is wrong, in one line."""
    if not isinstance(message, dict):
        raise ValueError(f"expected a map, got {type(message).__name__}")
    command = message.get("command")
    if not isinstance(command, str) or not command:
        raise ValueError("'command' must be a non-empty string")
    args = message.get("args", {})
    if not isinstance(args, dict):
        raise ValueError(f"'args' must be a map, got {type(args).__name__}")
    if not all(isinstance(key, str) for key in args):
        raise ValueError("the keys of 'args' must be strings")
    return command, args


def _clear_path(path: str) -> None:
    """Remove a stale socket at `path`; refuse a live one or any other file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ControlError(f"cannot use control socket {path}: {_reason(exc)}") from exc
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"cannot use control socket {path}: path exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Non-blocking: a live hive with a full backlog answers EAGAIN at once, not after a wait.
    probe.setblocking(False)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        _unlink_quietly(path)
        return
    except FileNotFoundError:
        return  # gone meanwhile
    except BlockingIOError:
        pass  # alive, and busy
    except OSError as exc:
        raise ControlError(f"cannot use control socket {path}: {_reason(exc)}") from exc
    finally:
        probe.close()
    raise ControlError(
        f"another hive is running (control socket {path}); stop it, or give this one"
        " another --name (or --control path)"
    )


_TEMPORARY = itertools.count(1)


# -- the running hives ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunningHive:
    """A hive found in `control_dir`: its status, or why it did not give one."""

    path: str
    #: The "status" answer's data (name, pid, urls, workers, ...), or None.
    status: dict[str, Any] | None
    error: str | None = None

    @property
    def name(self) -> str:
        """The hive's name, from its answer, else from its socket's file name."""
        if self.status is not None and isinstance(self.status.get("name"), str):
            return str(self.status["name"])
        return urllib.parse.unquote(os.path.basename(self.path).removesuffix(_SUFFIX))


def running_hives(directory: str | None = None) -> list[RunningHive]:
    """Every hive with a control socket in `directory` (`control_dir`), by name.

    Each is asked for its status, for at most LIST_TIMEOUT seconds.  A socket nobody
    listens on any more (a hive that was killed) is removed; a hive that does not answer
    in time is listed with the error.
    """
    directory = directory or control_dir()
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ControlError(f"cannot list control directory {directory}: {_reason(exc)}") from exc
    hives = []
    for entry in entries:
        if not entry.name.endswith(_SUFFIX) or entry.name.startswith("."):
            continue
        with contextlib.suppress(OSError):
            if not stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode):
                continue
        try:
            response = request(entry.path, "status", timeout=LIST_TIMEOUT)
        except _NotRunning:
            _unlink_stale(entry.path)
            continue
        except ControlError as exc:
            hives.append(RunningHive(entry.path, None, str(exc)))
            continue
        if response.ok and isinstance(response.data, dict):
            hives.append(RunningHive(entry.path, response.data))
        else:
            hives.append(RunningHive(entry.path, None, response.error or "malformed answer"))
    return sorted(hives, key=lambda hive: hive.name)


def _unlink_stale(path: str) -> None:
    """Remove a socket that refused a connection, unless a live one replaced it since."""
    try:
        before = os.lstat(path).st_ino
    except OSError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        with contextlib.suppress(OSError):
            if os.lstat(path).st_ino == before:
                os.unlink(path)
    except OSError:
        pass
    finally:
        probe.close()


# -- the client -----------------------------------------------------------------------------


def request(
    path: str, command: str, args: Mapping[str, Any] | None = None, timeout: float = 60.0
) -> ControlResponse:
    """Send one command to the hive listening at `path` and return its answer.

    Blocks for at most `timeout` seconds in all. Raises ControlError when no hive runs
    there, when it does not answer in time, or when the answer is malformed.
    """
    deadline = time.monotonic() + timeout
    payload = _pack({"command": command, "args": dict(args or {})})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.settimeout(timeout)
            try:
                sock.connect(path)
            except FileNotFoundError:
                raise _NotRunning(
                    f"no hive is running (control socket {path} does not exist)"
                ) from None
            except ConnectionRefusedError:
                raise _NotRunning(
                    f"no hive is running (control socket {path} refuses connections)"
                ) from None
            sock.sendall(payload)
            message = _receive(sock, deadline)
        except TimeoutError:
            raise ControlError(
                f"hive did not answer within {timeout:g} s (control socket {path})"
            ) from None
        except OSError as exc:
            raise ControlError(f"cannot talk to hive at {path}: {_reason(exc)}") from exc
    return _parse_response(message, path)


def _receive(sock: socket.socket, deadline: float) -> object:
    unpacker = msgpack.Unpacker(max_buffer_size=MAX_RESPONSE_SIZE, raw=False)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        data = sock.recv(64 * 1024)
        if not data:
            raise ControlError("hive closed the control connection without answering")
        try:
            unpacker.feed(data)
            return unpacker.unpack()
        except msgpack.OutOfData:
            continue
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise ControlError(f"malformed answer from hive: not valid msgpack ({exc})") from exc


def _parse_response(message: object, path: str) -> ControlResponse:
    if (
        not isinstance(message, dict)
        or not isinstance(message.get("ok"), bool)
        or not isinstance(message.get("error"), str | None)
    ):
        raise ControlError(f"malformed answer from hive (control socket {path})")
    return ControlResponse(message["ok"], message.get("error"), message.get("data"))


# -- helpers --------------------------------------------------------------------------------


def _pack(message: object) -> bytes:
    packed: bytes = msgpack.packb(message)
    return packed


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _reason(exc: OSError) -> str:
    """'permission denied' from an OSError, for one-line messages."""
    if exc.errno == errno.ENAMETOOLONG or (exc.errno is None and "too long" in str(exc)):
        return "path too long for a unix socket"
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]
