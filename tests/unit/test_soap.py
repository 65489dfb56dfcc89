"""hive.soap through the real Site and Request, in memory: envelopes, faults, the WSDL (its
schema compiled by libxml2 and every answer validated against it), and the annotations
that cannot map."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import logging
from typing import Any

import pytest
from lxml import etree
from twisted.internet import defer
from twisted.internet.defer import Deferred

from hive.resource import Resource
from hive.server import Request, Site
from hive.soap import ENV, XSD, Fault, SOAPPublisher, fault_response, withRequest
from tests.unit.harness import Harness, Response, settle

NS = "urn:hive:test:unit"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


@dataclasses.dataclass
class Item:
    name: str
    price: decimal.Decimal
    sizes: list[int] = dataclasses.field(default_factory=list)
    note: str | None = None


@dataclasses.dataclass
class Tree:
    label: str
    children: list[Tree]
    best: Item | None = None


class Shop(SOAPPublisher):
    namespace = NS

    def soap_echo(self, item: Item) -> Item:
        """Answer the item given."""
        return item

    def soap_tree(self, tree: Tree) -> Tree:
        return tree

    def soap_scalars(
        self,
        n: int,
        x: float,
        flag: bool,
        blob: bytes,
        when: datetime.datetime,
        day: datetime.date,
        amount: decimal.Decimal,
        text: str = "default",
    ) -> list[str]:
        return [repr(value) for value in (n, x, flag, blob, when, day, amount, text)]

    def soap_grid(self, rows: list[list[int | None]]) -> list[list[int | None]]:
        return rows

    def soap_maybe(self, value: int | None) -> int | None:
        return value

    async def soap_slow(self, value: str) -> str:
        await asyncio.sleep(0)
        return value.upper()

    def soap_awaitable(self) -> asyncio.Future[int]:
        future = asyncio.get_running_loop().create_future()
        future.set_result(5)
        return future

    def soap_deferred(self, value: int) -> Deferred[int]:
        return defer.succeed(value * 3)

    def soap_deferred_fault(self) -> Deferred[int]:
        return defer.fail(Fault("Client.Deferred", "from a Deferred"))

    def soap_fail(self) -> int:
        raise ValueError("a secret detail")

    async def soap_async_fail(self) -> int:
        raise ValueError("a secret detail")

    def soap_fault(self, code: str) -> int:
        raise Fault(code, "as asked", detail="more", faultactor="urn:actor")

    def soap_bad_result(self) -> list[int]:
        return [1, "two"]  # type: ignore[list-item]

    def soap_nul(self) -> str:
        return "nul \x00 inside"

    def soap_none(self) -> None:
        pass

    @withRequest
    def soap_peer(self, request: Request, greeting: str) -> str:
        return f"{greeting} {request.getClientIP()}"

    @staticmethod
    def soap_static(a: int) -> int:
        return a + 1


def harness(resource: SOAPPublisher | None = None, tracebacks: bool = False) -> Harness:
    root = Resource()
    root.putChild(b"soap", resource or Shop())
    site = Site(root)
    site.displayTracebacks = tracebacks
    return Harness(site)


def post(h: Harness, body: bytes | str) -> Response:
    data = body.encode("utf-8") if isinstance(body, str) else body

    async def go() -> Response:
        h.send(
            b"POST /soap HTTP/1.1\r\nHost: shop.example\r\nContent-Type: text/xml\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(data), data)
        )
        for _ in range(50):
            await settle()
            if h.connection.idle:
                break
        return h.response("POST")

    return asyncio.run(go())


def envelope(call: str, header: str = "") -> str:
    return (
        f'<s:Envelope xmlns:s="{ENV}" xmlns:t="{NS}" xmlns:xsi="{XSI}">{header}'
        f"<s:Body>{call}</s:Body></s:Envelope>"
    )


def find(element: etree._Element, path: str) -> etree._Element:
    found = element.find(path)
    assert found is not None, f"no {path} in {etree.tostring(element)[:200]!r}"
    return found


def fault(response: Response) -> tuple[str | None, str, str | None]:
    assert response.status == 500
    assert response.headers["Content-Type"] == 'text/xml; charset="UTF-8"'
    node = find(etree.fromstring(response.body), f"{{{ENV}}}Body/{{{ENV}}}Fault")
    return node.findtext("faultcode"), node.findtext("faultstring", ""), node.findtext("detail")


def result(response: Response, operation: str) -> etree._Element:
    assert response.status == 200, response.body
    wrapper = etree.fromstring(response.body).find(f"{{{ENV}}}Body/{{{NS}}}{operation}Response")
    assert wrapper is not None, response.body
    schema().assertValid(etree.ElementTree(wrapper))  # the WSDL's own schema says it is right
    return wrapper


def results(response: Response, operation: str) -> list[str | None]:
    return [element.text for element in result(response, operation)]


def wsdl_document(resource: SOAPPublisher | None = None) -> etree._Element:
    response = harness(resource).get("/soap?wsdl")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    return etree.fromstring(response.body)


_schema: list[etree.XMLSchema] = []


def schema() -> etree.XMLSchema:
    """The WSDL's types, compiled by libxml2: an independent check of the schema."""
    if not _schema:
        types = wsdl_document().find("{http://schemas.xmlsoap.org/wsdl/}types")
        assert types is not None
        (xsd,) = types
        # Serialized on its own, it carries the prefixes it inherits (tns, xsd).
        _schema.append(etree.XMLSchema(etree.fromstring(etree.tostring(xsd))))
    return _schema[0]


