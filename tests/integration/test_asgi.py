"""ASGI applications under real ``hive run --workers 2`` processes: FastAPI and Starlette.

The applications are written into a temporary directory.  FastAPI is served twice: at
the root (``hive run --asgi``) and mounted at /api in a resource tree beside static files
and a Starlette application (at /star).  http.client and raw sockets talk to them.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import socket
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from tests.integration.conftest import HiveProcess
from tests.integration.test_supervisor import (
    pids,
    report,
    status,
    wait_serving,
    write_module,
)

pytest.importorskip("fastapi")

FASTAPI_APP = """
import asyncio
import hashlib
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import (
    BackgroundTasks,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Request,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel

HERE = Path(__file__).parent
MARKS = HERE / "marks"


def mark(name):
    MARKS.mkdir(exist_ok=True)
    (MARKS / name).write_text(str(os.getpid()))


@asynccontextmanager
async def lifespan(app):
    # A resource opened once per worker and closed when the worker drains.
    pool = {"opened_by": os.getpid(), "open": True}
    mark(f"fastapi-startup-{os.getpid()}")
    yield {"pool": pool}
    pool["open"] = False
    mark(f"fastapi-shutdown-{os.getpid()}")


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


def token(x_token: str = Header()):
    if x_token != "secret":
        raise HTTPException(status_code=403, detail="bad token")
    return x_token


@app.get("/items/{item_id}", name="item")
async def read_item(item_id: int, q: str | None = None, limit: int = 10):
    return {"item_id": item_id, "q": q, "limit": limit}


@app.post("/items")
async def create_item(item: Item, who: str = Depends(token)):
    return {"item": item.model_dump(), "total": item.price * 2, "who": who}


@app.get("/sync")
def sync_view():
    return {"pid": os.getpid()}


@app.get("/state")
async def state(request: Request):
    pool = request.state.pool
    return {"pid": os.getpid(), "opened_by": pool["opened_by"], "open": pool["open"]}


@app.get("/where")
async def where(request: Request):
    return {
        "url_for": str(request.url_for("item", item_id=3)),
        "root_path": request.scope["root_path"],
        "path": request.url.path,
    }


@app.get("/stream")
async def stream(gate: str):
    async def lines():
        yield "first\\n"
        deadline = time.monotonic() + 20
        while not (HERE / gate).exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        yield "second\\n"

    return StreamingResponse(lines(), media_type="text/plain")


@app.get("/forever")
async def forever(name: str):
    async def ticks():
        try:
            n = 0
            while True:
                n += 1
                (HERE / f"{name}.count").write_text(str(n))
                yield b"tick %d\\n" % n
                await asyncio.sleep(0.02)
        finally:
            mark(f"{name}-stopped")

    return StreamingResponse(ticks(), media_type="text/plain")


@app.get("/file")
async def file():
    return FileResponse(HERE / "blob.bin", media_type="application/octet-stream")


@app.get("/background")
async def background(name: str, tasks: BackgroundTasks):
    async def later():
        await asyncio.sleep(0.2)
        mark(f"{name}-background")

    tasks.add_task(later)
    return PlainTextResponse("accepted")


@app.post("/upload")
async def upload(request: Request):
    digest = hashlib.sha256()
    size = 0
    pieces = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
        pieces += 1
    return {"size": size, "sha256": digest.hexdigest(), "pieces": pieces}


@app.get("/error")
async def error():
    raise RuntimeError("fastapi boom")


@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str, name: str = "anon"):
    if name == "intruder":
        await websocket.close(code=1008)
        return
    await websocket.accept(subprotocol="chat.v1")
    pool = websocket.state.pool
    await websocket.send_json({"room": room, "name": name, "worker": pool["opened_by"]})
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"{name}@{room}: {text}")
    except WebSocketDisconnect as gone:
        mark(f"ws-{name}-gone-{gone.code}")
"""

STARLETTE_APP = """
import os
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route


async def home(request):
    return PlainTextResponse("hello from starlette")


async def echo(request):
    body = await request.json()
    return JSONResponse({"echo": body, "started": request.state.started})


async def inner(request):
    return JSONResponse({"url": str(request.url_for("inner")), "path": request.url.path})


