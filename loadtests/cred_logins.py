"""Password hashing off the event loop: other requests' latency while argon2id logins pour in.

    .venv/bin/python -m loadtests.cred_logins --logins 10000
    .venv/bin/python -m loadtests.cred_logins --logins 300 --on-loop     # the contrast

Against ``hive run --workers 1``: a probe client sends a small request every
``--probe-interval`` seconds on a kept-alive connection and records each latency, while
``--login-clients`` clients send ``--logins`` Basic logins with the right password to a
page behind ``HashedPasswordDB`` (argon2id, m=19 MiB, t=2, p=1 by default, OWASP's
first choice; one verifying thread, the default). The logins come in windows of
``--window`` seconds, on and off by turns, so that the probe's latencies with and
without logins are taken side by side, under the same load from whatever else the
machine runs (the first half second of each window is left out). Reports the probe's
p50/p99 in both, their ratio (the target: p99 with logins at most 2x without), the
logins' rate and the statuses seen. ``--on-loop`` verifies on the event loop instead, to
show what the threads buy. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import statistics
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

from loadtests.common import Hive, running_hive

APP = """
from zope.interface import implementer

from hive.cred.checkers import HashedPasswordDB
from hive.cred.portal import IRealm, Portal
from hive.guard import BasicCredentialFactory, HTTPAuthSessionWrapper
from hive.resource import IResource, Resource


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request):
        return b"hello"


@implementer(IRealm)
class Realm:
    def requestAvatar(self, avatarId, mind, *interfaces):
        return IResource, Hello(), lambda: None


class OnTheLoop(HashedPasswordDB):
    '''What the threads save the loop from: the same checks, on the loop.'''

    async def requestAvatarId(self, credentials):
        from hive.cred import _hashing
        from hive.cred.error import UnauthorizedLogin

        hashed = self.users().get(credentials.username)
        if hashed and _hashing.verify_password(credentials.password, hashed):
            return credentials.username
        raise UnauthorizedLogin()


checker = (OnTheLoop if {on_loop!r} else HashedPasswordDB)({passwd!r}, threads={threads})
root = Resource()
root.putChild(b"hello", Hello())
guard = HTTPAuthSessionWrapper(
    Portal(Realm(), [checker]),
    [BasicCredentialFactory("load")],
    loginLimiter=None,
)
root.putChild(b"private", guard)
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Probe(threading.Thread):
    """Paced GET /hello on one connection; latencies in seconds."""

    def __init__(self, hive: Hive, interval: float) -> None:
        super().__init__(daemon=True)
        self.hive = hive
        self.interval = interval
        #: (when it started, latency), in perf_counter seconds.
        self.samples: list[tuple[float, float]] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.hive.port, timeout=30)
        next_at = time.perf_counter()
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                conn.request("GET", "/hello")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    self.errors += 1
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.hive.port, timeout=30)
                continue
            self.samples.append((started, time.perf_counter() - started))
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.perf_counter()))
        conn.close()


class Logins:
    """``clients`` kept-alive connections sending logins while ``on`` is set."""

    def __init__(self, hive: Hive, total: int, clients: int, password: str) -> None:
        token = base64.b64encode(f"user:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}
        self.hive = hive
        self.remaining = total
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.on = threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def done(self) -> bool:
        return not any(thread.is_alive() for thread in self.threads)

    def _client(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.hive.port, timeout=60)
        while True:
            self.on.wait()
            with self.lock:
                if self.remaining <= 0:
                    break
                self.remaining -= 1
            try:
                conn.request("GET", "/private", headers=self.headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.hive.port, timeout=60)
            with self.lock:
                self.statuses[status] += 1
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=10_000)
    parser.add_argument("--login-clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="verifying threads per worker")
    parser.add_argument("--memory-cost", type=int, default=19456, help="argon2 KiB")
    parser.add_argument("--time-cost", type=int, default=2)
    parser.add_argument("--window", type=float, default=5.0, help="seconds on, then off")
    parser.add_argument("--on-loop", action="store_true", help="verify on the event loop")
    parser.add_argument("--probe-interval", type=float, default=0.01)
    args = parser.parse_args()

    from hive.cred import _hashing

    workdir = Path(tempfile.mkdtemp(prefix="hive-cred-load-"))
    password = "correct horse battery staple"
    hashed = _hashing.hash_password(
        password.encode(), memory_cost=args.memory_cost, time_cost=args.time_cost, parallelism=1
    )
    passwd = workdir / "users.passwd"
    passwd.write_text(f"user:{hashed}\n")
    print(
        f"argon2id m={args.memory_cost} KiB t={args.time_cost} p=1,"
        f" {'on the event loop' if args.on_loop else f'{args.threads} thread(s)'}"
    )
    app = textwrap.dedent(APP).format(
        passwd=str(passwd), threads=args.threads, on_loop=args.on_loop
    )
    (workdir / "cred_load_app.py").write_text(app)
    options = ("--workers", "1", "--app-dir", str(workdir))
    with running_hive(*options, app="cred_load_app:root") as hive:
        warm = Logins(hive, 20, 2, password)  # the file read, the threads made
        warm.on.set()
        warm.start()
        while not warm.done():
            time.sleep(0.05)
        if warm.statuses[200] != 20:
            sys.exit(f"warm-up logins failed: {dict(warm.statuses)}")

        probe = Probe(hive, args.probe_interval)
        logins = Logins(hive, args.logins, args.login_clients, password)
        probe.start()
        logins.start()
        windows: list[tuple[float, float, bool]] = []  # (start, end, logins on)
        started = time.perf_counter()
        on = False
        # On and off by turns until the logins are done, then one more window off.
        while not logins.done() or on:
            on = not on and not logins.done()
            (logins.on.set if on else logins.on.clear)()
            begin = time.perf_counter()
            while time.perf_counter() - begin < args.window and not (on and logins.done()):
                time.sleep(0.05)
            windows.append((begin, time.perf_counter(), on))
        seconds = time.perf_counter() - started
        probe.stop.set()
        probe.join(30)

    def latencies(on: bool) -> list[float]:
        return [
            latency * 1000
            for when, latency in probe.samples
            if any(s + 0.5 <= when < e and o == on for s, e, o in windows)
        ]

    with_logins, without = latencies(True), latencies(False)

    def line(name: str, ms: list[float]) -> str:
        return (
            f"{name:<16} {len(ms):>7} requests  p50 {statistics.median(ms):7.2f} ms"
            f"  p99 {percentile(ms, 0.99):7.2f} ms  max {max(ms):7.2f} ms"
        )

    print(line("without logins", without))
    print(line("with logins", with_logins))
    login_seconds = sum(e - s for s, e, o in windows if o)
    print(
        f"logins: {args.logins} in {login_seconds:.1f} s of login windows"
        f" ({args.logins / login_seconds:.1f}/s; {seconds:.0f} s in all),"
        f" statuses {dict(sorted(logins.statuses.items()))}, probe errors {probe.errors}"
    )
    ratio = percentile(with_logins, 0.99) / percentile(without, 0.99)
    print(f"p99 ratio (with logins / without): {ratio:.2f}  (target <= 2.00)")


if __name__ == "__main__":
    main()