# -- calls and answers -------------------------------------------------------------------------


def test_dataclass_round_trip_with_defaults() -> None:
    call = envelope(
        "<t:echo><t:item><t:name>hat</t:name><t:price>12.50</t:price>"
        "<t:sizes>1</t:sizes><t:sizes>2</t:sizes></t:item></t:echo>"
    )
    answer = result(post(harness(), call), "echo")
    (item,) = answer
    assert [(etree.QName(e).localname, e.text) for e in item] == [
        ("name", "hat"),
        ("price", "12.50"),
        ("sizes", "1"),
        ("sizes", "2"),
    ]  # note is None: left out
    bare = envelope("<t:echo><t:item><t:name>x</t:name><t:price>1</t:price></t:item></t:echo>")
    assert [e.text for e in result(post(harness(), bare), "echo")[0]] == ["x", "1"]


def test_recursive_dataclasses() -> None:
    call = envelope(
        "<t:tree><t:tree><t:label>root</t:label>"
        "<t:children><t:label>a</t:label></t:children>"
        "<t:children><t:label>b</t:label><t:children><t:label>c</t:label></t:children>"
        "<t:best><t:name>n</t:name><t:price>0</t:price></t:best></t:children>"
        "</t:tree></t:tree>"
    )
    (tree,) = result(post(harness(), call), "tree")
    labels = [e.text for e in tree.iter(f"{{{NS}}}label")]
    assert labels == ["root", "a", "b", "c"]
    assert find(tree, f".//{{{NS}}}best/{{{NS}}}name").text == "n"


def test_scalar_texts_both_ways() -> None:
    call = envelope(
        "<t:scalars><t:n> -42 </t:n><t:x>INF</t:x><t:flag>1</t:flag>"
        "<t:blob>AAH/\n  AA==</t:blob><t:when>2024-05-06T07:08:09.5Z</t:when>"
        "<t:day>2024-02-29+01:00</t:day><t:amount>-0.10</t:amount></t:scalars>"
    )
    assert results(post(harness(), call), "scalars") == [
        "-42",
        "inf",
        "True",
        "b'\\x00\\x01\\xff\\x00'",
        "datetime.datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=datetime.timezone.utc)",
        "datetime.date(2024, 2, 29)",
        "Decimal('-0.10')",
        "'default'",
    ]


