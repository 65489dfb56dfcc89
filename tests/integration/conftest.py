"""Real ``hive run`` processes on 127.0.0.1, started and stopped by pid, bounded in time."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (\S+)")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0


class HiveProcess:
    """A ``hive run`` child process; its stderr is collected as it is written."""

    def __init__(
        self,
        args: list[str],
        cwd: Path = ROOT,
        env: dict[str, str] | None = None,
        *,
        private_control: bool = True,
    ):
        self.workdir = Path(tempfile.mkdtemp(prefix="hive-test-"))
        #: The control socket, private to this process so that tests never meet (unless
        #: ``private_control`` is off: then hive's default, which ``env`` should make
        #: private with an XDG_RUNTIME_DIR of the test's own).
        self.control = str(self.workdir / "hive.ctl")
        defaults = ["--control", self.control] if private_control else []
        # --reload (development mode) defaults to one worker itself.
        if not any(arg in ("-w", "--workers", "--reload") for arg in args):
            defaults += ["--workers", "1"]
        self.args = [sys.executable, "-m", "hive", "run", *args, *defaults]
        self.proc = subprocess.Popen(
            self.args,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.pid = self.proc.pid
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout_lines)),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr_lines)),
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()
        self.urls: list[str] = []

    @staticmethod
    def _pump(stream: object, lines: list[str]) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            lines.append(raw.decode("utf-8", "replace"))

    def wait_listening(self, count: int = 1) -> list[str]:
        """Wait until ``count`` addresses are announced; fail with the output if not."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self.urls = [m.group(1) for line in self.stderr_lines if (m := LISTENING.search(line))]
            if len(self.urls) >= count:
                return self.urls
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise AssertionError(f"hive did not start: {self.output()}")

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def output(self) -> str:
        return "".join(self.stderr_lines) + "".join(self.stdout_lines)

    def wait_for_output(self, pattern: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stderr_lines + self.stdout_lines:
                if re.search(pattern, line):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"{pattern!r} not seen in: {self.output()}")

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signum)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not go in time; returns the exit status."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        for thread in self._threads:
            thread.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        return self.proc.returncode

    def ctl(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run ``hive ARGS --control <this process's socket>``."""
        return subprocess.run(
            [sys.executable, "-m", "hive", *args, "--control", self.control],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def hive_run() -> Iterator[object]:
    """Start ``hive run ARGS...`` and wait until it listens; stopped after the test."""
    started: list[HiveProcess] = []

    def start(*args: str, count: int = 1, cwd: Path = ROOT, wait: bool = True) -> HiveProcess:
        process = HiveProcess(list(args), cwd=cwd)
        started.append(process)
        if wait:
            process.wait_listening(count)
        return process

    yield start
    for process in started:
        process.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh socket and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


class RedisServer:
    """A real ``redis-server`` (the Debian package) on a loopback port, with a config
    written here: no persistence, nothing outside its temporary directory."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is not installed: `make tools` installs it")
        self.workdir = Path(tempfile.mkdtemp(prefix="hive-redis-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        for _attempt in range(5):
            self.port = _free_port()
            config = self.workdir / "redis.conf"
            config.write_text(
                f'bind 127.0.0.1\nport {self.port}\ndaemonize no\nsave ""\n'
                f"appendonly no\ndir {self.workdir}\nloglevel warning\n"
            )
            self.proc = subprocess.Popen(
                [binary, str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            if self._wait_ready():
                return
            self._kill()  # the port was taken in between: another one
        raise AssertionError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, db: int = 0) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=10)

    def _wait_ready(self) -> bool:
        import redis

        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                if self.client().ping():
                    return True
            except redis.ConnectionError:
                time.sleep(0.02)
        return False

    def _kill(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        self.proc = None

    def stop(self) -> None:
        self._kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session, stopped by pid at the end."""
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A Redis emptied for this test."""
    redis_server.client().flushall()
    return redis_server.url


def make_certificate(directory: Path, *names: str) -> tuple[Path, Path]:
    """A self-signed certificate (and its key) for localhost, 127.0.0.1 and ``names``,
    made by openssl in ``directory``: (certificate, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    alt = ",".join(["DNS:localhost", "IP:127.0.0.1", *(f"DNS:{name}" for name in names)])
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
            *("ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost"),
            *("-addext", f"subjectAltName={alt}", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1: (certificate, key)."""
    return make_certificate(tmp_path)
