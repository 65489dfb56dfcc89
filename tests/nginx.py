"""A real nginx (Debian's package) for tests: on loopback ports, with a config the test
writes, everything it writes (pid file, logs, temporary files) in a directory of its own,
in the foreground (``daemon off``), stopped by pid.  Never the system's /etc/nginx.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0

_MAIN = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
lock_file {dir}/nginx.lock;
error_log {dir}/error.log info;

events {{
    worker_connections 256;
}}

http {{
    log_format test '$remote_addr "$request" $status $request_length $upstream_addr';
    access_log {dir}/access.log test;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

{http}
}}
"""


def executable() -> str | None:
    """nginx's path: on PATH, or where Debian puts it (/usr/sbin, off a user's PATH)."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


def _children(pid: int) -> list[int]:
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except OSError:
        return []


def free_port() -> int:
    """A loopback port free now (nginx cannot listen on port 0 and say which it got)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """``Nginx(directory, http)`` with ``http(ports)`` the http block's servers; ``start``
    picks free ports, writes the config and waits until every port accepts."""

    def __init__(self, directory: Path, http: Callable[[list[int]], str], ports: int) -> None:
        self.dir = directory
        self.http = http
        self.count = ports
        self.ports: list[int] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = directory / "nginx.conf"
        self.access_log = directory / "access.log"
        self.error_log = directory / "error.log"

    def config(self, ports: list[int]) -> str:
        # As root the workers would become "nobody", who cannot write these directories.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
        return _MAIN.format(dir=self.dir, user=user, http=self.http(ports))

    def start(self) -> Nginx:
        binary = executable()
        assert binary is not None, "nginx is not installed (make tools installs it)"
        # Another process may take a free port before nginx binds it: try other ports.
        for _attempt in range(3):
            self.ports = [free_port() for _ in range(self.count)]
            self.conf.write_text(self.config(self.ports))
            self.error_log.write_text("")
            self.proc = subprocess.Popen(
                [binary, "-p", f"{self.dir}/", "-c", str(self.conf), "-e", str(self.error_log)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if self._wait_ready():
                return self
            in_use = "Address already in use" in self.errors()
            self.stop()
            if not in_use:
                break
        raise AssertionError(f"nginx did not start:\n{self.errors()}")

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        waiting = list(self.ports)
        while waiting and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", waiting[0]), timeout=1):
                    waiting.pop(0)
            except OSError:
                time.sleep(0.05)
        return not waiting

    def errors(self) -> str:
        text = self.error_log.read_text() if self.error_log.exists() else ""
        if self.proc is not None and self.proc.stderr is not None and self.proc.poll() is not None:
            text += self.proc.stderr.read().decode("utf-8", "replace")
        return text

    def access_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []

    def stop(self) -> None:
        """SIGTERM to the master (its pid), which stops its workers; if it does not go in
        time, SIGKILL to the workers it had (their pids) and to it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                for child in _children(proc.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()