@pytest.mark.parametrize(
    ("element", "value", "complaint"),
    [
        ("n", "1.5", "not an integer"),
        ("n", "9223372036854775808", "xsd:long"),
        ("x", "1_000", "not a number"),
        ("x", "infinity", "not a number"),
        ("flag", "yes", "not a boolean"),
        ("blob", "***", "not base64"),
        ("when", "yesterday", "not a dateTime"),
        ("day", "2023-02-29", "not a date"),
        ("amount", "1e5", "not a decimal"),
    ],
)
def test_values_that_do_not_fit_are_client_faults(element: str, value: str, complaint: str) -> None:
    fields = {
        "n": "1",
        "x": "1",
        "flag": "true",
        "blob": "",
        "when": "2024-01-01T00:00:00",
        "day": "2024-01-01",
        "amount": "1",
    }
    fields[element] = value
    call = envelope(
        "<t:scalars>" + "".join(f"<t:{k}>{v}</t:{k}>" for k, v in fields.items()) + "</t:scalars>"
    )
    code, message, _ = fault(post(harness(), call))
    assert code == "soap:Client"
    assert message.startswith(f"bad arguments to scalars: {element}: ") and complaint in message


def test_lists_of_lists_and_nil_items() -> None:
    call = envelope(
        "<t:grid><t:rows><t:item>1</t:item><t:item xsi:nil='true'/></t:rows><t:rows/></t:grid>"
    )
    rows = list(result(post(harness(), call), "grid"))
    assert [[(e.text, e.get(f"{{{XSI}}}nil")) for e in row] for row in rows] == [
        [("1", None), (None, "true")],
        [],
    ]


def test_optional_absent_nil_or_given() -> None:
    for inner, expected in [
        ("", []),
        ("<t:value xsi:nil='1'/>", []),
        ("<t:value>4</t:value>", ["4"]),
    ]:
        assert results(post(harness(), envelope(f"<t:maybe>{inner}</t:maybe>")), "maybe") == (
            expected
        )


@pytest.mark.parametrize(
    ("call", "complaint"),
    [
        ("<t:maybe><t:value>1</t:value><t:value>2</t:value></t:maybe>", "value: more than one"),
        ("<t:maybe><t:other>1</t:other></t:maybe>", "unexpected element other"),
        ("<t:maybe><x:value xmlns:x='urn:else'>1</x:value></t:maybe>", "unexpected element"),
        ("<t:echo><t:item><t:price>1</t:price></t:item></t:echo>", "item: name: missing"),
        ("<t:echo/>", "item: missing"),
        ("<t:echo><t:item xsi:nil='true'/></t:echo>", "not Optional"),
        ("<t:maybe><t:value><t:x>1</t:x></t:value></t:maybe>", "elements inside a simple"),
    ],
)
def test_arguments_that_do_not_fit_are_client_faults(call: str, complaint: str) -> None:
    code, message, _ = fault(post(harness(), envelope(call)))
    assert code == "soap:Client" and complaint in message, message


def test_unqualified_argument_elements_are_accepted() -> None:
    call = envelope("<t:maybe><value>8</value></t:maybe>")
    assert results(post(harness(), call), "maybe") == ["8"]


def test_async_awaitables_request_and_static_methods() -> None:
    assert results(post(harness(), envelope("<t:slow><t:value>a</t:value></t:slow>")), "slow") == [
        "A"
    ]
    assert results(post(harness(), envelope("<t:awaitable/>")), "awaitable") == ["5"]
    peer = envelope("<t:peer><t:greeting>hi</t:greeting></t:peer>")
    assert results(post(harness(), peer), "peer") == ["hi 192.0.2.7"]
    assert results(post(harness(), envelope("<t:static><t:a>1</t:a></t:static>")), "static") == [
        "2"
    ]
    assert results(post(harness(), envelope("<t:none/>")), "none") == []


