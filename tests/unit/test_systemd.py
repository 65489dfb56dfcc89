"""systemd's protocols, against real unix sockets."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from hive.supervisor.systemd import inherited_sockets, notify


def test_notify_sends_a_datagram(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(path)
        assert notify("READY=1", {"NOTIFY_SOCKET": path})
        assert receiver.recv(100) == b"READY=1"


def test_notify_without_systemd_does_nothing() -> None:
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": "/nonexistent/socket"})


def test_inherited_sockets_only_for_this_pid() -> None:
    env = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"}
    assert inherited_sockets(env) == []
    assert inherited_sockets({}) == []
