"""SOAP against real ``hive run`` processes: zeep (the maintained Python SOAP client)
reads the WSDL of hive.soap.SOAPPublisher (tests/services.py) and calls every type, faults
included; and a spyne service mounted with WSGIResource answers zeep too."""

from __future__ import annotations

import datetime
import decimal
import http.client
import importlib.util
import math
from collections.abc import Iterator
from typing import Any

import pytest

zeep = pytest.importorskip("zeep")
from lxml import etree  # noqa: E402  (zeep brings lxml; the skip comes first)

from tests.integration.conftest import HiveProcess  # noqa: E402

ENV = "http://schemas.xmlsoap.org/soap/envelope/"


@pytest.fixture(scope="module")
def services() -> Iterator[HiveProcess]:
    server = HiveProcess(["tests.services:root", "--bind", "127.0.0.1:0"])
    server.wait_listening()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def soap(services: HiveProcess) -> Any:
    transport = zeep.transports.Transport(timeout=10, operation_timeout=10)
    return zeep.Client(f"{services.url}/soap?wsdl", transport=transport)


def test_scalars_round_trip(soap: Any) -> None:
    s = soap.service
    for value in [0, 7, -(2**63), 2**63 - 1]:
        assert s.int(value) == value
    for number in [1.5, -0.0, 1e300, 5e-324, math.inf, -math.inf]:
        assert s.float(number) == number
    assert math.isnan(s.float(math.nan))
    for text in ["héllo ☃", "<&>\"'", " spaced  ", "line\nbreak", "]]>"]:
        assert s.str(text) == text
    assert s.str("") is None  # zeep reads an empty element as None
    assert s.bool(True) is True and s.bool(False) is False
    assert s.bytes(bytes(range(256))) == bytes(range(256))
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456)
    assert s.datetime(when) == when
    aware = datetime.datetime(
        2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
    )
    assert s.datetime(aware) == aware and s.datetime(aware).utcoffset() == aware.utcoffset()
    assert s.date(datetime.date(1999, 12, 31)) == datetime.date(1999, 12, 31)
    assert s.decimal(decimal.Decimal("-12345678901234567890.000001")) == decimal.Decimal(
        "-12345678901234567890.000001"
    )


def test_lists_and_optionals(soap: Any) -> None:
    s = soap.service
    assert s.ints([1, 2, 3]) == [1, 2, 3]
    assert s.ints([]) == []
    assert s.strs(["a", "b c"]) == ["a", "b c"]
    rows = s.matrix([{"item": [1.0, 2.5]}, {"item": [3.0]}])
    assert [row["item"] for row in rows] == [[1.0, 2.5], [3.0]]
    assert s.maybe(3) == 3
    assert s.maybe(None) is None and s.maybe() is None
    assert s.gaps() == [1, None, 3]  # nil items keep their places


def test_dataclasses(soap: Any) -> None:
    s = soap.service
    point = soap.get_type("ns0:Point")
    shape = soap.get_type("ns0:Shape")
    answer = s.point(point(x=1.5, y=-2, label="p"))
    assert (answer.x, answer.y, answer.label) == (1.5, -2.0, "p")
    assert s.point(point(x=0, y=0)).label is None
    nested = shape(
        name="outer",
        points=[point(x=1, y=2), point(x=3, y=4, label="b")],
        tags=["a", "b"],
        origin=point(x=9, y=9),
        data=b"\x00\x01",
        parent=shape(name="inner", points=[point(x=5, y=6)]),
    )
    answer = s.shape(nested)
    assert answer.name == "outer" and answer.tags == ["a", "b"] and answer.data == b"\x00\x01"
    assert [(p.x, p.y, p.label) for p in answer.points] == [(1, 2, None), (3, 4, "b")]
    assert (answer.origin.x, answer.origin.y) == (9, 9)
    assert answer.parent.name == "inner" and answer.parent.points[0].x == 5
    assert answer.parent.parent is None and answer.parent.tags == []
    centre = s.centre([point(x=0, y=0), point(x=2, y=4)])
    assert (centre.x, centre.y) == (1.0, 2.0)


def test_defaults_async_nothing_and_the_request(soap: Any) -> None:
    s = soap.service
    assert s.add(2) == 3 and s.add(2, 5) == 7
    assert s.later("done", 0.05) == "done"
    assert s.nothing() is None
    assert s.client() == "127.0.0.1"


