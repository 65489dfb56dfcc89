"""The example site: every part of hive's resource API in one small tree.

Run it with ``make run`` (or ``hive run examples.site:root``) and visit
http://127.0.0.1:8080/.  Written as a Twisted Web program would be: porting one means
changing ``twisted.web`` imports to ``hive``.
"""

from __future__ import annotations

import asyncio
import html
import os
import time
from typing import Any

from examples.echo import EchoPage
from examples.push import Chat
from examples.sessions import Visits
from examples.standard import Geometry, calculator, guarded_page, proxy_to
from examples.team import Team
from hive.address import UNIXAddress
from hive.resource import EncodingResourceWrapper, Resource
from hive.server import NOT_DONE_YET, GzipEncoderFactory, Request
from hive.static import File
from hive.util import Redirect

#: The files served at /static/.
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>%(title)s</title>
<link rel="stylesheet" href="/static/style.css">
</head><body><h1>%(title)s</h1>%(body)s<p><a href="/">home</a></p></body></html>
"""


def page(title: str, body: str) -> bytes:
    return (PAGE % {"title": html.escape(title), "body": body}).encode("utf-8")


class StaticPage(Resource):
    """A fixed page: rendered once, served with an ETag so browsers can revalidate."""

    isLeaf = True

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.content = page(title, body)
        self.etag = b'"%x"' % (hash(self.content) & 0xFFFFFFFF)

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        if request.setETag(self.etag) is not None:
            return b""
        return self.content


class Hello(Resource):
    """The smallest dynamic resource: what benchmarks measure."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return b"Hello, world!"


class Clock(Resource):
    """A dynamic page: the time, and what the client sent."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        agent = request.getHeader(b"user-agent") or b"(none)"
        now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        client = request.getClientAddress()
        where = "a unix socket" if isinstance(client, UNIXAddress) else client.host
        body = "<p>It is %s.</p><p>You are %s at %s.</p>" % (
            now,
            html.escape(agent.decode("latin-1")),
            html.escape(where),
        )
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return page("Clock", body)


class Guestbook(Resource):
    """A form: GET shows it, POST adds an entry and redirects back (post/redirect/get)."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[tuple[str, str]] = []

    def render_GET(self, request: Request) -> bytes:
        items = "".join(
            "<li><b>%s</b>: %s</li>" % (html.escape(name), html.escape(text))
            for name, text in self.entries[-20:]
        )
        form = (
            '<form method="post"><input name="name" placeholder="name"> '
            '<input name="text" placeholder="message"> <button>Sign</button></form>'
        )
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return page("Guestbook", form + "<ul>%s</ul>" % items)

    def render_POST(self, request: Request) -> bytes:
        name = request.args.get(b"name", [b""])[0].decode("utf-8", "replace").strip()
        text = request.args.get(b"text", [b""])[0].decode("utf-8", "replace").strip()
        if not name or not text:
            request.setResponseCode(400)
            request.setHeader(b"content-type", b"text/html; charset=utf-8")
            return page("Guestbook", "<p>Both a name and a message, please.</p>")
        self.entries.append((name[:100], text[:1000]))
        request.redirect(b"/guestbook")
        return b""


class Weather(Resource):
    """An async resource: awaits something slow without blocking the worker."""

    isLeaf = True

    async def render_GET(self, request: Request) -> bytes:
        await asyncio.sleep(0.05)  # stands in for a database or an upstream call
        request.setHeader(b"content-type", b"application/json")
        return b'{"forecast": "sunny", "city": "%s"}' % (
            request.args.get(b"city", [b"nowhere"])[0].replace(b'"', b"")
        )


class Countdown(Resource):
    """Streams with NOT_DONE_YET: a line every tenth of a second, chunked."""

    isLeaf = True

    def render_GET(self, request: Request) -> Any:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        count = min(int(request.args.get(b"from", [b"5"])[0] or 5), 50)
        asyncio.get_running_loop().create_task(self._stream(request, count))
        return NOT_DONE_YET

    async def _stream(self, request: Request, count: int) -> None:
        try:
            for n in range(count, 0, -1):
                request.write(b"%d...\n" % n)
                await request.drain()  # respect a slow reader
                await asyncio.sleep(0.1)
            request.write(b"liftoff!\n")
        except ConnectionError:
            return  # the client went away; finish() below is a quiet no-op
        request.finish()


def build() -> Resource:
    """The site's root resource."""
    root = Resource()
    links = [
        ("/about", "a static page"),
        ("/hello", "hello, world"),
        ("/clock", "a dynamic page"),
        ("/guestbook", "a form"),
        ("/weather?city=Lyon", "an async resource"),
        ("/countdown", "a streaming response"),
        ("/team?name=Ada", "a templated page (hive.template): slots, renderers that await"),
        ("/static/", "static files (a directory listing)"),
        ("/old", "a redirect to /about"),
        ("/visits", "a session: your visit count, whichever worker answers"),
        ("/private", "a page behind Basic authentication (admin / hive)"),
        ("/RPC2", "an XML-RPC calculator (POST; try xmlrpc.client)"),
        ("/soap", "a SOAP service, its WSDL at /soap?wsdl (try zeep)"),
        ("/echo", "a WebSocket echo"),
        ("/chat", "push to the browser: a chat over Server-Sent Events and the bus"),
    ]
    index = "<ul>%s</ul>" % "".join(
        '<li><a href="%s">%s</a></li>' % (html.escape(href), text) for href, text in links
    )
    root.putChild(b"", StaticPage("hive example site", index))
    root.putChild(
        b"about",
        StaticPage("About", "<p>Served by hive, with Twisted Web's resource model.</p>"),
    )
    root.putChild(b"hello", Hello())
    # Dynamic pages are gzipped for clients that accept it (bodies under 1 KiB are not:
    # it would not pay); a streamed body is compressed write by write.
    gzip = [GzipEncoderFactory()]
    root.putChild(b"clock", EncodingResourceWrapper(Clock(), gzip))
    root.putChild(b"guestbook", EncodingResourceWrapper(Guestbook(), gzip))
    root.putChild(b"weather", Weather())
    root.putChild(b"countdown", EncodingResourceWrapper(Countdown(), gzip))
    root.putChild(b"team", Team())
    root.putChild(b"static", File(STATIC, cacheControl=b"public, max-age=300"))
    root.putChild(b"old", Redirect(b"/about"))
    root.putChild(b"visits", Visits())
    root.putChild(b"private", guarded_page())
    root.putChild(b"RPC2", calculator())
    root.putChild(b"soap", Geometry())
    root.putChild(b"echo", EchoPage())
    root.putChild(b"chat", Chat())
    upstream = os.environ.get("HIVE_EXAMPLE_UPSTREAM")
    if upstream:  # e.g. 127.0.0.1:9000: /proxy/... is forwarded there
        root.putChild(b"proxy", proxy_to(upstream))
    return root


root = build()