def test_twisted_deferreds_are_awaited() -> None:
    call = envelope("<t:deferred><t:value>2</t:value></t:deferred>")
    assert results(post(harness(), call), "deferred") == ["6"]
    code, message, _ = fault(post(harness(), envelope("<t:deferred_fault/>")))
    assert (code, message) == ("soap:Client.Deferred", "from a Deferred")


# -- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["fail", "async_fail"])
def test_exceptions_are_server_faults_logged_without_traceback(
    operation: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="hive.soap"):
        response = post(harness(), envelope(f"<t:{operation}/>"))
    assert fault(response) == ("soap:Server", f"Method {operation} failed.", None)
    assert b"secret" not in response.body
    assert any("a secret detail" in (record.exc_text or "") for record in caplog.records)


def test_tracebacks_in_the_detail_when_the_site_shows_them() -> None:
    _, _, detail = fault(post(harness(tracebacks=True), envelope("<t:fail/>")))
    assert detail is not None and "Traceback" in detail and "a secret detail" in detail


@pytest.mark.parametrize(
    ("code", "expected", "namespace"),
    [
        ("Client", "soap:Client", ENV),
        ("Server.Database", "soap:Server.Database", ENV),
        ("SOAP-ENV:Client", "soap:Client", ENV),
        ("{urn:my:codes}Busy", "code:Busy", "urn:my:codes"),
    ],
)
def test_faults_raised_keep_code_detail_and_actor(code: str, expected: str, namespace: str) -> None:
    call = envelope(f"<t:fault><t:code>{code}</t:code></t:fault>")
    response = post(harness(), call)
    assert fault(response) == (expected, "as asked", "more")
    node = find(etree.fromstring(response.body), f".//{{{ENV}}}Fault")
    faultcode = find(node, "faultcode")
    assert faultcode.nsmap[(faultcode.text or "").split(":")[0]] == namespace
    assert node.findtext("faultactor") == "urn:actor"


def test_fault_codes_with_unknown_prefixes_are_refused() -> None:
    with pytest.raises(ValueError, match="uri"):
        Fault("my:Code", "x")
    assert str(Fault("Client", "bad")) == "Client: bad"


def test_results_that_do_not_fit_are_server_faults(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="hive.soap"):
        code, message, _ = fault(post(harness(), envelope("<t:bad_result/>")))
    assert code == "soap:Server" and "str for xsd:long" in message
    assert any("cannot serialize" in record.getMessage() for record in caplog.records)
    code, message, _ = fault(post(harness(), envelope("<t:nul/>")))
    assert code == "soap:Server" and "XML compatible" in message


def test_fault_text_xml_cannot_carry_is_replaced() -> None:
    body = fault_response(Fault("Server", "nul \x00 here"))
    assert etree.fromstring(body).findtext(f".//{{{ENV}}}Fault/faultstring") == "nul ? here"


@pytest.mark.parametrize(
    ("body", "code", "complaint"),
    [
        ("not xml", "soap:Client", "not an XML document"),
        ("", "soap:Client", "not an XML document"),
        ("<x/>", "soap:Client", "not a SOAP envelope"),
        (
            "<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body/></s:Envelope>",
            "soap:VersionMismatch",
            "SOAP 1.1",
        ),
        (f"<s:Envelope xmlns:s='{ENV}'/>", "soap:Client", "one Body"),
        (envelope(""), "soap:Client", "exactly one element"),
        (envelope("<t:none/><t:none/>"), "soap:Client", "exactly one element"),
        (envelope("<t:missing/>"), "soap:Client", "Method missing not found"),
        (envelope("<x:none xmlns:x='urn:other'/>"), "soap:Client", "Method none not found"),
        (
            envelope("<t:none/>", "<s:Header><t:auth s:mustUnderstand='1'/></s:Header>"),
            "soap:MustUnderstand",
            "header auth not understood",
        ),
    ],
)
def test_envelopes_that_are_not_calls(body: str, code: str, complaint: str) -> None:
    got_code, message, _ = fault(post(harness(), body))
    assert got_code == code and complaint in message, message


