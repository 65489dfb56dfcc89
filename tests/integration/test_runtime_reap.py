"""The supervisor's runtime reaps a worker only after reading what the worker said last."""

from __future__ import annotations

import os
import selectors
import socket
import time

from hive import _ipc as ipc
from hive.supervisor import state as sv
from hive.supervisor.runtime import Supervisor, _Channel


def test_a_workers_last_message_is_read_before_its_exit() -> None:
    """A worker that cannot start sends Failed (the reason) and exits at once; if the exit
    is seen first, the reason must not be lost with the closed channel."""
    runtime = Supervisor.__new__(Supervisor)
    runtime.channels = {}
    runtime.selector = selectors.DefaultSelector()
    seen: list[sv.Event] = []
    runtime._dispatch = seen.append  # type: ignore[method-assign, assignment]
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        theirs.sendall(ipc.encode(ipc.Failed(error="ImportError: no module named nowhere")))
        os._exit(3)
    theirs.close()
    channel = _Channel(ours, pid)
    runtime.channels[pid] = channel
    runtime.selector.register(ours, selectors.EVENT_READ, channel)
    # Wait for the exit without reaping it: _reap must find it.
    deadline = time.monotonic() + 10
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    runtime._reap()
    assert [type(event) for event in seen] == [sv.MessageReceived, sv.Exited]
    received, exited = seen
    assert isinstance(received, sv.MessageReceived) and isinstance(exited, sv.Exited)
    assert received.message == ipc.Failed(error="ImportError: no module named nowhere")
    assert (exited.pid, exited.status) == (pid, 3)
    assert pid not in runtime.channels
