"""Sessions: a visit counter that every worker agrees on.

Mount it in a tree, ``root.putChild(b"visits", Visits())``, or serve it alone::

    hive run examples.sessions:root --workers 2

Each visit counts one more whichever worker process answers (the page shows its pid): the
session lives in the store every worker opens, not in one process's memory. The button
ends the session (Twisted's ``session.expire()``), and the next visit starts from one.
"""

from __future__ import annotations

import html
import os

from hive.resource import Resource
from hive.server import Request

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Visits</title></head><body>
<h1>%(message)s</h1>
<p>Answered by worker process %(pid)d.</p>
<form method="post"><button>Forget me</button></form>
</body></html>
"""


class Visits(Resource):
    """Counts the client's visits in its session; POST ends the session."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        session = request.getSession()
        # Session data is a dict of JSON values, saved before the response goes out.
        visits = session["visits"] = session.get("visits", 0) + 1
        plural = "" if visits == 1 else "s"
        return self._page(request, f"You have been here {visits} time{plural}.")

    def render_POST(self, request: Request) -> bytes:
        request.getSession().expire()  # removed from the store; the cookie is dropped
        return self._page(request, "Forgotten: the next visit counts from one.")

    def _page(self, request: Request, message: str) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")  # the count is per client
        return (PAGE % {"message": html.escape(message), "pid": os.getpid()}).encode("utf-8")


root = Visits()