def test_a_header_not_marked_must_understand_is_ignored() -> None:
    call = envelope("<t:none/>", "<s:Header><t:trace>1</t:trace></s:Header>")
    assert results(post(harness(), call), "none") == []


BILLION_LAUGHS = f"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
{envelope("<t:maybe><t:value>&lol3;</t:value></t:maybe>")}"""

EXTERNAL_ENTITY = f"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
{envelope("<t:slow><t:value>&xxe;</t:value></t:slow>")}"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_document_type_declarations_are_refused(document: str, encoding: str) -> None:
    body = document.replace('version="1.0"', f'version="1.0" encoding="{encoding}"')
    response = post(harness(), body.encode(encoding))
    code, message, _ = fault(response)
    assert code == "soap:Client" and "document type" in message
    assert b"lollol" not in response.body and b"root:" not in response.body


def test_deep_nesting_is_bounded_by_libxml2() -> None:
    deep = "<t:x>" * 300 + "</t:x>" * 300
    code, message, _ = fault(post(harness(), envelope(f"<t:maybe>{deep}</t:maybe>")))
    assert code == "soap:Client" and "depth" in message


def test_oversized_body_is_413_unparsed() -> None:
    shop = Shop()
    shop.max_request_size = 1000
    assert (
        post(
            harness(shop), envelope("<t:slow><t:value>" + "x" * 2000 + "</t:value></t:slow>")
        ).status
        == 413
    )
    assert post(harness(shop), envelope("<t:slow><t:value>x</t:value></t:slow>")).status == 200


def test_encoding_attribute() -> None:
    class Latin(Shop):
        encoding = "ISO-8859-1"

    response = post(harness(Latin()), envelope("<t:slow><t:value>é</t:value></t:slow>"))
    assert response.headers["Content-Type"] == 'text/xml; charset="ISO-8859-1"'
    assert response.body.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>")
    assert "É".encode("latin-1") in response.body


# -- the WSDL ----------------------------------------------------------------------------------


W = "{http://schemas.xmlsoap.org/wsdl/}"
S = "{http://schemas.xmlsoap.org/wsdl/soap/}"


def test_wsdl_describes_document_literal_wrapped() -> None:
    root = wsdl_document()
    assert root.get("targetNamespace") == NS and root.get("name") == "Shop"
    binding = find(root, f"{W}binding")
    assert find(binding, f"{S}binding").get("style") == "document"
    operations = [op.get("name") for op in find(root, f"{W}portType")]
    assert "echo" in operations and "static" in operations and "peer" in operations
    echo = find(root, f"{W}portType/{W}operation[@name='echo']")
    assert echo.findtext(f"{W}documentation") == "Answer the item given."
    for body in binding.iter(f"{S}body"):
        assert body.get("use") == "literal"
    (address,) = root.iter(f"{S}address")
    assert address.get("location") == "http://example.com:8080/soap"  # prePathURL()
    xsd = f"{{{XSD}}}"
    item = find(root, f".//{xsd}complexType[@name='Item']")
    fields = [
        (e.get("name"), e.get("type"), e.get("minOccurs"), e.get("maxOccurs"), e.get("nillable"))
        for e in item.iter(f"{xsd}element")
    ]
    assert fields == [
        ("name", "xsd:string", None, None, None),
        ("price", "xsd:decimal", None, None, None),
        ("sizes", "xsd:long", "0", "unbounded", None),
        ("note", "xsd:string", "0", None, "true"),
    ]
    assert root.find(f".//{xsd}complexType[@name='ArrayOfOptionalLong']") is not None
    schema()  # compiles


def test_get_without_wsdl_is_a_page_and_head_works() -> None:
    h = harness()
    page = h.get("/soap")
    assert page.status == 200 and b'href="?wsdl"' in page.body and b"<li>echo</li>" in page.body
    head = h.get("/soap?WSDL", method="HEAD")
    assert head.status == 200 and head.body == b""
    assert h.get("/soap", method="PUT").status == 405


# -- annotations that cannot map ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("def soap_f(self, a) -> int: ...", "parameter a has no annotation"),
        ("def soap_f(self, a: int): ...", "return type has no annotation"),
        ("def soap_f(self, a: set[int]) -> int: ...", "cannot map set[int]"),
        ("def soap_f(self, a: dict[str, int]) -> int: ...", "cannot map"),
        ("def soap_f(self, a: int | str) -> int: ...", "unions other than Optional"),
        ("def soap_f(self, a: list[int] | None) -> int: ...", "look alike"),
        ("def soap_f(self, a: list) -> int: ...", "cannot map list"),
        ("def soap_f(self, *a: int) -> int: ...", "only named parameters"),
        ("def soap_f(self, a: int, /) -> int: ...", "only named parameters"),
        ("def soap_f(self, a: int) -> Any: ...", "the return type: cannot map Any"),
        ("def soap_f(self, a: Bad) -> int: ...", "Bad.x: cannot map"),
        ("def soap_f(self) -> int: ...\n    def soap_fResponse(self) -> int: ...", "fResponse"),
        ("def soap_(self) -> int: ...", "needs a name"),
    ],
)
def test_annotations_that_cannot_map_fail_at_class_creation(source: str, complaint: str) -> None:
    namespace: dict[str, Any] = {"SOAPPublisher": SOAPPublisher, "Any": Any, "Bad": Bad}
    code = f"class Service(SOAPPublisher):\n    {source}\n"
    with pytest.raises(TypeError) as caught:
        exec(code, namespace)
    assert complaint in str(caught.value) and "Service" in str(caught.value)


@dataclasses.dataclass
class Bad:
    x: complex


def test_two_types_of_one_name_are_refused() -> None:
    first = dataclasses.make_dataclass("Twin", [("a", int)])
    second = dataclasses.make_dataclass("Twin", [("b", int)])
    namespace: dict[str, Any] = {"SOAPPublisher": SOAPPublisher, "A": first, "B": second}
    with pytest.raises(TypeError, match="two types are named Twin"):
        exec("class S(SOAPPublisher):\n def soap_f(self, a: A, b: B) -> None: ...", namespace)


def test_list_in_list_types_are_told_apart() -> None:
    namespace: dict[str, Any] = {"SOAPPublisher": SOAPPublisher}
    exec(
        "class S(SOAPPublisher):\n"
        " def soap_f(self, a: list[list[int]], b: list[list[int | None]]) -> None: ...",
        namespace,
    )
    assert {"ArrayOfLong", "ArrayOfOptionalLong"} <= set(namespace["S"]()._schema.types)
    namespace["ArrayOfLong"] = dataclasses.make_dataclass("ArrayOfLong", [("n", int)])
    with pytest.raises(TypeError, match="a dataclass is named ArrayOfLong"):
        exec(
            "class T(SOAPPublisher):\n"
            " def soap_f(self, a: ArrayOfLong, b: list[list[int]]) -> None: ...",
            namespace,
        )


def test_names_defined_later_are_resolved_at_first_use() -> None:
    namespace: dict[str, Any] = {"SOAPPublisher": SOAPPublisher, "dataclass": dataclasses.dataclass}
    exec(
        "from __future__ import annotations\n"
        "class Later(SOAPPublisher):\n"
        "    def soap_f(self, a: Thing) -> Thing: return a\n"
        "@dataclass\n"
        "class Thing:\n"
        "    n: int\n",
        namespace,
    )
    service = namespace["Later"]()
    assert "f" in service._schema.operations
    namespace.pop("Thing")
    exec("class Never(SOAPPublisher):\n    def soap_f(self, a: 'Missing') -> int: ...", namespace)
    with pytest.raises(NameError, match=r"Never\.soap_f"):
        namespace["Never"]()
