"""The site tests/integration/test_nginx.py serves behind a real nginx: every kind of link
hive makes, the request as hive sees it, streams both ways, a WebSocket and a Flask
application, and a FastAPI one; and the same tree at ``/vm`` for nginx to reach through
``/vhost/https/example.org:443/vm/`` (VHostMonsterResource).

``HIVE_TEST_FILES`` names the directory served at ``/files``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import wsgiref.util
from typing import Any

from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from fastapi.responses import RedirectResponse
from flask import Flask, redirect, url_for
from flask import request as flask_request

from hive import soap
from hive.asgi import ASGIResource
from hive.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from hive.cred.portal import Portal
from hive.guard import DigestCredentialFactory, HTTPAuthSessionWrapper
from hive.resource import IResource, Resource
from hive.server import NOT_DONE_YET, Request
from hive.static import File
from hive.urlpath import URLPath
from hive.util import ParentRedirect, Redirect, redirectTo
from hive.vhost import VHostMonsterResource
from hive.websocket import WebSocketResource, WebSocketTransport
from hive.worker.body import RequestBody
from hive.wsgi import WSGIResource


def _json(request: Request, value: object) -> bytes:
    request.setHeader(b"content-type", b"application/json")
    return json.dumps(value).encode()


def _text(value: bytes) -> str:
    return value.decode("latin-1")


class Seen(Resource):
    """The request as hive sees it, and the links it makes from there."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        client = request.getClientAddress()
        host = request.getHost()
        here = request.URLPath()
        return _json(
            request,
            {
                "client": [getattr(client, "host", None), getattr(client, "port", None)],
                "client_ip": request.getClientIP(),
                "host": [getattr(host, "host", None), getattr(host, "port", None)],
                "hostname": _text(request.getRequestHostname()),
                "secure": request.isSecure(),
                "pre_path_url": _text(request.prePathURL()),
                "child": str(here.child(b"next")),
                "sibling": str(here.sibling(b"other")),
                "prepath": [_text(part) for part in request.prepath],
                "sitepath": [_text(part) for part in request.sitepath],
                "postpath": [_text(part) for part in request.postpath],
                "uri": _text(request.uri),
            },
        )


class Redirects(Resource):
    """``/redirect/<kind>``: request.redirect and redirectTo with the URLs an application
    makes (from URLPath, and relative ones)."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        kind = request.postpath[0] if request.postpath else b""
        if kind == b"urlpath":
            # An absolute URL from the request: URLPath of /redirect, its sibling "seen".
            request.redirect(str(request.URLPath().sibling(b"seen")).encode())
            return b""
        if kind == b"relative":
            return redirectTo(b"../seen/from-relative", request)
        return redirectTo(str(URLPath.fromRequest(request).child(b"seen")).encode(), request)


class Stream(Resource):
    """A NOT_DONE_YET stream: ``first``, then (once ``/release`` is asked for) ``second``.

    With ``?accel=no`` it says ``X-Accel-Buffering: no``, which turns nginx's buffering
    off for this response alone."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.gates: dict[bytes, asyncio.Event] = {}

    def gate(self, name: bytes) -> asyncio.Event:
        if len(self.gates) > 100:
            self.gates.clear()
        return self.gates.setdefault(name, asyncio.Event())

    def render_GET(self, request: Request) -> Any:
        request.setHeader(b"content-type", b"text/plain")
        if request.args.get(b"accel") == [b"no"]:
            request.setHeader(b"x-accel-buffering", b"no")
        name = request.args.get(b"gate", [b""])[0]
        request.write(b"first\n")
        asyncio.get_running_loop().create_task(self._rest(request, self.gate(name)))
        return NOT_DONE_YET

    async def _rest(self, request: Request, gate: asyncio.Event) -> None:
        await gate.wait()
        request.write(b"second\n")
        request.finish()


class Release(Resource):
    isLeaf = True

    def __init__(self, stream: Stream) -> None:
        super().__init__()
        self.stream = stream

    def render_GET(self, request: Request) -> bytes:
        self.stream.gate(request.args.get(b"gate", [b""])[0]).set()
        return b"released"


class Echo(Resource):
    """A POST's body as it arrived: length, digest, form fields."""

    isLeaf = True

    def render_POST(self, request: Request) -> bytes:
        content_type = request.getHeader(b"content-type") or b""
        form = {}
        if content_type.startswith(b"application/x-www-form-urlencoded"):
            form = {_text(k): [_text(v) for v in vs] for k, vs in request.args.items()}
        body = request.content.read() if not form else b""
        return _json(
            request,
            {"length": len(body), "sha256": hashlib.sha256(body).hexdigest(), "form": form},
        )


class Upload(Resource):
    """A request body read as it arrives; ``/progress`` tells how much is in so far."""

    isLeaf = True
    streamsRequestBody = True

    def __init__(self) -> None:
        super().__init__()
        self.received: dict[str, int] = {}

    async def render_POST(self, request: Request) -> bytes:
        name = _text(request.args.get(b"name", [b""])[0])
        body = request.content
        assert isinstance(body, RequestBody), "the body should arrive as a stream"
        digest = hashlib.sha256()
        self.received[name] = 0
        async for chunk in body.chunks():
            digest.update(chunk)
            self.received[name] += len(chunk)
        return _json(request, {"length": self.received.pop(name), "sha256": digest.hexdigest()})


