"""hive.xmlrpc through the real Site and Request, in memory."""

from __future__ import annotations

import asyncio
import base64
import datetime
import gzip
import logging
import xmlrpc.client
from typing import Any

import pytest

from hive.resource import Resource
from hive.server import Request
from hive.xmlrpc import (
    XMLRPC,
    Binary,
    DateTime,
    Fault,
    Proxy,
    ResponseError,
    addIntrospection,
    withRequest,
)
from tests.unit.harness import Harness, Response, settle


class Maths(XMLRPC):
    def xmlrpc_add(self, a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    xmlrpc_add.signature = [["int", "int", "int"]]  # type: ignore[attr-defined]  # noqa: RUF012


class Service(XMLRPC):
    def xmlrpc_echo(self, *args: Any) -> Any:
        """Return the arguments."""
        return list(args)

    async def xmlrpc_slow(self, x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    def xmlrpc_fail(self) -> None:
        raise ValueError("secret detail")

    async def xmlrpc_async_fail(self) -> None:
        raise ValueError("secret detail")

    def xmlrpc_fault(self) -> None:
        raise Fault(42, "the answer")

    def xmlrpc_returned_fault(self) -> Fault:
        return Fault(7, "returned")

    async def xmlrpc_async_fault(self) -> None:
        raise Fault(43, "async fault")

    def xmlrpc_nothing(self) -> None:
        return None

    def xmlrpc_types(self, value: Any) -> str:
        return type(value).__name__

    def xmlrpc_huge(self) -> int:
        return 2**40

    @withRequest
    def xmlrpc_whoami(self, request: Request, greeting: str) -> str:
        return f"{greeting} {request.getClientIP()} {request.method.decode()}"

    not_callable = 1
    xmlrpc_attribute = "not callable"


def post(h: Harness, body: bytes | str, path: str = "/RPC2") -> Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    h.send(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
        f"Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    return h.response("POST")


def call(resource: XMLRPC, method: str, *params: Any) -> Any:
    """Call ``method`` over XML-RPC; the result, or the Fault raised by loads."""

    async def go() -> Response:
        root = Resource()
        root.putChild(b"RPC2", resource)
        h = Harness(root)
        data = xmlrpc.client.dumps(params, method, allow_none=True).encode("utf-8")
        h.send(
            b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
        )
        for _ in range(50):
            await settle()
            if h.connection.idle:
                break
        return h.response("POST")

    response = asyncio.run(go())
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert response.headers["Content-Length"] == str(len(response.body))
    (result,), _ = xmlrpc.client.loads(response.body, use_datetime=resource.useDateTime)
    return result


def fault_of(resource: XMLRPC, method: str, *params: Any) -> Fault:
    with pytest.raises(Fault) as caught:
        call(resource, method, *params)
    return caught.value


def test_sync_and_async_methods() -> None:
    service = Service()
    assert call(service, "echo", 1, "two", [3.5], {"k": True}) == [1, "two", [3.5], {"k": True}]
    assert call(service, "slow", 21) == 42


def test_faults_raised_or_returned_keep_their_code() -> None:
    service = Service()
    for method, code, message in [
        ("fault", 42, "the answer"),
        ("returned_fault", 7, "returned"),
        ("async_fault", 43, "async fault"),
    ]:
        fault = fault_of(service, method)
        assert (fault.faultCode, fault.faultString) == (code, message)


def test_exceptions_are_fault_8002_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    service = Service()
    with caplog.at_level(logging.ERROR, logger="hive.xmlrpc"):
        for method in ["fail", "async_fail"]:
            fault = fault_of(service, method)
            assert (fault.faultCode, fault.faultString) == (8002, "error")
    assert "secret detail" not in str(fault)
    assert sum("secret detail" in record.exc_text for record in caplog.records) == 2  # type: ignore[operator]


def test_unknown_procedures_are_fault_8001() -> None:
    service = Service()
    for name in ["missing", "attribute", "nope.add", "not_callable"]:
        assert fault_of(service, name).faultCode == 8001, name


def test_sub_handlers() -> None:
    service = Service()
    maths = Maths()
    service.putSubHandler("maths", maths)
    assert service.getSubHandler("maths") is maths
    assert service.getSubHandler("other") is None
    assert service.getSubHandlerPrefixes() == ["maths"]
    assert call(service, "maths.add", 2, 3) == 5
    assert fault_of(service, "maths.sub").faultCode == 8001


def test_with_request() -> None:
    assert call(Service(), "whoami", "hi") == "hi 192.0.2.7 POST"


def test_introspection() -> None:
    service = Service()
    service.putSubHandler("maths", Maths())
    addIntrospection(service)
    methods = call(service, "system.listMethods")
    assert "echo" in methods and "maths.add" in methods
    assert {"system.listMethods", "system.methodHelp", "system.methodSignature"} <= set(methods)
    assert call(service, "system.methodHelp", "maths.add") == "Add two numbers."
    assert call(service, "system.methodHelp", "slow") == ""
    assert call(service, "system.methodSignature", "maths.add") == [["int", "int", "int"]]
    assert call(service, "system.methodSignature", "echo") == ""
    assert fault_of(service, "system.methodHelp", "missing").faultCode == 8001


def test_none_needs_allow_none() -> None:
    fault = fault_of(Service(), "nothing")
    assert fault.faultCode == 8002 and "Can't serialize output" in fault.faultString
    assert call(Service(allowNone=True), "nothing") is None
    # Results XML-RPC cannot carry are a fault, not a broken response.
    assert "Can't serialize output" in fault_of(Service(), "huge").faultString


def test_use_datetime() -> None:
    when = datetime.datetime(2024, 5, 6, 7, 8, 9)
    assert call(Service(), "types", when) == "DateTime"
    assert call(Service(useDateTime=True), "types", when) == "datetime"
    assert call(Service(useDateTime=True), "echo", when) == [when]
    assert call(Service(), "echo", Binary(b"\x00\xff")) == [Binary(b"\x00\xff")]
    assert call(Service(), "echo", DateTime(when)) == [DateTime(when)]


def rpc_harness(resource: XMLRPC | None = None) -> Harness:
    root = Resource()
    root.putChild(b"RPC2", resource or Service())
    return Harness(root)


def test_a_body_that_is_not_xml_rpc_is_a_fault_as_in_twisted() -> None:
    for body in [
        "not xml at all",
        "<methodCall><methodName>echo</methodName><params>",
        "<?xml version='1.0'?><methodResponse><params><param><value><int>1</int></value>"
        "</param></params></methodResponse>",
        "",
    ]:
        response = post(rpc_harness(), body)
        assert response.status == 200
        with pytest.raises(Fault) as caught:
            xmlrpc.client.loads(response.body)
        assert caught.value.faultCode == 8002
        assert "Can't deserialize input" in caught.value.faultString


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<methodCall><methodName>echo</methodName><params><param><value><string>&lol3;</string>
</value></param></params></methodCall>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<methodCall><methodName>echo</methodName><params><param><value><string>&xxe;</string>
</value></param></params></methodCall>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_document_type_declarations_are_refused(document: str) -> None:
    for encoding in ["utf-8", "utf-16"]:
        body = document.replace('version="1.0"', f'version="1.0" encoding="{encoding}"')
        response = post(rpc_harness(), body.encode(encoding))
        with pytest.raises(Fault) as caught:
            xmlrpc.client.loads(response.body)
        assert caught.value.faultCode == 8002
        assert "document type" in caught.value.faultString
        assert b"lollol" not in response.body and b"root:" not in response.body


def test_oversized_body_is_413_unparsed() -> None:
    service = Service()
    service.max_request_size = 1000
    body = xmlrpc.client.dumps(("x" * 2000,), "echo")
    response = post(rpc_harness(service), body)
    assert response.status == 413
    small = xmlrpc.client.dumps(("x" * 10,), "echo")
    assert post(rpc_harness(service), small).status == 200


def test_other_methods_get_405() -> None:
    h = rpc_harness()
    for method in ["GET", "HEAD", "PUT"]:
        response = h.get("/RPC2", method=method)
        assert response.status == 405 and response.headers["Allow"] == "POST"


# -- system.multicall --------------------------------------------------------------------------


def test_multicall_runs_calls_in_order_each_answer_its_own() -> None:
    service = Service()
    service.putSubHandler("maths", Maths())
    addIntrospection(service)
    calls = [
        {"methodName": "maths.add", "params": [1, 2]},
        {"methodName": "slow", "params": [4]},
        {"methodName": "fault", "params": []},
        {"methodName": "fail", "params": []},
        {"methodName": "missing", "params": []},
        {"methodName": "whoami", "params": ["hi"]},
        {"methodName": "huge", "params": []},
        {"methodName": "system.multicall", "params": [[]]},
        {"methodName": "echo"},
        "not a struct",
    ]
    results = call(service, "system.multicall", calls)
    assert results[:2] == [[3], [8]]
    assert results[2] == {"faultCode": 42, "faultString": "the answer"}
    assert results[3] == {"faultCode": 8002, "faultString": "error"}
    assert results[4]["faultCode"] == 8001
    assert results[5] == ["hi 192.0.2.7 POST"]
    assert "Can't serialize output" in results[6]["faultString"]  # only this one fails
    assert results[7]["faultString"] == "recursive system.multicall forbidden"
    assert results[8] == [[]]  # params default to none
    assert results[9]["faultCode"] == 8002
    assert "system.multicall" in call(service, "system.listMethods")
    assert fault_of(service, "system.multicall", "not a list").faultCode == 8002


# -- gzip request bodies -----------------------------------------------------------------------


def post_encoded(h: Harness, body: bytes, coding: str) -> Response:
    h.send(
        f"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Encoding: {coding}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return h.response("POST")


def test_gzip_request_bodies_are_decompressed_within_the_limit() -> None:
    service = Service()
    service.max_request_size = 10_000
    body = xmlrpc.client.dumps(("z" * 5000,), "echo").encode()
    response = post_encoded(rpc_harness(service), gzip.compress(body), "gzip")
    assert xmlrpc.client.loads(response.body)[0] == (["z" * 5000],)
    two_members = gzip.compress(body[:100]) + gzip.compress(body[100:])
    response = post_encoded(rpc_harness(service), two_members, "GZIP")
    assert xmlrpc.client.loads(response.body)[0] == (["z" * 5000],)
    # A small body that expands past the limit (a zip bomb) is 413, never expanded whole.
    bomb = gzip.compress(xmlrpc.client.dumps(("z" * 50_000,), "echo").encode())
    assert len(bomb) < 1000
    assert post_encoded(rpc_harness(service), bomb, "gzip").status == 413
    assert post_encoded(rpc_harness(service), b"not gzip", "gzip").status == 400
    assert post_encoded(rpc_harness(service), gzip.compress(body)[:-9], "gzip").status == 400
    assert post_encoded(rpc_harness(service), body, "br").status == 415
    assert post_encoded(rpc_harness(service), body, "identity").status == 200


# -- Proxy, without a server ---------------------------------------------------------------------


def test_proxy_takes_twisted_arguments_and_url_parts() -> None:
    proxy = Proxy(b"https://ada:pa%40ss@example.org/RPC2?key=1")
    assert (proxy.host, proxy.port, proxy.path, proxy.secure) == (
        "example.org",
        443,
        b"/RPC2?key=1",
        True,
    )
    assert (proxy.user, proxy.password) == (b"ada", b"pa@ss")
    assert dict(proxy._headers)[b"authorization"] == b"Basic " + base64.b64encode(b"ada:pa@ss")
    assert dict(proxy._headers)[b"host"] == b"example.org"
    plain = Proxy("http://[::1]:8080", "bob", "pw", True, True, 5.0, object())
    assert (plain.host, plain.port, plain.path, plain.secure) == ("::1", 8080, b"/", False)
    assert (plain.user, plain.password, plain.allowNone, plain.useDateTime) == (
        b"bob",
        b"pw",
        True,
        True,
    )
    assert plain.connectTimeout == 5.0 and plain.ssl_context is None
    assert dict(plain._headers)[b"host"] == b"[::1]:8080"
    assert b"authorization" not in dict(Proxy("http://h/")._headers)
    for bad in ["ftp://h/", "h:80/RPC2", "http:///nohost"]:
        with pytest.raises(ValueError):
            Proxy(bad)


def test_proxy_refuses_arguments_xmlrpc_cannot_carry_before_sending() -> None:
    async def go() -> None:
        proxy = Proxy("http://127.0.0.1:9/")
        with pytest.raises(TypeError):
            proxy.callRemote("echo", None)
        with pytest.raises(OverflowError):
            proxy.callRemote("echo", 2**40)

    asyncio.run(go())


def test_proxy_parse_response() -> None:
    proxy = Proxy("http://h/", useDateTime=True)
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    body = xmlrpc.client.dumps(([1, when],), methodresponse=True).encode()
    assert proxy.parseResponse(body) == [1, when]
    with pytest.raises(Fault) as caught:
        proxy.parseResponse(xmlrpc.client.dumps(Fault(3, "x"), methodresponse=True).encode())
    assert caught.value.faultCode == 3
    for bad in [
        b"",
        b"<html/>",
        xmlrpc.client.dumps((1,), "a_call").encode(),
        BILLION_LAUGHS.encode(),
    ]:
        with pytest.raises(ResponseError):
            proxy.parseResponse(bad)
