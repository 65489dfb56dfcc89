"""The bus and Server-Sent Events under ``hive run``: two workers, a reload, a slow client,
a thread publishing, and two hive instances through a real Redis.

The clients are httpx with httpx-sse (the standard's EventSource parser); each test is
bounded in time, and every process is stopped by pid (tests/integration/conftest.py).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from httpx_sse import connect_sse
from websockets.exceptions import ConnectionClosed

from tests.integration.conftest import ROOT, HiveProcess, RedisServer
from tests.integration.test_ops import eventually, scrape, total

APP = """
import json
import os
import threading

from hive import pubsub
from hive.resource import Resource
from hive.sse import EventSourceResource
from hive.websocket import ChannelFactory, ChannelProtocol, WebSocketResource


class Tagged(ChannelProtocol):
    # Says which worker it is once the bus has it; sends the bus's id with each message.

    def negotiationFinished(self):
        super().negotiationFinished()
        self.subscription.when_ready(self._ready)

    def _ready(self):
        if self.transport is not None:
            self.transport.sendTextMessage(f"ready {os.getpid()}")

    def messageFor(self, message):
        return json.dumps({"id": message.id, "data": message.text})


class Tagging(ChannelFactory):
    protocol = Tagged


class Events(EventSourceResource):
    def render_GET(self, request):
        request.setHeader(b"x-worker", str(os.getpid()).encode())
        return super().render_GET(request)


class Publish(Resource):
    isLeaf = True

    def render_POST(self, request):
        channel = request.args.get(b"channel", [b"news"])[0].decode()
        count = int(request.args.get(b"count", [b"1"])[0])
        data = request.content.read().decode()
        messages = [data if count == 1 else f"{data} {n}" for n in range(count)]

        def send():
            for message in messages:
                pubsub.publish(channel, message)

        if request.args.get(b"thread"):
            thread = threading.Thread(target=send)
            thread.start()
            thread.join()
        else:
            send()
        return str(os.getpid()).encode()


class Pid(Resource):
    isLeaf = True

    def render_GET(self, request):
        return str(os.getpid()).encode()