def test_faults(soap: Any, services: HiveProcess) -> None:
    s = soap.service
    with pytest.raises(zeep.exceptions.Fault) as caught:
        s.centre([])
    fault = caught.value
    assert (fault.code, fault.message) == ("soap:Client.NoPoints", "no points given")
    assert fault.detail.text == "give one or more"
    with pytest.raises(zeep.exceptions.Fault) as caught:
        s.fail()
    assert (caught.value.code, caught.value.message) == ("soap:Server", "Method fail failed.")
    assert caught.value.detail is None  # no traceback: the site does not show them
    assert "a secret detail" in services.wait_for_output("a secret detail")
    with pytest.raises(zeep.exceptions.Fault) as caught:
        s.async_fault()
    assert caught.value.code.endswith(":Busy") and caught.value.message == "try later"
    with pytest.raises(zeep.exceptions.Fault) as caught:
        s.wrong()
    assert caught.value.code == "soap:Server" and "str for xsd:long" in caught.value.message
    with pytest.raises(zeep.exceptions.Fault) as caught:
        s.int(2**63)  # zeep sends it; hive says it does not fit
    assert caught.value.code == "soap:Client" and "xsd:long" in caught.value.message
    assert s.int(1) == 1  # and the worker goes on


def post(server: HiveProcess, body: bytes, path: str = "/soap") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", path, body, {"Content-Type": "text/xml", "SOAPAction": '""'})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def fault_of(body: bytes) -> tuple[str | None, str | None]:
    root = etree.fromstring(body)
    code = root.findtext(f".//{{{ENV}}}Fault/faultcode")
    return code, root.findtext(f".//{{{ENV}}}Fault/faultstring")


def test_what_zeep_would_not_send(services: HiveProcess) -> None:
    call = (
        f'<s:Envelope xmlns:s="{ENV}"><s:Body><t:nope xmlns:t="urn:hive:test:types"/>'
        "</s:Body></s:Envelope>"
    ).encode()
    status, body = post(services, call)
    assert status == 500 and fault_of(body) == ("soap:Client", "Method nope not found")
    doctype = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + call
    status, body = post(services, doctype)
    assert status == 500 and "document type" in str(fault_of(body)[1])
    assert b"root:" not in body
    soap12 = call.replace(ENV.encode(), b"http://www.w3.org/2003/05/soap-envelope")
    assert fault_of(post(services, soap12)[1])[0] == "soap:VersionMismatch"
    status, _ = post(services, b"x" * (5 * 1024 * 1024))
    assert status == 413


def test_the_wsdl_address_is_where_it_was_fetched(services: HiveProcess, soap: Any) -> None:
    (service,) = soap.wsdl.services.values()
    (port,) = service.ports.values()
    assert port.binding_options["address"] == f"{services.url}/soap"
    conn = http.client.HTTPConnection("127.0.0.1", services.port, timeout=10)
    # request.prePathURL(): the Host header's name, the port the request came to.
    conn.request("GET", "/soap?WSDL", headers={"Host": "soap.example"})
    response = conn.getresponse()
    assert response.getheader("Content-Type") == "text/xml; charset=utf-8"
    assert b'location="http://soap.example:%d/soap"' % services.port in response.read()
    conn.request("GET", "/soap")
    response = conn.getresponse()
    page = response.read()
    assert response.status == 200 and b"?wsdl" in page and b"<li>centre</li>" in page
    conn.request("PUT", "/soap", b"")
    response = conn.getresponse()
    response.read()
    assert response.status == 405 and response.getheader("Allow") == "GET, HEAD, POST"
    conn.close()


# -- spyne, mounted with WSGIResource -------------------------------------------------------------


SPYNE_SKIP = "spyne is not installed (it runs on Python 3.11 and below only)"


@pytest.fixture(scope="module")
def spyne_hive() -> Iterator[HiveProcess]:
    if importlib.util.find_spec("spyne") is None:
        pytest.skip(SPYNE_SKIP)
    server = HiveProcess(["tests.spyne_app:root", "--bind", "127.0.0.1:0"])
    server.wait_listening()
    yield server
    server.stop()


def test_a_spyne_service_under_wsgi_resource(spyne_hive: HiveProcess) -> None:
    transport = zeep.transports.Transport(timeout=10, operation_timeout=10)
    client = zeep.Client(f"{spyne_hive.url}/services/hello/?wsdl", transport=transport)
    (service,) = client.wsdl.services.values()
    (port,) = service.ports.values()
    assert port.binding_options["address"] == f"{spyne_hive.url}/services/hello/"
    assert client.service.say_hello("hive", 3) == ["Hello, hive"] * 3
    point = client.get_type("ns0:Point")
    middle = client.service.midpoint(point(x=0, y=0), point(x=2, y=6))
    assert (middle.x, middle.y) == (1.0, 3.0)
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.divide(1, 0)
    assert "Server" in caught.value.code
    assert client.service.divide(7, 2) == 3


def test_the_example_site_geometry_service() -> None:
    server = HiveProcess(["examples.site:root", "--bind", "127.0.0.1:0"])
    try:
        server.wait_listening()
        client = zeep.Client(f"{server.url}/soap?wsdl")
        point = client.get_type("ns0:Point")
        middle = client.service.midpoint(point(x=0, y=0), point(x=4, y=2))
        assert (middle.x, middle.y) == (2.0, 1.0)
        assert client.service.distance(point(x=0, y=0), point(x=3, y=4)) == 5.0
        with pytest.raises(zeep.exceptions.Fault, match="no points given"):
            client.service.centroid([])
    finally:
        server.stop()
