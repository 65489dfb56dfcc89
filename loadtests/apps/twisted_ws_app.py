"""Twisted's own WebSocketResource (twisted.web.websocket, on wsproto), epoll reactor: echo.

python -m loadtests.apps.twisted_ws_app --port 8080      (the echo at /echo)
"""

from __future__ import annotations

import argparse
from typing import Any

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import reactor  # noqa: E402  (after the reactor is chosen)
from twisted.web.resource import Resource  # noqa: E402
from twisted.web.server import Site  # noqa: E402
from twisted.web.websocket import WebSocketResource  # noqa: E402


class Echo:
    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def textMessageReceived(self, message: str) -> None:
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        self.transport.sendBytesMessage(data)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Any) -> None:
        pass


class EchoFactory:
    def buildProtocol(self, request: Any) -> Echo:
        return Echo()


class QuietSite(Site):
    def log(self, request: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    root = Resource()
    root.putChild(b"echo", WebSocketResource(EchoFactory()))  # type: ignore[arg-type]
    reactor.listenTCP(args.port, QuietSite(root), backlog=2048, interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
