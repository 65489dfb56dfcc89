"""A spyne SOAP service mounted in a hive resource tree with WSGIResource, served by
``hive run tests.spyne_app:root`` for tests/integration/test_soap.py (spyne installs on
Python 3.11 and below only).  Users with spyne services run them on hive this way."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

with warnings.catch_warnings():
    # spyne 2.14 still imports through six's meta path importer.
    warnings.simplefilter("ignore")
    from spyne import (
        Application,
        ComplexModel,
        Double,
        Integer,
        Iterable,
        ServiceBase,
        Unicode,
        rpc,
    )
    from spyne.protocol.soap import Soap11
    from spyne.server.wsgi import WsgiApplication

from hive.resource import Resource
from hive.wsgi import WSGIResource

TNS = "urn:hive:test:spyne"


class Point(ComplexModel):
    __namespace__ = TNS
    x = Double
    y = Double


class Hello(ServiceBase):
    @rpc(Unicode, Integer, _returns=Iterable(Unicode))
    def say_hello(ctx: Any, name: str, times: int) -> Iterator[str]:
        for _ in range(times):
            yield f"Hello, {name}"

    @rpc(Point, Point, _returns=Point)
    def midpoint(ctx: Any, a: Point, b: Point) -> Point:
        return Point(x=(a.x + b.x) / 2, y=(a.y + b.y) / 2)

    @rpc(Integer, Integer, _returns=Integer)
    def divide(ctx: Any, a: int, b: int) -> int:
        return a // b


application = Application(
    [Hello], tns=TNS, in_protocol=Soap11(validator="lxml"), out_protocol=Soap11()
)

services = Resource()
services.putChild(b"hello", WSGIResource(None, None, WsgiApplication(application)))
root = Resource()
root.putChild(b"services", services)
