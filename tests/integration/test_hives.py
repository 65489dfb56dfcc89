"""Several hives on one host: default names, ``hive list``, commands by name, stale sockets.

Each test gives its hives and commands an XDG_RUNTIME_DIR of its own, so the default
control directory is private to it and no test meets a hive the machine runs otherwise.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, HiveProcess


class Host:
    """Hives and ``hive`` commands sharing one private runtime directory."""

    def __init__(self, run_dir: Path) -> None:
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir)}
        self.env.pop("HIVE_CONTROL", None)
        self.env.pop("HIVE_NAME", None)
        self.control_dir = run_dir / "hive"
        self.hives: list[HiveProcess] = []

    def run(self, *args: str, wait: bool = True) -> HiveProcess:
        hive = HiveProcess(["examples.site:root", *args], env=self.env, private_control=False)
        self.hives.append(hive)
        if wait:
            hive.wait_listening()
            hive.wait_for_output(r"ready: 1 worker\(s\) serving")
        return hive

    def hive(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hive", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    host = Host(run_dir)
    yield host
    for hive in host.hives:
        hive.stop()


def name_of(hive: HiveProcess) -> str:
    return hive.url.removeprefix("http://")


def test_two_default_hives_run_side_by_side_and_are_reached_by_name(host: Host) -> None:
    first = host.run("--bind", "127.0.0.1:0")
    second = host.run("--bind", "127.0.0.1:0")
    for hive in (first, second):
        conn = http.client.HTTPConnection("127.0.0.1", hive.port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        conn.close()
    names = sorted([name_of(first), name_of(second)])
    files = set(os.listdir(host.control_dir))
    assert {f"{name}.ctl" for name in names} <= files
    assert not [file for file in files if file.startswith(".")]  # no temporary names left

    listed = host.hive("list", "--json")
    assert listed.returncode == 0, listed.stderr
    hives = json.loads(listed.stdout)
    assert [h["name"] for h in hives] == names
    assert {h["pid"] for h in hives} == {first.pid, second.pid}
    assert all(h["app"] == "examples.site:root" and len(h["workers"]) == 1 for h in hives)
    table = host.hive("list").stdout
    assert table.startswith("NAME") and all(name in table for name in names)

    # Ambiguous: status lists the hives, the others refuse and say why.
    status = host.hive("status")
    assert status.returncode == 0
    assert all(name in status.stdout for name in names)
    assert "several hives are running" in status.stdout
    reload = host.hive("reload")
    assert reload.returncode == 1
    assert reload.stderr.strip() == (
        f"hive: error: several hives are running ({', '.join(names)}); choose one with --name"
    )

    # By name, by another spelling of the address, by port alone.
    mine = host.hive("status", "--json", "--name", name_of(first))
    assert json.loads(mine.stdout)["pid"] == first.pid
    spelled = host.hive("status", "--json", "--name", f"localhost:{first.port}")
    assert json.loads(spelled.stdout)["pid"] == first.pid
    by_port = host.hive("status", "--json", "--name", str(second.port))
    assert json.loads(by_port.stdout)["pid"] == second.pid
    missing = host.hive("status", "--name", "127.0.0.1:1")
    assert missing.returncode == 1
    assert "no hive named '127.0.0.1:1' is running (running: " in missing.stderr

    assert host.hive("reload", "--name", name_of(second)).returncode == 0
    assert host.hive("scale", "2", "--name", name_of(second)).returncode == 0
    stopped = host.hive("stop", "-n", name_of(first))
    assert stopped.returncode == 0, stopped.stderr
    assert first.wait(20) == 0
    # One hive left: commands need no name.
    alone = host.hive("status", "--json")
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout)["pid"] == second.pid


def test_two_hives_on_one_address_refuse_with_one_line(host: Host) -> None:
    first = host.run("--bind", "127.0.0.1:0")
    second = host.run("--bind", f"127.0.0.1:{first.port}", wait=False)
    assert second.wait(20) == 1
    assert second.output().strip().splitlines()[-1] == (
        f"hive: error: cannot listen on 127.0.0.1:{first.port}: address already in use"
    )


def test_two_hives_of_one_name_refuse_with_one_line(host: Host) -> None:
    first = host.run("--bind", "127.0.0.1:0", "--name", "blog")
    second = host.run("--bind", "127.0.0.1:0", "--name", "blog", wait=False)
    assert second.wait(20) == 1
    path = host.control_dir / "blog.ctl"
    assert second.output().strip().splitlines()[-1] == (
        f"hive: error: another hive is running (control socket {path}); stop it, or give this"
        " one another --name (or --control path)"
    )
    listed = json.loads(host.hive("list", "--json").stdout)
    assert [(h["name"], h["pid"]) for h in listed] == [("blog", first.pid)]


def test_a_killed_hive_leaves_no_trace_for_the_next(host: Host) -> None:
    dead = host.run("--bind", "127.0.0.1:0")
    socket_file = host.control_dir / f"{name_of(dead)}.ctl"
    assert socket_file.exists()
    workers = json.loads(host.hive("status", "--json").stdout)["workers"]
    os.kill(dead.pid, signal.SIGKILL)
    dead.wait(10)
    for worker in workers:  # orphans notice their channel closed and leave
        deadline = time.monotonic() + 20
        while _alive(worker["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert socket_file.exists()  # SIGKILL: the file stays behind
    listed = host.hive("list")
    assert (listed.returncode, listed.stdout.strip()) == (0, "no hive is running")
    assert not socket_file.exists()
    status = host.hive("status")
    assert status.returncode == 1
    assert status.stderr.strip() == (
        f"hive: error: no hive is running (no control socket in {host.control_dir})"
    )
    # A stale socket at the very path a new hive wants is replaced too.
    again = host.run("--bind", "127.0.0.1:0", "--name", "again")
    os.kill(again.pid, signal.SIGKILL)
    again.wait(10)
    assert (host.control_dir / "again.ctl").exists()
    third = host.run("--bind", "127.0.0.1:0", "--name", "again")
    assert json.loads(host.hive("status", "--json", "-n", "again").stdout)["pid"] == third.pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