root = Resource()
root.putChild(b"events", Events("news", retry=100, heartbeat=1.0))
root.putChild(b"slow", Events("news", limit=5, heartbeat=1.0))
root.putChild(b"publish", Publish())
root.putChild(b"pid", Pid())
root.putChild(b"ws", WebSocketResource(Tagging("news")))
"""

DEADLINE = 30.0


class Listener(threading.Thread):
    """An EventSource client: reads events, and (``reconnect``) comes back with the last
    id it saw when the stream ends, as a browser does."""

    def __init__(self, port: int, path: str = "/events", reconnect: bool = False) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}{path}"
        self.reconnect = reconnect
        self.events: list[tuple[str, str]] = []  # (id, data)
        self.workers: list[str] = []  # the x-worker of each stream it had
        self.streams = 0
        self.opened = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._response: httpx.Response | None = None

    def run(self) -> None:
        deadline = time.monotonic() + DEADLINE
        try:
            with httpx.Client(timeout=httpx.Timeout(10.0)) as client:
                while not self.stop.is_set() and time.monotonic() < deadline:
                    headers = {"Last-Event-ID": self.events[-1][0]} if self.events else {}
                    with connect_sse(client, "GET", self.url, headers=headers) as source:
                        response = self._response = source.response
                        assert response.status_code == 200, response.status_code
                        assert response.headers["content-type"] == "text/event-stream"
                        self.workers.append(response.headers.get("x-worker", ""))
                        self.streams += 1
                        self.opened.set()
                        for event in source.iter_sse():
                            if not event.data:
                                continue  # a browser does not dispatch these (retry: alone)
                            self.events.append((event.id, event.data))
                            if self.stop.is_set():
                                return
                    if not self.reconnect:
                        return
        except BaseException as exc:
            if not self.stop.is_set():  # ending it closes the stream under the reader
                self.error = exc

    def data(self) -> list[str]:
        return [data for _id, data in self.events]

    def finish(self) -> None:
        self.stop.set()
        response = self._response
        if response is not None:
            response.close()
        self.join(DEADLINE)
        assert not self.is_alive(), "the listener did not end"


def post(port: int, path: str, body: str = "") -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body.encode())
        response = conn.getresponse()
        answer = response.read()
        assert response.status == 200, (response.status, answer)
        return answer.decode()
    finally:
        conn.close()


def wait_for(check: Any, what: str, timeout: float = DEADLINE) -> None:
    eventually(check, what, timeout=timeout)


def start(hive_run: Any, tmp_path: Path, *args: str) -> HiveProcess:
    (tmp_path / "busapp.py").write_text(APP)
    server: HiveProcess = hive_run(
        "busapp:root",
        "--app-dir",
        str(tmp_path),
        "--bind",
        "127.0.0.1:0",
        "--no-access-log",
        *args,
    )
    return server


def one_listener_per_worker(port: int, workers: int, **kwargs: Any) -> list[Listener]:
    """Open streams until each worker serves one; close the extra ones."""
    by_worker: dict[str, Listener] = {}
    for _ in range(40):
        listener = Listener(port, **kwargs)
        listener.start()
        assert listener.opened.wait(10), listener.error
        if listener.workers[0] in by_worker:
            listener.finish()
        else:
            by_worker[listener.workers[0]] = listener
        if len(by_worker) == workers:
            return list(by_worker.values())
    raise AssertionError(f"connections reached only {len(by_worker)} of {workers} workers")


def test_a_publish_reaches_event_streams_on_both_workers(hive_run: Any, tmp_path: Path) -> None:
    server = start(hive_run, tmp_path, "--workers", "2", "--metrics-bind", "127.0.0.1:0")
    listeners = one_listener_per_worker(server.port, 2)
    by = {f"m{n}": post(server.port, "/publish", f"m{n}") for n in range(20)}
    for listener in listeners:
        wait_for(lambda listener=listener: len(listener.events) >= 20, "20 events")
    first, second = listeners
    # One order for every subscriber, with the relay's ids, the same on both workers.
    assert first.events == second.events
    assert sorted(first.data()) == sorted(by)
    # Each worker's publishes in the order it made them; between two publishers the
    # relay's order is the one it read them in (each has its own channel).
    assert len(set(by.values())) == 2, "every publish went to one worker; try again"
    for pid in set(by.values()):
        mine = [data for data in first.data() if by[data] == pid]
        assert mine == sorted(mine, key=lambda data: int(data[1:]))
    wait_for(lambda: total(scrape(server), "hive_pubsub_delivered_total") >= 40, "metrics")
    samples = scrape(server)
    assert total(samples, "hive_pubsub_published_total") == 20
    # The streams closed while looking for one per worker are gone once a heartbeat
    # finds their client gone.
    wait_for(lambda: total(scrape(server), "hive_pubsub_subscribers") == 2, "two subscribers")
    assert total(samples, "hive_pubsub_backlog_messages") == 20
    for listener in listeners:
        listener.finish()
        assert listener.error is None


def test_publish_from_a_thread_keeps_its_order(hive_run: Any, tmp_path: Path) -> None:
    server = start(hive_run, tmp_path, "--workers", "2")
    listeners = one_listener_per_worker(server.port, 2)
    post(server.port, "/publish?thread=1&count=300", "t")
    for listener in listeners:
        wait_for(lambda listener=listener: len(listener.events) >= 300, "300 events")
        assert listener.data() == [f"t {n}" for n in range(300)]
        listener.finish()


def test_streams_survive_a_reload_with_last_event_id(hive_run: Any, tmp_path: Path) -> None:
    server = start(hive_run, tmp_path, "--workers", "2")
    listeners = one_listener_per_worker(server.port, 2, reconnect=True)
    published: list[str] = []
    by: dict[str, str] = {}  # message -> the pid of the worker that published it
    done = threading.Event()

    def publisher() -> None:
        for n in range(150):
            by[f"r{n}"] = post(server.port, "/publish", f"r{n}")
            published.append(f"r{n}")
            time.sleep(0.01)
        done.set()

    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    wait_for(lambda: len(published) >= 30, "publishing under way")
    result = server.ctl("reload")
    assert result.returncode == 0, result.stderr
    assert done.wait(DEADLINE)
    for listener in listeners:
        wait_for(lambda listener=listener: len(listener.events) >= 150, "150 events")
        listener.finish()
        assert listener.error is None
        # Nothing lost, nothing twice, each publisher's in its order; and the stream
        # moved to a new worker.
        got = listener.data()
        assert sorted(got) == sorted(published) and len(got) == len(published)
        for pid in set(by.values()):
            mine = [data for data in got if by[data] == pid]
            assert mine == sorted(mine, key=lambda data: int(data[1:]))
        assert listener.streams >= 2 and len(set(listener.workers)) >= 2
    assert listeners[0].events == listeners[1].events  # one order, the same ids


def test_a_slow_client_is_dropped_and_the_others_go_on(hive_run: Any, tmp_path: Path) -> None:
    server = start(hive_run, tmp_path, "--workers", "1", "--metrics-bind", "127.0.0.1:0")
    fast = Listener(server.port)
    fast.start()
    assert fast.opened.wait(10)
    # A client that reads its head and then nothing, with a small receive buffer.
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(10)
    slow.connect(("127.0.0.1", server.port))
    slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200 OK" in slow.recv(200)
    wait_for(lambda: total(scrape(server), "hive_pubsub_subscribers") == 2, "two subscribers")
    body = "x" * 100_000
    for _ in range(10):
        post(server.port, "/publish?count=10", body)
    wait_for(lambda: len(fast.events) >= 100, "the fast client's 100 events")
    wait_for(
        lambda: total(scrape(server), "hive_pubsub_slow_subscribers_total") == 1, "slow counted"
    )
    samples = scrape(server)
    assert total(samples, "hive_pubsub_dropped_total") >= 1
    assert total(samples, "hive_pubsub_subscribers") == 1
    # The slow client's stream ended (it would come back with its Last-Event-ID).
    slow.settimeout(10)
    received = bytearray()
    while not received.endswith(b"\r\n0\r\n\r\n"):
        chunk = slow.recv(1 << 20)
        assert chunk, "closed before the end of the stream"
        received += chunk
    slow.close()
    fast.finish()
    assert fast.error is None and len(fast.events) == 100


def test_two_hive_instances_share_the_bus_through_redis(
    hive_run: Any, tmp_path: Path, redis_server: RedisServer, redis_url: str
) -> None:
    config = tmp_path / "hive.toml"
    config.write_text(f'pubsub = "{redis_url}"\n')
    one = start(hive_run, tmp_path, "--workers", "2", "--pubsub", redis_url)
    two = start(hive_run, tmp_path, "--workers", "1", "--config", str(config))
    on_one = one_listener_per_worker(one.port, 2)
    on_two = one_listener_per_worker(two.port, 1)
    listeners = on_one + on_two
    post(two.port, "/publish", "from two")
    # A publish returns before Redis has the message: order between publishers is what
    # happened before what, so the next one waits for this one to arrive.
    for listener in listeners:
        wait_for(lambda listener=listener: len(listener.events) >= 1, "the first event")
    post(one.port, "/publish?thread=1&count=5", "from one")
    for listener in listeners:
        wait_for(lambda listener=listener: len(listener.events) >= 6, "6 events")
    ids = [i for i, _ in listeners[0].events]
    for listener in listeners:
        assert listener.data() == ["from two"] + [f"from one {n}" for n in range(5)]
        assert [i for i, _ in listener.events] == ids  # Redis's stream ids, everywhere
        listener.finish()
    stream = redis_server.client().xrange("hive:pubsub:0:news")
    assert [raw.decode() for raw, _fields in stream] == ids
    # A client that comes back to the other host gets what it missed from Redis.
    post(one.port, "/publish", "missed")
    wait_for(lambda: redis_server.client().xlen("hive:pubsub:0:news") == 7, "7 in Redis")
    again = Listener(two.port)
    again.events.append((ids[-1], "from one 4"))  # the last it saw
    again.start()
    wait_for(lambda: len(again.events) >= 2, "the replay")
    again.finish()
    assert again.data() == ["from one 4", "missed"]


def test_a_bad_pubsub_setting_is_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hive", "run", "busapp:root", "--bind", "127.0.0.1:0"],
        cwd=ROOT,
        env={**os.environ, "HIVE_PUBSUB": "http://127.0.0.1:6379"},
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("hive: error: pubsub: a Redis URL"), result.stderr


def test_a_lost_redis_subscription_reads_back_what_it_missed(
    hive_run: Any, tmp_path: Path, redis_server: RedisServer, redis_url: str
) -> None:
    publisher = start(hive_run, tmp_path, "--workers", "1", "--pubsub", redis_url)
    subscriber = start(hive_run, tmp_path, "--workers", "1", "--pubsub", redis_url)
    (listener,) = one_listener_per_worker(subscriber.port, 1)
    post(publisher.port, "/publish", "before")
    wait_for(lambda: listener.data() == ["before"], "the first event")
    # Redis cuts every subscriber connection; the publisher's own stays.
    client = redis_server.client()
    assert client.client_kill_filter(_type="pubsub") >= 1
    post(publisher.port, "/publish?count=20", "during")
    wait_for(lambda: len(listener.events) >= 21, "the missed events")
    post(publisher.port, "/publish", "after")
    wait_for(lambda: len(listener.events) >= 22, "the next event")
    listener.finish()
    assert listener.data() == ["before", *[f"during {n}" for n in range(20)], "after"]


def test_the_example_sites_chat(hive_run: Any) -> None:
    server: HiveProcess = hive_run("examples.site:root", "--bind", "127.0.0.1:0", "-w", "2")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/chat")
    response = conn.getresponse()
    assert response.status == 200 and b'new EventSource("/chat/events")' in response.read()
    conn.close()
    listener = Listener(server.port, path="/chat/events")
    listener.start()
    assert listener.opened.wait(10)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    conn.request("POST", "/chat", body="line=h%C3%A9llo+%3Cb%3E", headers=headers)
    assert conn.getresponse().read() == b"sent\n"
    conn.close()
    wait_for(lambda: len(listener.events) >= 1, "the chat line")
    listener.finish()
    assert listener.data() == ['{"line": "h\\u00e9llo <b>"}']


async def websockets_on_each_worker(port: int, workers: int, query: str = "") -> dict[str, Any]:
    """Open WebSockets to /ws until each worker has one (its first message names it)."""
    by_worker: dict[str, Any] = {}
    for _ in range(40):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws{query}", open_timeout=10)
        hello = await asyncio.wait_for(ws.recv(), 10)
        assert isinstance(hello, str) and hello.startswith("ready ")
        pid = hello.split()[1]
        if pid in by_worker:
            await ws.close()
        else:
            by_worker[pid] = ws
        if len(by_worker) == workers:
            return by_worker
    raise AssertionError(f"WebSockets reached only {len(by_worker)} of {workers} workers")


async def receive(ws: Any, count: int) -> list[dict[str, str]]:
    return [json.loads(await asyncio.wait_for(ws.recv(), 20)) for _ in range(count)]


def test_a_publish_reaches_sse_and_websocket_clients_on_both_workers_and_a_reload(
    hive_run: Any, tmp_path: Path
) -> None:
    server = start(hive_run, tmp_path, "--workers", "2")
    listeners = one_listener_per_worker(server.port, 2)

    async def scenario() -> None:
        sockets = await websockets_on_each_worker(server.port, 2)
        for n in range(10):
            await asyncio.to_thread(post, server.port, "/publish", f"w{n}")
        got = {pid: await receive(ws, 10) for pid, ws in sockets.items()}
        for listener in listeners:
            wait_for(lambda listener=listener: len(listener.events) >= 10, "10 events")
        sse = listeners[0].events
        for messages in got.values():
            # The same messages with the same ids as the event streams' (the relay's).
            assert [(m["id"], m["data"]) for m in messages] == sse
        # A reload closes them with 1001; coming back with the last id misses nothing.
        last = {pid: messages[-1]["id"] for pid, messages in got.items()}
        reload = asyncio.create_task(asyncio.to_thread(server.ctl, "reload"))
        for ws in sockets.values():
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        await asyncio.to_thread(post, server.port, "/publish", "while away")
        result = await reload
        assert result.returncode == 0, result.stderr
        for last_id in last.values():
            ws = await websockets.connect(
                f"ws://127.0.0.1:{server.port}/ws?last_id={last_id}", open_timeout=10
            )
            replayed: list[dict[str, str]] = []
            while len(replayed) < 1:
                message = await asyncio.wait_for(ws.recv(), 10)
                if isinstance(message, str) and message.startswith("ready "):
                    continue
                replayed.append(json.loads(message))
            assert [m["data"] for m in replayed] == ["while away"]
            await ws.close()

    asyncio.run(scenario())
    for listener in listeners:
        listener.finish()
