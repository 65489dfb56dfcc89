"""A minimal ASGI app (uvicorn, granian --interface asgi); lifespan answered, nothing else.

Any other GET is answered "Hello, world!" (the bare callable of the "asgi" scenario);
/fastapi/... goes to the FastAPI app of loadtests.apps.fastapi_app, with root_path
"/fastapi" as a mount gives it (as hive's ASGIResource mounted there does).

uvicorn loadtests.apps.asgi_app:app --workers 1 --no-access-log
"""

from __future__ import annotations

import os
from typing import Any

from loadtests.apps import HELLO, STATIC_DIR
from loadtests.apps.fastapi_app import app as fastapi_app

TEXT = [(b"content-type", b"text/plain")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"].startswith("/fastapi/"):
        await fastapi_app({**scope, "root_path": "/fastapi"}, receive, send)
    elif scope["method"] == "POST":
        length = 0
        more = True
        while more:
            message = await receive()
            length += len(message.get("body", b""))
            more = message.get("more_body", False)
        await _answer(send, b"%d" % length)
    elif scope["path"].startswith("/static/") and "http.response.pathsend" in scope.get(
        "extensions", {}
    ):
        # Only where the server sends files itself (granian); uvicorn has no such means.
        path = os.path.join(STATIC_DIR, scope["path"].removeprefix("/static/"))
        headers = [(b"content-length", b"%d" % os.path.getsize(path))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": path})
    else:
        await _answer(send, HELLO)


async def _answer(send: Any, body: bytes) -> None:
    headers = [*TEXT, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
