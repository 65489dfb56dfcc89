"""A WebSocket echo, and the page that talks to it (the example site's /echo).

Written against Twisted 26.10's twisted.web.websocket names: a Twisted program of the
same shape ports by its imports.
"""

from __future__ import annotations

from typing import Any

from hive.resource import Resource
from hive.websocket import WebSocketResource, WebSocketTransport

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>WebSocket echo</title>
<link rel="stylesheet" href="/static/style.css">
</head><body><h1>WebSocket echo</h1>
<form id="say"><input id="text" autofocus placeholder="say something"> <button>send</button></form>
<ul id="log"></ul>
<script>
const log = document.getElementById("log");
function note(text) {
  const item = document.createElement("li");
  item.textContent = text;
  log.prepend(item);
}
const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const socket = new WebSocket(scheme + "//" + location.host + "/echo/ws");
socket.onopen = () => note("connected");
socket.onmessage = (event) => note("echo: " + event.data);
socket.onclose = (event) => note("closed (" + event.code + ")");
document.getElementById("say").onsubmit = (event) => {
  event.preventDefault();
  const text = document.getElementById("text");
  socket.send(text.value);
  text.value = "";
};
</script>
<p><a href="/">home</a></p></body></html>
"""


class Echo:
    """Sends each message back, with how many this connection has seen."""

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport
        self.count = 0

    def negotiationFinished(self) -> None:
        self.transport.sendTextMessage("hello from hive")

    def textMessageReceived(self, message: str) -> None:
        self.count += 1
        self.transport.sendTextMessage(f"{self.count}: {message}")

    def bytesMessageReceived(self, data: bytes) -> None:
        self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: BaseException) -> None:
        pass


class EchoFactory:
    def buildProtocol(self, request: Any) -> Echo:
        return Echo()


class EchoPage(Resource):
    isLeaf = False

    def __init__(self) -> None:
        super().__init__()
        self.putChild(b"ws", WebSocketResource(EchoFactory()))

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return PAGE
