"""The supervisor's loop: wait, turn what happened into events, carry out the actions.

Read top to bottom: `run` binds nothing itself (the listening sockets come bound), starts
the control socket, and loops: select on the signal wake-up pipe, every worker channel and
the control socket; reap children; tick twice a second.  Every decision is made by
`hive.supervisor.state.handle`; this module only forks, kills, sends and replies.
Signal handlers do nothing: the wake-up pipe carries the signal numbers to the loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable

from hive import _ipc as ipc
from hive._compiled import build
from hive._config import Config
from hive._logs import reopen_log_files
from hive.supervisor import state as sv
from hive.supervisor.control import ControlServer
from hive.supervisor.listeners import SocketGroups
from hive.supervisor.metrics import exposition, listen_queue, wants_openmetrics
from hive.supervisor.ops import OpsResponse, OpsServer, json_response, text_response
from hive.supervisor.systemd import notify
from hive.supervisor.watch import Sources, Watcher

__all__ = ["Supervisor"]

log = logging.getLogger("hive.supervisor")

TICK = 0.5
_SIGNALS = (
    signal.SIGHUP,
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGCHLD,
    signal.SIGUSR1,
)
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class _Channel:
    """The supervisor's end of one worker's socketpair."""

    def __init__(self, sock: socket.socket, pid: int) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.pid = pid
        self.decoder = ipc.Decoder()
        self.outgoing = bytearray()
        #: The selector watches for writability (there are bytes it could not send yet).
        self.watching_write = False

    def read(self) -> list[object] | None:
        """Messages that arrived; None when the worker closed its end."""
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            return None
        if not data:
            return None
        return list(self.decoder.feed(data))

    def send(self, message: ipc.Message) -> None:
        self.outgoing += ipc.encode(message)
        self.flush()

    def flush(self) -> None:
        while self.outgoing:
            try:
                sent = self.sock.send(self.outgoing)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.outgoing.clear()
                return
            del self.outgoing[:sent]


class Supervisor:
    """Keeps ``config.workers`` workers serving on ``groups``' sockets until told to stop."""

    #: Development mode's file watcher, while it runs.
    watcher: Watcher | None = None

    def __init__(
        self,
        config: Config,
        groups: SocketGroups,
        control_path: str,
        ops_socket: socket.socket | None = None,
        reread: Callable[[], Config] | None = None,
        *,
        name: str = "",
        sources: Sources | None = None,
    ) -> None:
        self.config = config
        #: What `hive list` and ``--name`` call this hive (see hive.supervisor.control).
        self.name = name
        self.started_at = time.monotonic()
        #: Development mode: what the file watcher watches; None for no watcher.
        self.sources = sources
        self.watcher = None
        self.reread = reread
        self.groups = groups
        self.ops = OpsServer(ops_socket, self._ops_route) if ops_socket is not None else None
        self.state = sv.SupervisorState.new(supervisor_config(config))
        self.control = ControlServer.open(control_path)
        self.selector = selectors.DefaultSelector()
        self.channels: dict[int, _Channel] = {}
        self.events: deque[sv.Event] = deque()
        self.exit: sv.Exit | None = None
        self._wakeup_r, self._wakeup_w = os.pipe()

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> sv.Exit:
        """Serve until the decisions say exit; return how."""
        self._install_signals()
        self.selector.register(self._wakeup_r, selectors.EVENT_READ, "signal")
        self.selector.register(self.control.fileno(), selectors.EVENT_READ, "control")
        if self.ops is not None:
            self.selector.register(self.ops.fileno(), selectors.EVENT_READ, "ops")
        if self.sources is not None:
            self.watcher = Watcher.start(self.sources, lambda: self._become_child([]))
            self.selector.register(self.watcher.fileno(), selectors.EVENT_READ, "watch")
            log.info(
                "development mode: a change to the sources in %s reloads", _shown(self.sources)
            )
        self._dispatch(sv.Boot(epoch=int(time.time() * 1000)))
        next_tick = time.monotonic() + TICK
        try:
            while self.exit is None:
                timeout = max(0.0, next_tick - time.monotonic())
                for key, mask in self.selector.select(timeout):
                    self._ready(key, mask)
                self._reap()
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + TICK
                    self.control.check_deadlines(now)
                    self._watch_control()
                    if self.ops is not None:
                        self.ops.check_deadlines(now)
                        self._sync("ops-client", self.ops.watched())
                    self._dispatch(sv.Tick())
        finally:
            self._shutdown()
        return self.exit

    def _ready(self, key: selectors.SelectorKey, mask: int) -> None:
        tag = key.data
        if tag == "signal":
            with contextlib.suppress(BlockingIOError, InterruptedError):
                for signum in os.read(self._wakeup_r, 64):
                    if signum == signal.SIGUSR1:
                        reopen_log_files()
                    if signum == signal.SIGHUP and self._reread_config() is not None:
                        continue
                    if signum != signal.SIGCHLD:
                        self._dispatch(sv.SignalReceived(signum))
        elif tag == "control":
            self.control.accept()
            self._watch_control()
        elif tag == "watch" and self.watcher is not None:
            batches = self.watcher.read()
            if batches is None:
                self._forget_watcher("its pipe closed")
                return
            for paths in batches:
                self._sources_changed(paths)
        elif tag == "ops" and self.ops is not None:
            self.ops.accept(time.monotonic())
            self._sync("ops-client", self.ops.watched())
        elif tag == "ops-client" and self.ops is not None:
            self.ops.handle(
                key.fd, bool(mask & selectors.EVENT_READ), bool(mask & selectors.EVENT_WRITE)
            )
            self._sync("ops-client", self.ops.watched())
        elif tag == "client":
            requests = self.control.handle(
                key.fd, bool(mask & selectors.EVENT_READ), bool(mask & selectors.EVENT_WRITE)
            )
            self._watch_control()
            for request in requests:
                if request.command == "reload":
                    error = self._reread_config()
                    if error is not None:
                        self.control.reply(request.client_id, False, error=error)
                        self._watch_control()
                        continue
                self._dispatch(sv.Control(request.client_id, request.command, request.args))
        elif isinstance(tag, _Channel):
            channel = tag
            if mask & selectors.EVENT_WRITE:
                channel.flush()
                self._watch_channel(channel)
            if mask & selectors.EVENT_READ:
                messages = channel.read()
                if messages is None:
                    self._forget(channel)
                    return
                for message in messages:
                    self._dispatch(sv.MessageReceived(channel.pid, message))

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.watcher is not None and pid == self.watcher.pid:
                self._forget_watcher(f"exit status {os.waitstatus_to_exitcode(status)}")
                continue
            channel = self.channels.get(pid)
            if channel is not None:
                # What the worker said before it exited comes first: a worker that cannot
                # start sends why (Failed) and exits, and both may be seen in one round.
                while messages := channel.read():
                    for message in messages:
                        self._dispatch(sv.MessageReceived(pid, message))
                self._forget(channel)
            self._dispatch(sv.Exited(pid, os.waitstatus_to_exitcode(status)))

    def _sources_changed(self, paths: list[str]) -> None:
        """Development mode: reload with the sources on disk (and the settings, again)."""
        here = os.getcwd()
        shown = tuple(
            os.path.relpath(path, here) if path.startswith(os.path.join(here, "")) else path
            for path in paths
        )
        if self._reread_config() is None:
            self._dispatch(sv.SourcesChanged(shown))

    def _forget_watcher(self, why: str) -> None:
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(watcher.fileno())
            watcher.stop()
            if self.exit is None:
                log.error("the file watcher stopped (%s); changes no longer reload", why)

    def _reread_config(self) -> str | None:
        """Before a reload: read the settings again; the error that stops the reload, if any.

        The new settings reach the new workers, and the supervisor's limits (timeouts,
        recycling) apply from now on.  What the supervisor itself holds (the listening
        addresses, the control socket, the ops endpoint, the pid file, the error log) stays
        as it was started; the number of workers changes with ``hive scale``.
        """
        if self.reread is None:
            return None
        try:
            new = self.reread()
        except Exception as exc:
            self._dispatch(sv.ReloadRefused(str(exc)))
            return f"reload refused: {exc}"
        old = self.config
        self.state.config = dataclasses.replace(
            supervisor_config(new),
            workers=self.state.config.workers,
            socket_mode=self.state.config.socket_mode,
        )
        self.config = dataclasses.replace(
            new,
            binds=old.binds,
            backlog=old.backlog,
            socket_mode=old.socket_mode,
            workers=old.workers,
            control=old.control,
            pid_file=old.pid_file,
            metrics_bind=old.metrics_bind,
            error_log=old.error_log,
            reload=old.reload,
            reload_dirs=old.reload_dirs,
        )
        return None

    # -- decisions and actions -------------------------------------------------------------

    def _dispatch(self, event: sv.Event) -> None:
        self.events.append(event)
        if len(self.events) > 1:
            return  # an outer call is working through the queue
        while self.events:
            current = self.events[0]
            for action in sv.handle(self.state, current, time.monotonic()):
                self._act(action)
            self.events.popleft()

    def _act(self, action: sv.Action) -> None:
        if isinstance(action, sv.Spawn):
            self._spawn(action)
        elif isinstance(action, sv.Send):
            channel = self.channels.get(action.pid)
            if channel is not None:
                channel.send(action.message)
                self._watch_channel(channel)
        elif isinstance(action, sv.Kill):
            with contextlib.suppress(ProcessLookupError):
                os.kill(action.pid, action.signum)
        elif isinstance(action, sv.Reply):
            data = action.data
            if isinstance(data, dict) and "workers" in data:
                data = {**data, **self._identity()}
            self.control.reply(action.client, action.ok, data=data, error=action.error)
            self._watch_control()
        elif isinstance(action, sv.Log):
            log.log(_LEVELS.get(action.level, logging.INFO), "%s", action.text)
        elif isinstance(action, sv.Notify):
            notify(action.status)
        elif isinstance(action, sv.Exit) and self.exit is None:
            self.exit = action

    def _spawn(self, action: sv.Spawn) -> None:
        try:
            sockets = self.groups.sockets(action.groups)
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError as exc:
            self.events.append(sv.SpawnFailed(action.token, str(exc)))
            return
        try:
            pid = os.fork()
        except OSError as exc:
            ours.close()
            theirs.close()
            self.events.append(sv.SpawnFailed(action.token, f"fork: {exc}"))
            return
        if pid == 0:
            code = 1
            try:
                ours.close()
                self._become_worker(sockets)
                from hive.worker.main import worker_main

                code = worker_main(self.config, theirs, sockets, action.slot, action.generation)
            except BaseException:
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        theirs.close()
        channel = _Channel(ours, pid)
        self.channels[pid] = channel
        self.selector.register(ours, selectors.EVENT_READ, channel)
        self.events.append(sv.Spawned(action.token, pid))

    def _become_worker(self, sockets: list[socket.socket]) -> None:
        """In a fresh child: drop what belongs to the supervisor."""
        self._become_child(sockets)

    def _become_child(self, sockets: list[socket.socket]) -> None:
        """In a fresh child (a worker, the watcher): drop what belongs to the supervisor;
        keep the listening ``sockets``."""
        signal.set_wakeup_fd(-1)
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        self.selector.close()
        os.close(self._wakeup_r)
        os.close(self._wakeup_w)
        self.control.close_in_child()
        if self.ops is not None:
            self.ops.close_in_child()
        for channel in self.channels.values():
            channel.sock.close()
        self.channels.clear()
        if self.watcher is not None:
            os.close(self.watcher.fileno())
            self.watcher = None
        self.groups.close_in_child(sockets)

    # -- watching sockets --------------------------------------------------------------------

    def _watch_channel(self, channel: _Channel) -> None:
        writing = bool(channel.outgoing)
        if writing == channel.watching_write:
            return  # the bus sends many messages: no system call when nothing changes
        channel.watching_write = writing
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.modify(channel.sock, events, channel)

    def _watch_control(self) -> None:
        self._sync("client", self.control.watched())

    def _sync(self, tag: str, wanted: dict[int, int]) -> None:
        """Make the selector watch exactly ``wanted`` (fd -> events) under ``tag``."""
        registered = {key.fd for key in self.selector.get_map().values() if key.data == tag}
        for fd in registered - wanted.keys():
            self.selector.unregister(fd)
        for fd, events in wanted.items():
            if fd in registered:
                self.selector.modify(fd, events, tag)
            else:
                self.selector.register(fd, events, tag)

    # -- the ops endpoint --------------------------------------------------------------------

    def _ops_route(
        self, method: bytes, path: bytes, headers: list[tuple[bytes, bytes]]
    ) -> OpsResponse:
        state = self.state
        if path == b"/healthz":
            return text_response(200, "ok\n")
        if path == b"/readyz":
            ready = sum(w.state is sv.WorkerState.READY for w in state.workers.values())
            if ready:
                return text_response(200, f"ready: {ready} worker(s)\n")
            return text_response(503, "no worker is ready\n")
        if path == b"/status":
            return json_response(200, {**sv.status(state), **self._identity()})
        if path == b"/metrics":
            accept = next((v for n, v in headers if n == b"accept"), b"").decode("latin-1")
            queues = [
                (url, *depth)
                for url, sock in self.groups.listeners()
                if (depth := listen_queue(sock)) is not None
            ]
            body, content_type = exposition(
                state,
                now=time.monotonic(),
                wall_now=time.time(),
                openmetrics=wants_openmetrics(accept),
                listen_queues=queues,
            )
            return OpsResponse(200, content_type.encode("latin-1"), body)
        return text_response(404, "not found: try /metrics, /healthz, /readyz or /status\n")

    def _identity(self) -> dict[str, object]:
        """Who this hive is, for status answers (`hive list` shows it)."""
        config = self.config
        return {
            "name": self.name,
            "pid": os.getpid(),
            "urls": self.groups.urls(tls=config.certfile is not None),
            "app": config.app or (f"--path {config.path}" if config.path else ""),
            "control": self.control.path,
            # Status times are on the monotonic clock; the tables show uptimes.
            "now": time.monotonic(),
            "started_at": self.started_at,
            "build": build(),
        }

    def _forget(self, channel: _Channel) -> None:
        if self.channels.pop(channel.pid, None) is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(channel.sock)
            channel.sock.close()

    # -- set-up and tear-down ----------------------------------------------------------------

    def _install_signals(self) -> None:
        os.set_blocking(self._wakeup_w, False)
        os.set_blocking(self._wakeup_r, False)
        signal.set_wakeup_fd(self._wakeup_w, warn_on_full_buffer=False)
        for signum in _SIGNALS:
            # The handler only lets the wake-up byte be written; the loop does the work.
            signal.signal(signum, _noop)

    def _shutdown(self) -> None:
        """Leave no worker behind: close channels (workers drain), wait, then kill."""
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.stop()
            _wait_for(watcher.pid)
        for channel in list(self.channels.values()):
            self._forget(channel)
        deadline = time.monotonic() + 10.0
        while self.state.workers and time.monotonic() < deadline:
            self._reap_quietly()
            time.sleep(0.05)
        for pid in list(self.state.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reap_quietly()
        signal.set_wakeup_fd(-1)
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        self.control.close()
        if self.ops is not None:
            self.ops.close()
        self.selector.close()
        os.close(self._wakeup_r)
        os.close(self._wakeup_w)

    def _reap_quietly(self) -> None:
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.state.workers.clear()
                return
            if pid == 0:
                return
            self.state.workers.pop(pid, None)


def supervisor_config(config: Config) -> sv.SupervisorConfig:
    """The part of the settings the supervisor's decisions use."""
    return sv.SupervisorConfig(
        workers=config.workers,
        timeout=config.timeout,
        graceful_timeout=config.graceful_timeout,
        boot_timeout=config.boot_timeout,
        max_requests=config.max_requests,
        max_requests_jitter=config.max_requests_jitter,
        max_memory=config.max_memory,
        socket_mode=config.socket_mode,
        dev=config.reload,
    )


def _shown(sources: Sources) -> str:
    here = os.path.join(os.getcwd(), "")
    names = [
        os.path.relpath(path) if path.startswith(here) or path == here[:-1] else path
        for path in (*sources.roots, *sources.files)
    ]
    return ", ".join(name if name != "." else "the current directory" for name in names)


def _wait_for(pid: int, timeout: float = 5.0) -> None:
    """Reap child `pid`, told to exit; SIGKILL it past `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        if time.monotonic() >= deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.02)


def _noop(signum: int, frame: object) -> None:
    pass
