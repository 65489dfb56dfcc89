"""Twisted Web on the epoll reactor: the tree of hive_app.py, plus static.File and WSGI.

python -m loadtests.apps.twisted_app --port 8080
"""

from __future__ import annotations

import argparse

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import reactor  # noqa: E402  (after the reactor is chosen)
from twisted.web import template  # noqa: E402
from twisted.web.resource import Resource  # noqa: E402
from twisted.web.server import Request, Site  # noqa: E402
from twisted.web.static import File  # noqa: E402
from twisted.web.wsgi import WSGIResource  # noqa: E402

from loadtests.apps import DEPTH, HELLO, STATIC_DIR  # noqa: E402
from loadtests.apps.template_page import pages, table_rows  # noqa: E402
from loadtests.apps.wsgi_app import app as wsgi_app  # noqa: E402


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

    def getChild(self, path: bytes, request: Request) -> Resource:
        return Level(self.depth + 1)

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return HELLO if self.depth == DEPTH else b"level %d" % self.depth


class Table(Resource):
    """The template scenario: a 1,000-row table (loadtests/apps/template_page.py)."""

    isLeaf = True
    page = pages(template)["iteration"]
    rows = table_rows()

    def render_GET(self, request: Request) -> object:
        return template.renderElement(request, self.page(self.rows))


class QuietSite(Site):
    """No access log: Twisted's Site would otherwise format a line per request."""

    def log(self, request: Request) -> None:
        pass


def build() -> Resource:
    root = Resource()
    root.putChild(b"hello", Hello())
    root.putChild(b"post", Hello())
    root.putChild(b"deep", Level(0))
    root.putChild(b"template", Table())
    if STATIC_DIR:
        root.putChild(b"static", File(STATIC_DIR))
    root.putChild(b"wsgi", WSGIResource(reactor, reactor.getThreadPool(), wsgi_app))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    reactor.listenTCP(args.port, QuietSite(build()), backlog=2048, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
