"""systemd integration: readiness notification (Type=notify) and socket activation.

Both are plain protocols, spoken here without libsystemd: a datagram to $NOTIFY_SOCKET, and
listening sockets passed as file descriptors 3, 4, ... with $LISTEN_FDS and $LISTEN_PID.
"""

from __future__ import annotations

import os
import socket

__all__ = ["SD_LISTEN_FDS_START", "inherited_sockets", "notify"]

SD_LISTEN_FDS_START = 3


def notify(message: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``message`` (e.g. "READY=1") to systemd; False when not run by it."""
    env = os.environ if environ is None else environ
    path = env.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(message.encode("utf-8"))
    except OSError:
        return False
    return True


def inherited_sockets(environ: dict[str, str] | None = None) -> list[socket.socket]:
    """The listening sockets systemd passed to this process (socket activation), if any.

    The variables are removed from the environment, so workers do not take them for theirs.
    """
    env = os.environ if environ is None else environ
    if env.get("LISTEN_PID") != str(os.getpid()):
        return []
    try:
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        env.pop(name, None)
    sockets = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets
