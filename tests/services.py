"""Web services for the integration tests, served by ``hive run tests.services:root``.

/RPC2 is XML-RPC with nil and datetimes (allowNone, useDateTime); /plain is XML-RPC with
the defaults.  Both echo what they get, so a client can check every type both ways.
/soap is a SOAP service with an operation per type (tests/integration/test_soap.py).
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
from dataclasses import dataclass, field
from typing import Any

from hive import soap
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


@dataclass
class Point:
    x: float
    y: float
    label: str | None = None


@dataclass
class Shape:
    name: str
    points: list[Point]
    tags: list[str] = field(default_factory=list)
    origin: Point | None = None
    data: bytes = b""
    parent: Shape | None = None  # recursive, through Optional


class Types(soap.SOAPPublisher):
    """An operation per type; each answers what it is given."""

    namespace = "urn:hive:test:types"

    def soap_int(self, value: int) -> int:
        """Return the int given."""
        return value

    def soap_float(self, value: float) -> float:
        return value

    def soap_str(self, value: str) -> str:
        return value

    def soap_bool(self, value: bool) -> bool:
        return value

    def soap_bytes(self, value: bytes) -> bytes:
        return value

    def soap_datetime(self, value: datetime.datetime) -> datetime.datetime:
        return value

    def soap_date(self, value: datetime.date) -> datetime.date:
        return value

    def soap_decimal(self, value: decimal.Decimal) -> decimal.Decimal:
        return value

    def soap_ints(self, values: list[int]) -> list[int]:
        return values

    def soap_strs(self, values: list[str]) -> list[str]:
        return values

    def soap_matrix(self, rows: list[list[float]]) -> list[list[float]]:
        return rows

    def soap_maybe(self, value: int | None = None) -> int | None:
        return value

    def soap_sparse(self, values: list[int | None]) -> list[int | None]:
        return values

    def soap_gaps(self) -> list[int | None]:
        return [1, None, 3]

    def soap_point(self, point: Point) -> Point:
        return point

    def soap_shape(self, shape: Shape) -> Shape:
        return shape

    def soap_centre(self, points: list[Point]) -> Point:
        """The centre of the points."""
        if not points:
            raise soap.Fault("Client.NoPoints", "no points given", detail="give one or more")
        return Point(sum(p.x for p in points) / len(points), sum(p.y for p in points) / len(points))

    def soap_add(self, a: int, b: int = 1) -> int:
        return a + b

    async def soap_later(self, value: str, delay: float) -> str:
        await asyncio.sleep(min(max(delay, 0.0), 10.0))
        return value

    def soap_nothing(self) -> None:
        return None

    def soap_fail(self) -> int:
        raise RuntimeError("a secret detail")

    async def soap_async_fault(self) -> int:
        raise soap.Fault("{urn:hive:test:codes}Busy", "try later")

    def soap_wrong(self) -> int:
        return "not an int"  # type: ignore[return-value]

    @soap.withRequest
    def soap_client(self, request: Request) -> str:
        return request.getClientIP() or ""


def echo(**options: Any) -> Echo:
    service = Echo(**options)
    addIntrospection(service)
    return service


root = Resource()
root.putChild(b"RPC2", echo(allowNone=True, useDateTime=True))
root.putChild(b"plain", echo())
root.putChild(b"soap", Types())
