"""Development mode: ``hive run --reload`` with real edits to an application's files.

Each wait is bounded: watchfiles reports a change within its debounce (1.6 s at most)
and a reload of this small application takes a fraction of a second.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.conftest import HiveProcess

WAIT = 20.0

APP = """
from pathlib import Path

from hive.resource import Resource

PAGE = (Path(__file__).parent / "templates" / "page.html").read_text()


class Root(Resource):
    isLeaf = True

    def render_GET(self, request):
        if request.path == b"/boom":
            return 1 // 0
        return ("VERSION " + PAGE).encode()


root = Root()
"""


def write_app(directory: Path, version: str = "one", page: str = "<p>page</p>") -> None:
    (directory / "templates").mkdir(exist_ok=True)
    (directory / "templates" / "page.html").write_text(page)
    (directory / "app.py").write_text(APP.replace("VERSION", version))


def get(process: HiveProcess, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", process.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def eventually(check: Callable[[], bool], what: str, process: HiveProcess) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen: {process.output()}")


def serves(process: HiveProcess, text: str) -> Callable[[], bool]:
    return lambda: get(process)[1] == text


def start(hive_run: Any, directory: Path, *args: str) -> HiveProcess:
    process: HiveProcess = hive_run(
        "app:root", "--reload", "--bind", "127.0.0.1:0", *args, cwd=directory
    )
    return process


def test_a_save_reloads_and_a_broken_save_keeps_the_old_workers(
    hive_run: Any, tmp_path: Path
) -> None:
    write_app(tmp_path)
    process = start(hive_run, tmp_path)
    process.wait_for_output(r"ready: 1 worker\(s\) serving")
    assert get(process) == (200, "one <p>page</p>")
    status = json.loads(process.ctl("status", "--json").stdout)
    assert len(status["workers"]) == 1  # development mode's default

    write_app(tmp_path, "two")
    eventually(serves(process, "two <p>page</p>"), "reload after a save", process)
    assert "changed: app.py" in process.output()

    (tmp_path / "app.py").write_text(APP.replace("VERSION", "three") + "\ndef broken(:\n")
    process.wait_for_output(r"reload abandoned, the old workers keep serving: .*app\.py:", WAIT)
    assert get(process) == (200, "two <p>page</p>")

    write_app(tmp_path, "four")
    eventually(serves(process, "four <p>page</p>"), "recovery after a good save", process)

    (tmp_path / "templates" / "page.html").write_text("<p>new page</p>")
    eventually(serves(process, "four <p>new page</p>"), "reload after a template edit", process)


def test_files_outside_the_sources_do_not_reload(hive_run: Any, tmp_path: Path) -> None:
    write_app(tmp_path)
    venv = tmp_path / "env"
    (venv / "lib").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    process = start(hive_run, tmp_path)
    process.wait_for_output(r"ready: 1 worker\(s\) serving")
    (venv / "lib" / "installed.py").write_text("x = 1\n")
    (tmp_path / "style.css").write_text("p {}\n")
    (tmp_path / "notes.txt").write_text("todo\n")
    # A sentinel edit that must reload: the edits before it are reported with it or before.
    write_app(tmp_path, "two")
    eventually(serves(process, "two <p>page</p>"), "reload after a save", process)
    changes = [line for line in process.output().splitlines() if "changed:" in line]
    assert len(changes) == 1, changes
    assert changes[0].endswith("changed: app.py, templates/page.html"), changes


def test_development_mode_shows_tracebacks(hive_run: Any, tmp_path: Path) -> None:
    write_app(tmp_path)
    process = start(hive_run, tmp_path)
    status, body = get(process, "/boom")
    assert status == 500
    assert "Traceback" in body and "ZeroDivisionError" in body


def test_an_app_broken_at_start_waits_for_a_good_save(hive_run: Any, tmp_path: Path) -> None:
    write_app(tmp_path)
    (tmp_path / "app.py").write_text("def broken(:\n")
    process = start(hive_run, tmp_path)
    process.wait_for_output(r"worker failed to start: .*; waiting for a change to the sources")
    assert process.proc.poll() is None  # still running
    write_app(tmp_path, "fixed")
    eventually(serves(process, "fixed <p>page</p>"), "start after a good save", process)
