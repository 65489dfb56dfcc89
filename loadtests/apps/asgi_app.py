"""A minimal ASGI app (uvicorn, granian --interface asgi); lifespan answered, nothing else.

uvicorn loadtests.apps.asgi_app:app --workers 1 --no-access-log
"""

from __future__ import annotations

import os
from typing import Any

from loadtests.apps import HELLO, STATIC_DIR

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
    if scope["method"] == "POST":
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
