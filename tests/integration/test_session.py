"""Sessions under ``hive run --workers 2``: one count whichever worker answers, through a
reload, and a new session once the old one expired."""

from __future__ import annotations

import http.client
import json
import os
import stat
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from hive.session import SQLiteStore
from tests.integration.conftest import HiveProcess

APP = """
import json
import os

from hive.resource import Resource
from hive.server import Site
from hive.session import Session


class Count(Resource):
    isLeaf = True

    def render_GET(self, request):
        session = request.getSession()
        session["visits"] = session.get("visits", 0) + 1
        request.setHeader(b"content-type", b"application/json")
        answer = {"visits": session["visits"], "pid": os.getpid(), "uid": session.uid.decode()}
        return json.dumps(answer).encode()


class Short(Session):
    sessionTimeout = 2.0


root = Count()
short = Site(Count())
short.sessionFactory = Short
"""


class Client:
    """http.client with a cookie jar; a new connection per request, so that the kernel
    spreads them over the workers' sockets."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[str] = []

    def get(self, path: str = "/") -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            headers = {}
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, (response.status, body)
            self.set_cookies = response.headers.get_all("Set-Cookie") or []
            for header in self.set_cookies:
                jar: SimpleCookie = SimpleCookie()
                jar.load(header)
                for name, morsel in jar.items():
                    self.cookies[name] = morsel.value
            answer: dict[str, Any] = json.loads(body)
            return answer
        finally:
            conn.close()


def start(hive_run: Any, tmp_path: Path, app: str) -> HiveProcess:
    (tmp_path / "counter.py").write_text(APP)
    server: HiveProcess = hive_run(
        app,
        "--bind",
        "127.0.0.1:0",
        "--workers",
        "2",
        "--app-dir",
        str(tmp_path),
        "--session-dir",
        str(tmp_path / "sessions"),
        "--no-access-log",
    )
    wait_ready(server, generation=1)
    return server


def wait_ready(server: HiveProcess, generation: int, timeout: float = 30.0) -> set[int]:
    """Wait until both workers of ``generation`` are ready, and only they; their pids."""
    deadline = time.monotonic() + timeout
    while True:
        result = server.ctl("status", "--json", timeout=30)
        assert result.returncode == 0, result.stderr + server.output()
        data = json.loads(result.stdout)
        workers = data["workers"]
        if (
            data["generation"] == generation
            and len(workers) == 2
            and all(w["state"] == "ready" and w["generation"] == generation for w in workers)
        ):
            return {w["pid"] for w in workers}
        assert time.monotonic() < deadline, f"workers not ready: {data}\n{server.output()}"
        time.sleep(0.1)


def test_one_count_across_workers_and_a_reload(hive_run: Any, tmp_path: Path) -> None:
    server = start(hive_run, tmp_path, "counter:root")
    client = Client(server.port)
    first = client.get()
    assert first["visits"] == 1 and client.cookies == {"HIVE_SESSION": first["uid"]}
    pids = {first["pid"]}
    for visit in range(2, 41):
        answer = client.get()
        assert answer["visits"] == visit, (answer, server.output())
        assert answer["uid"] == first["uid"]
        assert client.set_cookies == []
        pids.add(answer["pid"])
    assert len(pids) == 2, f"one worker answered everything: {pids}"

    result = server.ctl("reload", timeout=120)
    assert result.returncode == 0, result.stderr + server.output()
    new_pids = wait_ready(server, generation=2)
    assert not new_pids & pids
    for visit in range(41, 51):
        answer = client.get()
        assert answer["visits"] == visit, (answer, server.output())
        assert answer["pid"] in new_pids

    store = tmp_path / "sessions" / "sessions.sqlite3"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700


def test_an_expired_session_is_replaced(hive_run: Any, tmp_path: Path) -> None:
    server = start(hive_run, tmp_path, "counter:short")  # sessionTimeout = 2 s
    client = Client(server.port)
    first = client.get()
    assert client.get()["visits"] == 2  # within the timeout: the same session
    time.sleep(2.5)
    answer = client.get()
    assert answer["visits"] == 1
    assert answer["uid"] != first["uid"]
    assert client.cookies == {"HIVE_SESSION": answer["uid"]}


def test_sqlite_store_reopens_after_a_fork(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "sessions.sqlite3"))
    store.save("parent", "{}", time.time() + 60, create=True)
    pid = os.fork()
    if pid == 0:  # the child: a worker forked with the store already open
        ok = False
        try:
            ok = store.get("parent") is not None and store._db is not None
            ok = ok and store.save("child", "{}", time.time() + 60, create=True)
            store.close()
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get("child") is not None  # the parent's connection still works
    store.close()