@asynccontextmanager
async def lifespan(app):
    yield {"started": os.getpid()}


app = Starlette(
    routes=[
        Route("/", home),
        Route("/echo", echo, methods=["POST"]),
        Mount("/sub", routes=[Route("/inner", inner, name="inner")]),
    ],
    lifespan=lifespan,
)
"""

SITE = """
from pathlib import Path

from hive.asgi import ASGIResource
from hive.resource import Resource
from hive.static import File

from fastapi_app import app as fastapi_app
from starlette_app import app as starlette_app

root = Resource()
root.putChild(b"static", File(str(Path(__file__).parent / "static")))
root.putChild(b"api", ASGIResource(fastapi_app))
root.putChild(b"star", ASGIResource(starlette_app))
"""

BLOB = bytes(range(256)) * 2048  # 512 KiB


class Served:
    """FastAPI under hive: at the root (``prefix`` "") or mounted at /api."""

    def __init__(self, prefix: str, directory: Path, process: HiveProcess) -> None:
        self.prefix = prefix
        self.directory = directory
        self.process = process

    def request(
        self,
        method: str,
        target: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[http.client.HTTPResponse, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.process.port, timeout=30)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            response = conn.getresponse()
            return response, response.read()
        finally:
            conn.close()

    def json(self, method: str, target: str, **kwargs: Any) -> tuple[int, Any]:
        response, body = self.request(method, target, **kwargs)
        return response.status, json.loads(body)

    def wait_for_mark(self, name: str, timeout: float = 10.0) -> Path:
        path = self.directory / "marks" / name
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert time.monotonic() < deadline, f"no mark {name}{report(self.process)}"
            time.sleep(0.02)
        return path


def write_apps(directory: Path) -> None:
    (directory / "fastapi_app.py").write_text(textwrap.dedent(FASTAPI_APP))
    (directory / "starlette_app.py").write_text(textwrap.dedent(STARLETTE_APP))
    (directory / "asgi_site.py").write_text(textwrap.dedent(SITE))
    (directory / "blob.bin").write_bytes(BLOB)
    (directory / "static").mkdir()
    (directory / "static" / "page.html").write_text("<p>static page</p>")


@pytest.fixture(scope="module", params=["root", "mounted"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp(f"asgi-{request.param}")
    write_apps(directory)
    if request.param == "root":
        args, prefix = ["fastapi_app:app", "--asgi"], ""
    else:
        args, prefix = ["asgi_site:root"], "/api"
    args += ["--bind", "127.0.0.1:0", "--app-dir", str(directory), "--workers", "2"]
    args += ["--forwarded-allow", "127.0.0.1"]
    process = HiveProcess(args)
    try:
        process.wait_listening()
        wait_serving(process, 2)
        yield Served(prefix, directory, process)
    finally:
        process.stop()


# -- FastAPI -----------------------------------------------------------------------------------


def test_path_and_query_parameters(served: Served) -> None:
    status, data = served.json("GET", f"{served.prefix}/items/42?q=caf%C3%A9&limit=5")
    assert (status, data) == (200, {"item_id": 42, "q": "café", "limit": 5})
    status, data = served.json("GET", f"{served.prefix}/items/not-a-number")
    assert status == 422
    assert data["detail"][0]["loc"] == ["path", "item_id"]


def test_json_body_and_a_dependency(served: Served) -> None:
    item = {"name": "widget", "price": 2.5, "tags": ["a"]}
    headers = {"Content-Type": "application/json", "X-Token": "secret"}
    status, data = served.json(
        "POST", f"{served.prefix}/items", body=json.dumps(item), headers=headers
    )
    assert status == 200
    assert data == {"item": item, "total": 5.0, "who": "secret"}
    headers["X-Token"] = "wrong"
    status, data = served.json(
        "POST", f"{served.prefix}/items", body=json.dumps(item), headers=headers
    )
    assert (status, data) == (403, {"detail": "bad token"})


def test_a_sync_endpoint_runs_in_the_threadpool(served: Served) -> None:
    status, data = served.json("GET", f"{served.prefix}/sync")
    assert status == 200 and data["pid"] > 0


def test_lifespan_state_reaches_every_request_of_each_worker(served: Served) -> None:
    seen = {}
    for _ in range(30):
        status, data = served.json("GET", f"{served.prefix}/state")
        assert status == 200
        assert data["opened_by"] == data["pid"]  # each worker opened its own
        assert data["open"] is True
        seen[data["pid"]] = data
    marks = {p.name for p in (served.directory / "marks").iterdir()}
    for pid in seen:
        assert f"fastapi-startup-{pid}" in marks


def test_url_for_under_the_mount_point(served: Served) -> None:
    status, data = served.json("GET", f"{served.prefix}/where")
    port = served.process.port
    assert status == 200
    assert data == {
        "url_for": f"http://127.0.0.1:{port}{served.prefix}/items/3",
        "root_path": served.prefix,
        "path": f"{served.prefix}/where",
    }


def test_url_for_behind_a_trusted_proxy(served: Served) -> None:
    headers = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "example.org",
        "X-Forwarded-Prefix": "/outer",
    }
    status, data = served.json("GET", f"{served.prefix}/where", headers=headers)
    assert status == 200
    assert data == {
        "url_for": f"https://example.org/outer{served.prefix}/items/3",
        "root_path": f"/outer{served.prefix}",
        "path": f"/outer{served.prefix}/where",
    }


def test_streaming_response_goes_out_as_it_comes(served: Served) -> None:
    gate = f"gate-{uuid.uuid4().hex}"
    conn = http.client.HTTPConnection("127.0.0.1", served.process.port, timeout=30)
    try:
        conn.request("GET", f"{served.prefix}/stream?gate={gate}")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("transfer-encoding") == "chunked"
        assert response.readline() == b"first\n"  # before the gate opens
        (served.directory / gate).touch()
        assert response.read() == b"second\n"
    finally:
        conn.close()


def test_file_response_is_sent_whole(served: Served) -> None:
    response, body = served.request("GET", f"{served.prefix}/file")
    assert response.status == 200
    assert response.getheader("content-length") == str(len(BLOB))
    assert hashlib.sha256(body).digest() == hashlib.sha256(BLOB).digest()
    response, body = served.request("GET", f"{served.prefix}/file", headers={"Range": "bytes=0-9"})
    assert response.status == 206 and body == BLOB[:10]


def test_background_task_runs_after_the_response(served: Served) -> None:
    name = f"bg-{uuid.uuid4().hex}"
    started = time.monotonic()
    response, body = served.request("GET", f"{served.prefix}/background?name={name}")
    assert (response.status, body) == (200, b"accepted")
    assert time.monotonic() - started < 5
    served.wait_for_mark(f"{name}-background")


def test_upload_is_read_as_it_arrives(served: Served) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    status, result = served.json("POST", f"{served.prefix}/upload", body=data)
    assert status == 200
    assert result["size"] == len(data)
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert result["pieces"] > 1


def test_an_error_is_a_500_and_the_worker_keeps_serving(served: Served) -> None:
    response, body = served.request("GET", f"{served.prefix}/error")
    assert response.status == 500
    assert b"fastapi boom" not in body
    served.process.wait_for_output("fastapi boom")
    status, _ = served.json("GET", f"{served.prefix}/items/1")
    assert status == 200


def test_a_client_that_leaves_mid_stream_stops_the_application(served: Served) -> None:
    name = f"leaver-{uuid.uuid4().hex}"
    target = f"{served.prefix}/forever?name={name}"
    with socket.create_connection(("127.0.0.1", served.process.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        while received.count(b"tick") < 3:
            received += sock.recv(4096)
    served.wait_for_mark(f"{name}-stopped")
    count = served.directory / f"{name}.count"
    stopped_at = int(count.read_text())
    time.sleep(0.3)
    assert int(count.read_text()) == stopped_at  # nothing more is produced


def test_access_log_and_request_counts_see_asgi_requests(served: Served) -> None:
    def counted() -> int:
        return sum(int(w["requests"]) for w in status(served.process)["workers"])

    time.sleep(1.2)  # the workers' counters are sent once a second
    before = counted()
    marker = uuid.uuid4().hex
    for _ in range(5):
        served.request("GET", f"{served.prefix}/items/7?marker={marker}")
    served.process.wait_for_output(rf'"GET {served.prefix}/items/7\?marker={marker} HTTP/1.1" 200')
    deadline = time.monotonic() + 10
    while counted() < before + 5:
        assert time.monotonic() < deadline, f"requests not counted{report(served.process)}"
        time.sleep(0.2)


def test_each_worker_closes_its_resource_on_stop(hive_run: Any, tmp_path: Path) -> None:
    write_apps(tmp_path)
    server: HiveProcess = hive_run(
        "fastapi_app:app", "--asgi", "--bind", "127.0.0.1:0", "--workers", "2",
        "--app-dir", str(tmp_path),
    )  # fmt: skip
    workers = pids(wait_serving(server, 2))
    assert server.stop() == 0
    marks = {p.name for p in (tmp_path / "marks").iterdir()}
    for pid in workers:
        assert {f"fastapi-startup-{pid}", f"fastapi-shutdown-{pid}"} <= marks, marks


def ws_url(served: Served, path: str) -> str:
    return f"ws://127.0.0.1:{served.process.port}{served.prefix}{path}"


def test_a_websocket_route(served: Served) -> None:
    name = f"n{uuid.uuid4().hex[:8]}"

    async def talk() -> tuple[Any, list[Any], Any]:
        async with websockets.connect(
            ws_url(served, f"/ws/lobby?name={name}"), subprotocols=[Subprotocol("chat.v1")]
        ) as ws:
            hello = json.loads(await ws.recv())
            replies = []
            for text in ("hi", "héllo"):
                await ws.send(text)
                replies.append(await ws.recv())
            return hello, replies, ws.subprotocol

    hello, replies, subprotocol = asyncio.run(asyncio.wait_for(talk(), 30))
    assert hello["room"] == "lobby" and hello["name"] == name and hello["worker"] > 0
    assert replies == [f"{name}@lobby: hi", f"{name}@lobby: héllo"]
    assert subprotocol == "chat.v1"
    served.wait_for_mark(f"ws-{name}-gone-1000")


def test_a_websocket_refused_before_accept_is_a_403(served: Served) -> None:
    async def knock() -> int:
        try:
            async with websockets.connect(ws_url(served, "/ws/lobby?name=intruder")):
                return 101
        except InvalidStatus as exc:
            return int(exc.response.status_code)

    assert asyncio.run(asyncio.wait_for(knock(), 30)) == 403


# -- beside static files and a Starlette app ---------------------------------------------------


def only_mounted(served: Served) -> None:
    if not served.prefix:
        pytest.skip("the resource tree is served by the mounted variant")


def test_static_files_beside_the_asgi_application(served: Served) -> None:
    only_mounted(served)
    response, body = served.request("GET", "/static/page.html")
    assert (response.status, body) == (200, b"<p>static page</p>")
    response, _ = served.request("GET", "/nothing-here")
    assert response.status == 404


def test_starlette_application(served: Served) -> None:
    only_mounted(served)
    response, body = served.request("GET", "/star/")
    assert (response.status, body) == (200, b"hello from starlette")
    status, data = served.json(
        "POST", "/star/echo", body=json.dumps({"a": [1, 2]}), headers={"Content-Type": "x/json"}
    )
    assert status == 200 and data["echo"] == {"a": [1, 2]} and data["started"] > 0
    status, data = served.json("GET", "/star/sub/inner")
    port = served.process.port
    assert data == {"url": f"http://127.0.0.1:{port}/star/sub/inner", "path": "/star/sub/inner"}


# -- lifespan across reloads -------------------------------------------------------------------

LIFESPAN_APP = """
import asyncio
import os
from pathlib import Path

