"""Live pages in a real browser: headless Chromium (Debian's chromium and chromium-driver,
which ``make tools`` installs) driven by selenium.

The chat example (``python -m examples.chat``) with real TCP clients: the page loads, a
client's line shows within a second, a click kicks a client and a form broadcasts to the
others. Then a ``hive run`` site of live elements under ``hive reload``: the page
reconnects by itself and carries on with its state, on a worker of the new generation.
A screenshot of the panel is kept in tests/output/chat-panel.png (git ignores it).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ROOT, HiveProcess

#: Where the chat panel's screenshot is kept after a run (git ignores it).
OUTPUT = ROOT / "tests" / "output"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
#: This machine's network is closed: Chromium's own background connections are turned off.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,860",
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed (it is in the test extra: pip install -e .[test])")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail(
            "headless Chromium is not installed: apt-get install chromium chromium-driver"
            " (make tools does it as root)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"]:
        options.add_argument(flag)
    # The driver found by path: selenium's own driver manager would go to the network.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def wait(check: Callable[[], Any], timeout: float = 10.0, every: float = 0.01) -> Any:
    """``check()``'s first true value within ``timeout`` seconds; AssertionError if none."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {check}")
        time.sleep(every)


def live_state(driver: Any) -> str:
    state: str = driver.execute_script("return document.documentElement.dataset.hiveState || ''")
    return state


def text_of(driver: Any, selector: str) -> str:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return " ".join(node.text for node in found)


class Chat:
    """``python -m examples.chat`` on free ports, stopped by pid."""

    def __init__(self, password: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "examples.chat",
                *("--chat", "127.0.0.1:0", "--web", "127.0.0.1:0", "--password", password),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        first, second = self.proc.stdout.readline(), self.proc.stdout.readline()
        chat = re.search(r"chat on \S+:(\d+)", first)
        panel = re.search(r"panel on http://127.0.0.1:(\d+)/", second)
        if chat is None or panel is None:
            self.stop()
            raise AssertionError(f"the example did not start: {first!r} {second!r}")
        self.chat_port = int(chat.group(1))
        self.web_port = int(panel.group(1))

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            output, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            output, _ = self.proc.communicate(timeout=5)
        return output or ""


class LineClient:
    """A real TCP client of the chat."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        welcome = self.readline()
        match = re.search(r"welcome, (\S+);", welcome)
        assert match, welcome
        self.name = match.group(1)

    def readline(self) -> str:
        return self.file.readline().decode()

    def say(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def chat() -> Iterator[Chat]:
    process = Chat("s3cret")
    yield process
    process.stop()


def test_the_chat_panel_follows_the_chat_and_acts_on_it(chat: Chat, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"http://admin:s3cret@127.0.0.1:{chat.web_port}/")
    wait(lambda: live_state(browser) == "connected")
    assert "nobody yet" in text_of(browser, "section.clients")

    alice = LineClient(chat.chat_port)
    wait(lambda: alice.name in text_of(browser, "section.clients td.name"), timeout=1.0)

    said = time.monotonic()
    alice.say("hello from a real TCP client")
    wait(lambda: "hello from a real TCP client" in text_of(browser, "section.log"), timeout=1.0)
    assert time.monotonic() - said < 1.0

    bob = LineClient(chat.chat_port)
    assert bob.name != alice.name
    wait(lambda: bob.name in text_of(browser, "section.clients td.name"), timeout=1.0)
    time.sleep(1.2)  # a tick of the traffic figures
    assert re.search(r"clients\s+2", text_of(browser, "section.traffic"))
    # Kept where a run's output is looked at (tests/output/, not committed).
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "chat-panel.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")

    # The broadcast form: an exposed method called by a submit, seen by the TCP clients.
    field = browser.find_element(By.CSS_SELECTOR, "section.broadcast input[name=text]")
    field.send_keys("maintenance at noon")
    browser.find_element(By.CSS_SELECTOR, "section.broadcast button").click()
    assert bob.readline().strip() == "* operator: maintenance at noon"
    wait(lambda: field.get_attribute("value") == "")  # reset once the call succeeded

    # Kick: the click reaches the server, which cuts the client off.
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-hive-key="{alice.name}"]')
    row.find_element(By.CSS_SELECTOR, "button.kick").click()
    lines = []
    while (line := alice.readline()) != "":
        lines.append(line.strip())
    assert "* you were kicked by the operator" in lines
    # The panel's own update (the "within a second" bound is the first event's, above).
    wait(lambda: alice.name not in text_of(browser, "section.clients td.name"))
    wait(lambda: f"{alice.name} was kicked" in text_of(browser, "#notice"))
    assert bob.name in text_of(browser, "section.clients td.name")
    alice.close()
    bob.close()
    errors = [
        entry
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and "favicon" not in entry["message"]
    ]
    assert errors == []


@pytest.fixture
def live_site(tmp_path: Path) -> Iterator[HiveProcess]:
    process = HiveProcess(
        [
            "tests.live_app:root",
            *("--bind", "127.0.0.1:0", "--workers", "2", "--no-access-log"),
            *("--session-dir", str(tmp_path / "sessions"), "--websocket-drain-timeout", "1"),
        ]
    )
    try:
        process.wait_listening()
        yield process
    finally:
        process.stop()


def test_a_live_page_recovers_after_hive_reload(live_site: HiveProcess, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"http://127.0.0.1:{live_site.port}/")
    wait(lambda: live_state(browser) == "connected")
    browser.execute_script(
        "window.states = [];"
        "for (const s of ['connecting', 'connected', 'offline'])"
        "  document.addEventListener('hive:' + s, () => window.states.push(s));"
    )
    add = browser.find_element(By.CSS_SELECTOR, "button.add")
    add.click()
    wait(lambda: text_of(browser, "output") == "1")
    add.click()
    wait(lambda: text_of(browser, "output") == "2")
    pid_before = text_of(browser, ".pid")

    result = live_site.ctl("reload")
    assert result.returncode == 0, result.stderr
    wait(lambda: "offline" in browser.execute_script("return window.states"), timeout=20)
    wait(lambda: browser.execute_script("return window.states").count("connected") >= 1, 20)
    # Restored from the session on a worker of the new generation, which pushed it again.
    wait(lambda: text_of(browser, ".pid") not in ("", pid_before), timeout=10)
    assert text_of(browser, "output") == "2"
    add = browser.find_element(By.CSS_SELECTOR, "button.add")
    add.click()
    wait(lambda: text_of(browser, "output") == "3")