class Progress(Resource):
    isLeaf = True

    def __init__(self, upload: Upload) -> None:
        super().__init__()
        self.upload = upload

    def render_GET(self, request: Request) -> bytes:
        name = _text(request.args.get(b"name", [b""])[0])
        return b"%d" % self.upload.received.get(name, -1)


class WebSocketEcho:
    """A WebSocket that first says how its handshake request looked, then echoes."""

    def __init__(self, request: Request) -> None:
        client = request.getClientAddress()
        self.seen = {
            "client": getattr(client, "host", None),
            "secure": request.isSecure(),
            "pre_path_url": _text(request.prePathURL()),
        }
        self.transport: WebSocketTransport | None = None

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        assert self.transport is not None
        self.transport.sendTextMessage(json.dumps(self.seen))

    def textMessageReceived(self, message: str) -> None:
        assert self.transport is not None
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: BaseException) -> None:
        pass


class WebSocketEchoFactory:
    def buildProtocol(self, request: Request) -> WebSocketEcho:
        return WebSocketEcho(request)


class Greeter(soap.SOAPPublisher):
    namespace = "urn:hive:test:nginx"

    def soap_greet(self, name: str) -> str:
        return f"hello {name}"

    @soap.withRequest
    def soap_client(self, request: Request) -> str:
        return request.getClientIP() or ""


class Realm:
    """Each user gets the page that says who logged in."""

    def requestAvatar(self, avatarId: Any, mind: object, *interfaces: Any) -> Any:
        page = Resource()
        page.putChild(b"", Who(avatarId))
        return IResource, page, lambda: None


class Who(Resource):
    isLeaf = True

    def __init__(self, user: bytes) -> None:
        super().__init__()
        self.user = user

    def render_GET(self, request: Request) -> bytes:
        return b"hello " + self.user


def private() -> HTTPAuthSessionWrapper:
    """Digest: the client hashes the target it sent, prefix and all."""
    portal = Portal(Realm(), [InMemoryUsernamePasswordDatabaseDontUse(joe=b"blow")])
    return HTTPAuthSessionWrapper(portal, [DigestCredentialFactory("SHA-256", "behind nginx")])


flask_app = Flask(__name__)


@flask_app.get("/")
def flask_seen() -> dict[str, Any]:
    environ = flask_request.environ
    keys = ("SCRIPT_NAME", "PATH_INFO", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT")
    return {
        **{key: environ.get(key) for key in keys},
        "REMOTE_ADDR": environ.get("REMOTE_ADDR"),
        "url_scheme": environ["wsgi.url_scheme"],
        "request_uri": wsgiref.util.request_uri(environ),
        "url_for": url_for("flask_page", _external=True),
    }


@flask_app.get("/page")
def flask_page() -> str:
    return "flask page"


@flask_app.get("/go")
def flask_go() -> Any:
    return redirect(url_for("flask_page"))


fastapi_app = FastAPI()


@fastapi_app.get("/")
def fastapi_seen(request: FastAPIRequest) -> dict[str, Any]:
    return {
        "root_path": request.scope["root_path"],
        "path": request.scope["path"],
        "scheme": request.scope["scheme"],
        "server": list(request.scope["server"] or ()),
        "client": list(request.scope["client"] or ())[:1],
        "url": str(request.url),
        "url_for": str(request.url_for("fastapi_page")),
    }


@fastapi_app.get("/page")
def fastapi_page() -> str:
    return "fastapi page"


@fastapi_app.get("/go")
def fastapi_go(request: FastAPIRequest) -> RedirectResponse:
    return RedirectResponse(request.url_for("fastapi_page"))


def build() -> Resource:
    root = Resource()
    root.putChild(b"", Seen())
    root.putChild(b"seen", Seen())
    root.putChild(b"redirect", Redirects())
    root.putChild(b"moved", Redirect(b"seen/from-moved"))
    parent = Resource()
    parent.putChild(b"up", ParentRedirect())
    parent.putChild(b"", Seen())
    root.putChild(b"parent", parent)
    root.putChild(b"files", File(os.environ.get("HIVE_TEST_FILES", os.getcwd())))
    stream = Stream()
    upload = Upload()
    streams = Resource()
    streams.putChild(b"events", stream)
    streams.putChild(b"release", Release(stream))
    streams.putChild(b"upload", upload)
    streams.putChild(b"progress", Progress(upload))
    # Under the location nginx buffers nothing in, and beside it (X-Accel-Buffering).
    root.putChild(b"stream", streams)
    root.putChild(b"events", stream)
    root.putChild(b"release", Release(stream))
    root.putChild(b"echo", Echo())
    root.putChild(b"soap", Greeter())
    root.putChild(b"wsgi", WSGIResource(None, None, flask_app))
    root.putChild(b"asgi", ASGIResource(fastapi_app))
    root.putChild(b"ws", WebSocketResource(WebSocketEchoFactory()))
    root.putChild(b"private", private())
    return root


root = build()
root.putChild(b"vhost", VHostMonsterResource())
root.putChild(b"vm", build())
