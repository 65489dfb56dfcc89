"""Live pages under a real ``hive run`` with two workers, driven by hive.live.client.

The page's record is in the SQLite session store every worker opens, so a page whose
WebSocket lands on the other worker, or on a worker of the next generation after
``hive reload``, is taken on with its state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from hive.live.client import LiveClient
from tests.integration.conftest import HiveProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    sessions = tmp_path_factory.mktemp("live-sessions")
    process = HiveProcess(
        [
            "tests.live_app:root",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--no-access-log",
            "--session-dir",
            str(sessions),
            "--websocket-drain-timeout",
            "1",
        ]
    )
    process.wait_listening()
    yield process
    process.stop()


def page_url(server: HiveProcess) -> str:
    return f"http://127.0.0.1:{server.port}/"


def live_run(coro: Any, timeout: float = 60.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_calls_and_pushes_through_both_workers(server: HiveProcess) -> None:
    async def go() -> None:
        pages = [await LiveClient.open(page_url(server)) for _ in range(6)]
        pids = set()
        for number, page in enumerate(pages, 1):
            result = await page.call("1", "add", number)
            assert result["count"] == number
            pids.add(result["pid"])
            shown = f'<output data-hive-part="count">{number}</output>'
            await page.until(lambda m: shown in m.get("html", ""))  # noqa: B023
        assert len(pids) == 2, "both workers serve live pages"
        with pytest.raises(Exception, match="must be an integer"):
            await pages[0].call("1", "add", "x")
        for page in pages:
            await page.close()

    live_run(go())


def test_a_page_moves_to_whichever_worker_takes_its_next_connection(
    server: HiveProcess,
) -> None:
    async def go() -> None:
        page = await LiveClient.open(page_url(server))
        seen = set()
        # SO_REUSEPORT spreads the connections over both workers.
        for count in range(1, 13):
            result = await page.call("1", "add")
            assert result["count"] == count
            seen.add(result["pid"])
            await page.reconnect()
        assert len(seen) == 2
        await page.close()

    live_run(go())


def test_the_handshake_needs_the_page_and_its_origin(server: HiveProcess) -> None:
    async def go() -> None:
        page = await LiveClient.open(page_url(server))
        ws_url = f"ws://127.0.0.1:{server.port}/_live"
        good = f"hive-page.{page.page}.{page.token}"
        cookie = {"Cookie": "; ".join(page.cookies)}
        for subprotocols, headers, origin in [
            (["hive-live.1", good], cookie, "http://evil.example"),
            (["hive-live.1", f"hive-page.{page.page}.wrong"], cookie, None),
            (["hive-live.1", good], {}, None),
        ]:
            with pytest.raises(InvalidStatus) as refused:
                await websockets.connect(
                    ws_url,
                    subprotocols=subprotocols,  # type: ignore[arg-type]
                    additional_headers=headers,
                    origin=origin or f"http://127.0.0.1:{server.port}",  # type: ignore[arg-type]
                )
            assert refused.value.response.status_code == 403
        await page.close()

    live_run(go())


def test_pages_recover_after_hive_reload(server: HiveProcess) -> None:
    async def go() -> None:
        pages = [await LiveClient.open(page_url(server)) for _ in range(4)]
        before = set()
        for page in pages:
            before.add((await page.call("1", "add", 5))["pid"])
            await page.call("1", "rename", "before the reload")
        await asyncio.sleep(0.2)
        for page in pages:
            page.discard()
        started = time.monotonic()
        reload = asyncio.get_running_loop().run_in_executor(None, server.ctl, "reload")
        for page in pages:
            assert page.closed is not None
            assert await asyncio.wait_for(page.closed, 30) == 1001
        result = await reload
        assert result.returncode == 0, result.stderr
        assert time.monotonic() - started < 20
        for page in pages:
            await page.reconnect()
            # Restored: the whole element is pushed again, with its state.
            restored = await page.until(lambda m: m.get("part", "") is None)
            assert '<output data-hive-part="count">5</output>' in restored["html"]
            assert "before the reload" in restored["html"]
            after = await page.call("1", "add")
            assert after["count"] == 6
            assert after["pid"] not in before
            await page.close()

    live_run(go(), timeout=90)


def test_the_chat_example_without_a_browser() -> None:
    """examples/chat with real TCP clients and the browser-free client as the panel."""
    from hive.live.client import basic_auth
    from tests.integration.test_live_browser import Chat, LineClient

    chat = Chat("s3cret")

    async def go() -> None:
        url = f"http://127.0.0.1:{chat.web_port}/"
        page = await LiveClient.open(url, headers=basic_auth("admin", "wrong"))
        await page.close()
        raise AssertionError("a wrong password opened the panel")

    with pytest.raises(ValueError, match="no live page"):
        live_run(go())

    async def panel() -> None:
        url = f"http://127.0.0.1:{chat.web_port}/"
        page = await LiveClient.open(url, headers=basic_auth("admin", "s3cret"))
        ids = [element for element, _ in page.elements]
        traffic, clients, broadcast, log = ids
        page.discard()
        alice = await asyncio.to_thread(LineClient, chat.chat_port)
        joined = await page.until(lambda m: alice.name in m.get("html", ""), timeout=1.0)
        assert joined["el"] in (clients, log, traffic)
        said = time.monotonic()
        alice.say("hello over TCP")
        await page.until(lambda m: "hello over TCP" in m.get("html", ""), timeout=1.0)
        assert time.monotonic() - said < 1.0
        bob = await asyncio.to_thread(LineClient, chat.chat_port)
        assert await page.call(broadcast, "broadcast", text="to all") == 2
        assert (await asyncio.to_thread(bob.readline)).strip() == "* operator: to all"
        with pytest.raises(Exception, match="say something first"):
            await page.call(broadcast, "broadcast", text="  ")
        kicked: list[str] = []

        def on_kicked(element: str, name: str) -> bool:
            kicked.append(name)
            return True

        page.functions["kicked"] = on_kicked
        assert await page.call(clients, "kick", alice.name) is True
        assert kicked == [alice.name]
        lines = []
        while line := await asyncio.to_thread(alice.readline):
            lines.append(line.strip())
        assert lines == ["* operator: to all", "* you were kicked by the operator"]
        with pytest.raises(Exception, match="is not connected"):
            await page.call(clients, "kick", alice.name)
        alice.close()
        bob.close()
        await page.close()

    try:
        live_run(panel())
    finally:
        chat.stop()
