"""WebSocket echo servers for loadtests/ws_bench.py: hive's and an ASGI one for uvicorn.

hive:    hive run loadtests.apps.ws_apps:root            (the echo at /echo)
uvicorn: uvicorn loadtests.apps.ws_apps:asgi_echo --ws websockets
"""

from __future__ import annotations

from typing import Any

from hive.resource import Resource
from hive.websocket import WebSocketResource, WebSocketTransport


class Echo:
    """Sends every message back: the protocol of the benchmark."""

    transport: WebSocketTransport

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def textMessageReceived(self, message: str) -> None:
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: BaseException) -> None:
        pass


class EchoFactory:
    def buildProtocol(self, request: Any) -> Echo:
        return Echo()


root = Resource()
root.putChild(b"echo", WebSocketResource(EchoFactory()))


async def asgi_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The same echo as an ASGI application."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
