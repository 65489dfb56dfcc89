"""A minimal WSGI app (gunicorn, granian --interface wsgi, Twisted's WSGIResource).

gunicorn -w 1 -k sync loadtests.apps.wsgi_app:app
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, cast

from loadtests.apps import HELLO, STATIC_DIR

CHUNK = 64 * 1024


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if environ["REQUEST_METHOD"] == "POST":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        return _answer(start_response, b"%d" % len(body))
    if path.startswith("/static/"):
        name = os.path.join(STATIC_DIR, path.removeprefix("/static/"))
        size = os.path.getsize(name)
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))],
        )
        file = open(name, "rb")  # noqa: SIM115  (closed by the server, as WSGI says)
        wrapper = environ.get("wsgi.file_wrapper")  # gunicorn: sendfile
        if wrapper is not None:
            return cast(Iterable[bytes], wrapper(file, CHUNK))
        return _chunks(file)
    return _answer(start_response, HELLO)


def _answer(start_response: Callable[..., Any], body: bytes) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _chunks(file: Any) -> Iterable[bytes]:
    with file:
        while chunk := file.read(CHUNK):
            yield chunk
