"""The supervisor's loop: wait, turn what happened into events, carry out the actions.

Read top to bottom: `run` binds nothing itself (the listening sockets come bound), starts
the control socket, and loops: select on the signal wake-up pipe, every worker channel and
the control socket; reap children; tick twice a second.  Every decision is made by
`hive.supervisor.state.handle`; this module only forks, kills, sends and replies.
Signal handlers do nothing: the wake-up pipe carries the signal numbers to the loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from collections import deque

from hive import ipc
from hive.config import Config
from hive.supervisor import state as sv
from hive.supervisor.control import ControlServer
from hive.supervisor.listeners import SocketGroups

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

    def __init__(self, config: Config, groups: SocketGroups, control_path: str) -> None:
        self.config = config
        self.groups = groups
        self.state = sv.SupervisorState.new(
            sv.SupervisorConfig(
                workers=config.workers,
                timeout=config.timeout,
                graceful_timeout=config.graceful_timeout,
                boot_timeout=config.boot_timeout,
                max_requests=config.max_requests,
                max_requests_jitter=config.max_requests_jitter,
                max_memory=config.max_memory,
                socket_mode=config.socket_mode,
            )
        )
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
        self._dispatch(sv.Boot())
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
                    self._dispatch(sv.Tick())
        finally:
            self._shutdown()
        return self.exit

    def _ready(self, key: selectors.SelectorKey, mask: int) -> None:
        tag = key.data
        if tag == "signal":
            with contextlib.suppress(BlockingIOError, InterruptedError):
                for signum in os.read(self._wakeup_r, 64):
                    if signum != signal.SIGCHLD:
                        self._dispatch(sv.SignalReceived(signum))
        elif tag == "control":
            self.control.accept()
            self._watch_control()
        elif tag == "client":
            requests = self.control.handle(
                key.fd, bool(mask & selectors.EVENT_READ), bool(mask & selectors.EVENT_WRITE)
            )
            self._watch_control()
            for request in requests:
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
            channel = self.channels.get(pid)
            if channel is not None:
                self._forget(channel)
            self._dispatch(sv.Exited(pid, os.waitstatus_to_exitcode(status)))

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
                # Status times are on the monotonic clock; the table shows uptimes.
                data = {**data, "pid": os.getpid(), "now": time.monotonic()}
            self.control.reply(action.client, action.ok, data=data, error=action.error)
            self._watch_control()
        elif isinstance(action, sv.Log):
            log.log(_LEVELS.get(action.level, logging.INFO), "%s", action.text)
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
        signal.set_wakeup_fd(-1)
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        self.selector.close()
        os.close(self._wakeup_r)
        os.close(self._wakeup_w)
        self.control.close_in_child()
        for channel in self.channels.values():
            channel.sock.close()
        self.channels.clear()
        self.groups.close_in_child(sockets)

    # -- watching sockets --------------------------------------------------------------------

    def _watch_channel(self, channel: _Channel) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if channel.outgoing else 0)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.modify(channel.sock, events, channel)

    def _watch_control(self) -> None:
        wanted = self.control.watched()
        registered = {key.fd for key in self.selector.get_map().values() if key.data == "client"}
        for fd in registered - wanted.keys():
            self.selector.unregister(fd)
        for fd, events in wanted.items():
            if fd in registered:
                self.selector.modify(fd, events, "client")
            else:
                self.selector.register(fd, events, "client")

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


def _noop(signum: int, frame: object) -> None:
    pass
