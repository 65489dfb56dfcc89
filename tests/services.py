"""Web services for the integration tests, served by ``hive run tests.services:root``.

/RPC2 is XML-RPC with nil and datetimes (allowNone, useDateTime); /plain is XML-RPC with
the defaults.  Both echo what they get, so a client can check every type both ways.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hive.resource import Resource
from hive.server import Request
from hive.xmlrpc import XMLRPC, Fault, addIntrospection, withRequest


class Echo(XMLRPC):
    def xmlrpc_echo(self, value: Any) -> Any:
        """Return the value given."""
        return value

    def xmlrpc_types(self, *values: Any) -> list[str]:
        """Return the Python type name of each argument, as the server parsed it."""
        return [type(value).__name__ for value in values]

    async def xmlrpc_later(self, value: Any, delay: float = 0.0) -> Any:
        """Return the value after ``delay`` seconds (at most 10)."""
        await asyncio.sleep(min(max(delay, 0.0), 10.0))
        return value

    def xmlrpc_fault(self, code: int, message: str) -> None:
        raise Fault(code, message)

    def xmlrpc_fail(self) -> None:
        raise RuntimeError("a secret detail")

    def xmlrpc_nothing(self) -> None:
        return None

    def xmlrpc_huge(self) -> int:
        """An int XML-RPC cannot carry."""
        return 2**40

    def xmlrpc_big(self, size: int) -> str:
        """A string of ``size`` bytes."""
        return "x" * size

    @withRequest
    def xmlrpc_headers(self, request: Request) -> dict[str, str]:
        """The request's headers, for the client tests."""
        return {
            name.decode("latin-1").lower(): values[-1].decode("latin-1")
            for name, values in request.requestHeaders.getAllRawHeaders()
        }

    xmlrpc_echo.signature = [["string", "string"]]  # type: ignore[attr-defined]  # noqa: RUF012


def echo(**options: Any) -> Echo:
    service = Echo(**options)
    addIntrospection(service)
    return service


root = Resource()
root.putChild(b"RPC2", echo(allowNone=True, useDateTime=True))
root.putChild(b"plain", echo())