HERE = Path(__file__).parent
VERSION = {version!r}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        (HERE / f"starting-{{os.getpid()}}").touch()
        if (HERE / "slow-startup").exists():
            await asyncio.sleep(60)
        if (HERE / "fail-startup").exists():
            await send({{"type": "lifespan.startup.failed", "message": "no database"}})
            return
        (HERE / f"startup-{{VERSION}}-{{os.getpid()}}").touch()
        scope["state"]["version"] = VERSION
        await send({{"type": "lifespan.startup.complete"}})
        await receive()
        (HERE / f"shutdown-{{VERSION}}-{{os.getpid()}}").touch()
        await send({{"type": "lifespan.shutdown.complete"}})
        return
    body = f"{{scope['state']['version']}} {{os.getpid()}}".encode()
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": body}})
"""


def marks(directory: Path, kind: str) -> set[str]:
    return {p.name.split("-", 1)[1] for p in directory.glob(f"{kind}-*")}


def test_lifespan_per_worker_across_reloads(hive_run: Any, tmp_path: Path) -> None:
    module = tmp_path / "lifespan_app.py"
    write_module(module, LIFESPAN_APP.format(version="v1"))
    server: HiveProcess = hive_run(
        "lifespan_app:app", "--asgi", "--bind", "127.0.0.1:0", "--workers", "2",
        "--app-dir", str(tmp_path), "--graceful-timeout", "5",
    )  # fmt: skip
    first = pids(wait_serving(server, 2))
    assert marks(tmp_path, "startup") == {f"v1-{pid}" for pid in first}

    # A startup that fails: the reload fails, the old workers keep serving.
    (tmp_path / "fail-startup").touch()
    write_module(module, LIFESPAN_APP.format(version="v2"))
    result = server.ctl("reload", timeout=60)
    assert result.returncode != 0, f"reload succeeded{report(server)}"
    assert "no database" in result.stderr, result.stderr
    assert pids(wait_serving(server, 2)) == first
    for _ in range(4):
        status, body = get(server.port, "/")
        assert status == 200 and body.startswith(b"v1 "), report(server)
    assert not marks(tmp_path, "shutdown")

    # A good reload: new workers start theirs, the old ones shut theirs down on drain.
    (tmp_path / "fail-startup").unlink()
    write_module(module, LIFESPAN_APP.format(version="v3"))
    result = server.ctl("reload", timeout=60)
    assert result.returncode == 0, f"reload failed: {result.stderr}{report(server)}"
    second = pids(wait_serving(server, 2, generation=2))
    assert marks(tmp_path, "startup") >= {f"v3-{pid}" for pid in second}
    deadline = time.monotonic() + 15
    while marks(tmp_path, "shutdown") != {f"v1-{pid}" for pid in first}:
        assert time.monotonic() < deadline, f"{marks(tmp_path, 'shutdown')}{report(server)}"
        time.sleep(0.05)
    status, body = get(server.port, "/")
    assert status == 200 and body.startswith(b"v3 ")


def test_a_first_startup_that_fails_stops_hive(hive_run: Any, tmp_path: Path) -> None:
    write_module(tmp_path / "lifespan_app.py", LIFESPAN_APP.format(version="v1"))
    (tmp_path / "fail-startup").touch()
    server: HiveProcess = hive_run(
        "lifespan_app:app", "--asgi", "--bind", "127.0.0.1:0", "--app-dir", str(tmp_path)
    )
    assert server.wait(30) != 0
    assert "lifespan startup failed: no database" in server.output()


def test_stopping_while_a_startup_runs_does_not_wait_for_it(hive_run: Any, tmp_path: Path) -> None:
    write_module(tmp_path / "lifespan_app.py", LIFESPAN_APP.format(version="v1"))
    (tmp_path / "slow-startup").touch()
    server: HiveProcess = hive_run(
        "lifespan_app:app", "--asgi", "--bind", "127.0.0.1:0", "--app-dir", str(tmp_path),
        "--graceful-timeout", "20",
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not list(tmp_path.glob("starting-*")):
        assert time.monotonic() < deadline, report(server)
        time.sleep(0.05)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 10, report(server)
    assert not list(tmp_path.glob("startup-*"))


def test_not_an_asgi_application_is_a_one_line_error(hive_run: Any, tmp_path: Path) -> None:
    (tmp_path / "notasgi.py").write_text("app = 42\n")
    server: HiveProcess = hive_run(
        "notasgi:app", "--asgi", "--bind", "127.0.0.1:0", "--app-dir", str(tmp_path), wait=False
    )
    assert server.wait(30) != 0
    assert "is not an ASGI application" in server.output()


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
