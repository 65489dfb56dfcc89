"""hive: a Resource tree, written as the Twisted Web program in twisted_app.py would be.

hive run loadtests.apps.hive_app:root --workers 1 --no-access-log
"""

from __future__ import annotations

import hive.template
from hive.asgi import ASGIResource
from hive.iweb import IRequest
from hive.resource import Resource
from hive.server import Request
from hive.static import File
from hive.wsgi import WSGIResource
from loadtests.apps import DEPTH, HELLO, STATIC_DIR
from loadtests.apps.asgi_app import app as asgi_app
from loadtests.apps.fastapi_app import app as fastapi_app
from loadtests.apps.template_page import pages, table_rows
from loadtests.apps.wsgi_app import app as wsgi_app


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return HELLO

    def render_POST(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return b"%d" % len(request.content.read())


class Level(Resource):
    """One level of /deep/1/2/...: makes its child in getChild, answers at the bottom."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.depth = depth

    def getChild(self, path: bytes, request: IRequest) -> Resource:
        return Level(self.depth + 1)

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return HELLO if self.depth == DEPTH else b"level %d" % self.depth


class Table(Resource):
    """The template scenario: a 1,000-row table (loadtests/apps/template_page.py)."""

    isLeaf = True
    page = pages(hive.template)["iteration"]
    rows = table_rows()

    def render_GET(self, request: Request) -> object:
        return hive.template.renderElement(request, self.page(self.rows))


root = Resource()
root.putChild(b"hello", Hello())
root.putChild(b"template", Table())
root.putChild(b"post", Hello())
root.putChild(b"deep", Level(0))
root.putChild(b"wsgi", WSGIResource(None, None, wsgi_app))
root.putChild(b"asgi", ASGIResource(asgi_app))
root.putChild(b"fastapi", ASGIResource(fastapi_app))
if STATIC_DIR:
    root.putChild(b"static", File(STATIC_DIR))
