"""A minimal RSGI app (granian --interface rsgi): granian's own interface.

granian --interface rsgi --workers 1 loadtests.apps.rsgi_app:app
"""

from __future__ import annotations

import os
from typing import Any

from loadtests.apps import HELLO, STATIC_DIR

TEXT = [("content-type", "text/plain")]


async def app(scope: Any, protocol: Any) -> None:
    if scope.method == "POST":
        body = await protocol()
        protocol.response_bytes(200, TEXT, b"%d" % len(body))
    elif scope.path.startswith("/static/"):
        path = os.path.join(STATIC_DIR, scope.path.removeprefix("/static/"))
        protocol.response_file(200, [("content-type", "application/octet-stream")], path)
    else:
        protocol.response_bytes(200, TEXT, HELLO)
