"""Local peers for the tutorial's programs that call the internet: served by ``hive run``.

advogato.py, xmlrpcclient.py and xmlrpc-debug.py call advogato.org and bugzilla.redhat.com;
the tests point them here instead (``hive run tests.integration.tutorial_peers:root``):
XML-RPC with the methods they call, keeping the diaries it is given so that the test can
read them back (one worker: ``--workers 1``).
"""

from __future__ import annotations

from hive.resource import Resource
from hive.xmlrpc import XMLRPC, Fault

USERS = {"ada": "lovelace"}


class Tests(XMLRPC):
    """advogato.org's ``test.*`` (xmlrpcclient.py)."""

    def xmlrpc_sumprod(self, x: int, y: int) -> list[int]:
        return [x + y, x * y]

    def xmlrpc_capitalize(self, text: str) -> str:
        return text.title()


class Diary(XMLRPC):
    """advogato.org's ``diary.*`` (advogato.py)."""

    def __init__(self, cookies: dict[str, str]) -> None:
        super().__init__()
        self.cookies = cookies
        self.entries: dict[str, list[str]] = {}

    def xmlrpc_set(self, cookie: str, index: int, text: str) -> int:
        name = self.cookies.get(cookie)
        if name is None:
            raise Fault(2, "not logged in")
        self.entries.setdefault(name, []).append(text)
        return 1

    def xmlrpc_get(self, name: str) -> list[str]:
        return self.entries.get(name, [])


class Bugzilla(XMLRPC):
    """bugzilla's ``Bugzilla.version`` (xmlrpc-debug.py)."""

    def xmlrpc_version(self) -> dict[str, str]:
        return {"version": "5.0.4"}


class Peer(XMLRPC):
    def __init__(self) -> None:
        super().__init__()
        self.cookies: dict[str, str] = {}
        self.putSubHandler("test", Tests())
        self.putSubHandler("diary", Diary(self.cookies))
        self.putSubHandler("Bugzilla", Bugzilla())

    def xmlrpc_authenticate(self, name: str, password: str) -> str:
        if USERS.get(name) != password:
            raise Fault(1, "bad password")
        cookie = f"cookie-{name}"
        self.cookies[cookie] = name
        return cookie


root = Resource()
root.putChild(b"XMLRPC", Peer())
root.putChild(b"xmlrpc.cgi", root.children[b"XMLRPC"])
