"""SOAP 1.1 services, with the convention of ``twisted.web.soap``.

Subclass `SOAPPublisher` and define ``soap_<name>`` methods with type annotations; mount
the resource.  A method returns its answer, or an awaitable of it (``async def``, or a
Twisted Deferred), and raises `Fault` for a SOAP fault.  hive speaks SOAP 1.1
document/literal, wrapped (what zeep, .NET, JAX-WS and spyne call the default), and
describes the service in a WSDL 1.1 at ``?wsdl``, generated from the annotations::

    @dataclass
    class Point:
        x: float
        y: float

    class Geometry(SOAPPublisher):
        namespace = "urn:example:geometry"

        def soap_midpoint(self, a: Point, b: Point) -> Point:
            return Point((a.x + b.x) / 2, (a.y + b.y) / 2)

The types: int (``xsd:long``), float (``xsd:double``), str, bool, bytes
(``xsd:base64Binary``), ``datetime.datetime``, ``datetime.date``, ``decimal.Decimal``,
``list[...]`` of any of them (repeated elements; a list of lists gets an ``ArrayOf...``
type), dataclasses of any of them (nested, recursive through Optional), and
``Optional[...]`` (``T | None``) of any but a list, whose empty and absent forms would look
alike on the wire.  A parameter with a default may be left out.  The answer is the
``Result`` element of ``<name>Response``, as in Twisted; ``-> None`` answers an empty one.
An annotation hive cannot map is a TypeError when the class is made (or, for names not
yet defined then, when it is first instantiated), naming the method and the parameter.

Faults are answered with status 500, as SOAP 1.1 over HTTP says: an unknown method is a
Client fault "Method <name> not found", an argument that does not fit its type a Client
fault naming it, and an exception other than a Fault a Server fault "Method <name>
failed." (the exception logged, its traceback in the fault's detail only when the site
shows tracebacks), as in Twisted.  ``withRequest`` (from hive.xmlrpc) passes the request
first, as for XML-RPC.

Parsing is lxml's (libxml2), with entities never resolved, no network, no DTD loaded and
libxml2's default depth and size bounds (``huge_tree`` off); a document with a document
type declaration is refused, as SOAP 1.1 requires, and bodies over ``max_request_size``
(4 MiB) get 413 unparsed.  A header block with ``mustUnderstand="1"`` is a MustUnderstand
fault (hive understands none); a SOAP 1.2 envelope is a VersionMismatch fault.

The WSDL's service address is ``request.prePathURL()``, the URL the WSDL was fetched at.

Differences from Twisted, whose SOAPPublisher spoke RPC/encoded through SOAPpy (gone
since Python 2): the methods need annotations, arguments come by name
(``useKeywords`` is always on), and ``lookupFunction`` is not consulted: the published
methods are the ``soap_*`` ones, as the WSDL must know them.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import decimal
import html
import inspect
import logging
import math
import re
import traceback
import types
import typing
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar, Final, Union

try:
    from lxml import etree
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("hive.soap needs lxml: pip install 'hive[soap]'") from exc

from hive import http
from hive._deferred import is_deferred, to_future
from hive.error import Error
from hive.iweb import IRequest
from hive.resource import Resource
from hive.xmlrpc import withRequest

__all__ = ["Fault", "SOAPPublisher", "withRequest"]

log = logging.getLogger("hive.soap")

ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
XSD: Final = "http://www.w3.org/2001/XMLSchema"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
WSDL: Final = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP: Final = "http://schemas.xmlsoap.org/wsdl/soap/"
HTTP_TRANSPORT: Final = "http://schemas.xmlsoap.org/soap/http"
_NIL: Final = f"{{{XSI}}}nil"
#: Characters XML 1.0 cannot carry, even escaped.
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: Entities never resolved, no DTD, no network, libxml2's bounds on depth and sizes.
_PARSER: Final = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


# -- faults ------------------------------------------------------------------------------------


class Fault(Exception):
    """A SOAP 1.1 fault, raised by a ``soap_`` method (SOAPpy's ``faultType`` in Twisted).

    ``faultcode`` is ``"Client"``, ``"Server"`` or a dotted refinement of one
    (``"Client.Authentication"``), with or without a ``soap:``/``SOAP-ENV:`` prefix, or a
    code of your own as ``"{namespace}name"``.  ``detail`` is text for the ``<detail>``
    element, ``faultactor`` the URI of the node at fault.
    """

    def __init__(
        self,
        faultcode: str,
        faultstring: str,
        detail: str | None = None,
        faultactor: str | None = None,
    ) -> None:
        super().__init__(faultcode, faultstring)
        self.faultcode = faultcode
        self.faultstring = faultstring
        self.detail = detail
        self.faultactor = faultactor
        self.code_namespace, self.code_name = _fault_code(faultcode)

    def __str__(self) -> str:
        return f"{self.faultcode}: {self.faultstring}"


def _fault_code(code: str) -> tuple[str, str]:
    if code.startswith("{"):
        namespace, _, name = code[1:].partition("}")
        return namespace, name
    prefix, _, name = code.rpartition(":")
    if prefix.lower() not in ("", "soap", "soap-env", "soapenv", "env", "s"):
        raise ValueError(f"fault code {code!r}: give another namespace as '{{uri}}name'")
    return ENV, name


# -- the types ---------------------------------------------------------------------------------


class _Absent:
    """No default: the element must be there (dataclasses.MISSING cannot be a default)."""


_ABSENT: Final = _Absent()


class _Unfit(ValueError):
    """A value does not fit its type: the server's (an answer) or the client's fault."""


@dataclasses.dataclass(eq=False)
class _Scalar:
    """A Python type with an XML Schema built-in type, and its text both ways."""

    xsd: str
    check: Callable[[Any], bool]
    encode: Callable[[Any], str]
    decode: Callable[[str], Any]

    @property
    def qname(self) -> str:
        return "xsd:" + self.xsd


@dataclasses.dataclass(eq=False)
class _Complex:
    """A named complex type: a dataclass, or the ``ArrayOf...`` of a list in a list."""

    name: str
    fields: list[_Field]
    make: Callable[[dict[str, Any]], Any]
    parts: Callable[[Any], list[Any]] | None  # a value's field values, in order
    source: object  # the dataclass or the item type, to tell two "Point"s apart

    @property
    def qname(self) -> str:
        return "tns:" + self.name


@dataclasses.dataclass(eq=False)
class _Field:
    """An element in a sequence: a parameter, a dataclass field, the Result."""

    name: str
    type: _Scalar | _Complex
    optional: bool = False  # minOccurs="0"
    nillable: bool = False  # None allowed (xsi:nil)
    repeated: bool = False  # maxOccurs="unbounded": a list
    default: Any = _ABSENT


_LONG = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DOUBLE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_DATE = re.compile(r"(-?[0-9]{4,}-[0-9]{2}-[0-9]{2})(Z|[+-][0-9]{2}:[0-9]{2})?")


def _decode_long(text: str) -> int:
    text = text.strip()
    if not _INTEGER.fullmatch(text):
        raise _Unfit(f"not an integer: {text[:40]!r}")
    value = int(text)
    if not _LONG[0] <= value <= _LONG[1]:
        raise _Unfit("out of the range of xsd:long")
    return value


def _encode_long(value: int) -> str:
    if not _LONG[0] <= value <= _LONG[1]:
        raise _Unfit("out of the range of xsd:long")
    return "%d" % value


def _encode_double(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return repr(value)


def _decode_double(text: str) -> float:
    text = text.strip()
    # XML Schema's INF, -INF and NaN, and Python's spellings, which zeep sends.
    special = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "nan": math.nan}
    if text.lower() in special:
        return special[text.lower()]
    if not _DOUBLE.fullmatch(text):
        raise _Unfit(f"not a number: {text[:40]!r}")
    return float(text)


def _decode_boolean(text: str) -> bool:
    text = text.strip()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise _Unfit(f"not a boolean: {text[:40]!r}")


def _decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except ValueError:
        raise _Unfit("not base64") from None


def _encode_decimal(value: decimal.Decimal) -> str:
    if not value.is_finite():
        raise _Unfit("xsd:decimal has no infinity or NaN")
    return format(value, "f")


def _decode_decimal(text: str) -> decimal.Decimal:
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        raise _Unfit(f"not a decimal: {text[:40]!r}")
    return decimal.Decimal(text)


def _decode_datetime(text: str) -> datetime.datetime:
    try:
        return datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise _Unfit(f"not a dateTime: {text[:40]!r}") from None


def _decode_date(text: str) -> datetime.date:
    match = _DATE.fullmatch(text.strip())
    try:
        if match is None:
            raise ValueError
        return datetime.date.fromisoformat(match.group(1))  # a time zone is dropped
    except ValueError:
        raise _Unfit(f"not a date: {text[:40]!r}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


_SCALARS: Final[dict[object, _Scalar]] = {
    int: _Scalar("long", _is_int, _encode_long, _decode_long),
    float: _Scalar("double", lambda v: isinstance(v, (int, float)), _encode_double, _decode_double),
    str: _Scalar("string", lambda v: isinstance(v, str), str, lambda text: text),
    bool: _Scalar(
        "boolean",
        lambda v: isinstance(v, bool),
        lambda v: "true" if v else "false",
        _decode_boolean,
    ),
    bytes: _Scalar(
        "base64Binary",
        lambda v: isinstance(v, (bytes, bytearray, memoryview)),
        lambda v: base64.b64encode(v).decode("ascii"),
        _decode_base64,
    ),
    datetime.datetime: _Scalar(
        "dateTime",
        lambda v: isinstance(v, datetime.datetime),
        lambda v: v.isoformat(),
        _decode_datetime,
    ),
    datetime.date: _Scalar(
        "date",
        lambda v: isinstance(v, datetime.date) and not isinstance(v, datetime.datetime),
        lambda v: v.isoformat(),
        _decode_date,
    ),
    decimal.Decimal: _Scalar(
        "decimal", lambda v: isinstance(v, decimal.Decimal), _encode_decimal, _decode_decimal
    ),
}

_SUPPORTED: Final = (
    "int, float, str, bool, bytes, datetime, date, Decimal, dataclasses of those,"
    " list[...] and Optional[...] of any of them"
)


class _Types:
    """Maps annotations to fields, collecting the named complex types it meets."""

    def __init__(self) -> None:
        self.complex: dict[str, _Complex] = {}

    def field(self, name: str, annotation: Any, default: Any = _ABSENT) -> _Field:
        inner, nillable = _strip_optional(annotation)
        if typing.get_origin(inner) is list:
            if nillable:
                raise TypeError(
                    f"{_show(annotation)}: an empty list and None look alike on the wire;"
                    " use a list"
                )
            (item,) = typing.get_args(inner) or (None,)
            if item is None:
                raise TypeError("a list needs its item type: list[int], say")
            item_type, item_nillable = self._item(item)
            return _Field(name, item_type, True, item_nillable, True, _ABSENT)
        optional = nillable or default is not _ABSENT
        if nillable and default is _ABSENT:
            default = None
        return _Field(name, self.kind(inner), optional, nillable, False, default)

    def _item(self, annotation: Any) -> tuple[_Scalar | _Complex, bool]:
        inner, nillable = _strip_optional(annotation)
        if typing.get_origin(inner) is list:
            if nillable:
                raise TypeError(f"{_show(annotation)}: a list in a list cannot be None")
            item = self.field("item", inner)
            name = "ArrayOf" + ("Optional" if item.nillable else "") + _capitalised(item.type)
            known = self.complex.get(name)
            if known is None:
                known = _Complex(name, [item], lambda kw: kw["item"], None, name)
                self._add(known)
            elif known.source != name:
                raise TypeError(f"a dataclass is named {name}, as the type of {_show(inner)}")
            return known, False
        return self.kind(inner), nillable

    def kind(self, annotation: Any) -> _Scalar | _Complex:
        scalar = _SCALARS.get(annotation)
        if scalar is not None:
            return scalar
        if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
            return self._dataclass(annotation)
        raise TypeError(f"cannot map {_show(annotation)} to XML Schema ({_SUPPORTED})")

    def _dataclass(self, cls: type) -> _Complex:
        known = self.complex.get(cls.__name__)
        if known is not None:
            if known.source is not cls:
                raise TypeError(f"two types are named {cls.__name__}: {known.source} and {cls}")
            return known
        complex_type = _Complex(cls.__name__, [], lambda kw: cls(**kw), None, cls)
        self._add(complex_type)  # before its fields, which may refer to it
        hints = typing.get_type_hints(cls)
        names = []
        for spec in dataclasses.fields(cls):
            if not spec.init:
                continue
            default: Any = _ABSENT if spec.default is dataclasses.MISSING else spec.default
            if spec.default_factory is not dataclasses.MISSING:
                default = _Factory(spec.default_factory)
            try:
                complex_type.fields.append(self.field(spec.name, hints[spec.name], default))
            except TypeError as exc:
                raise TypeError(f"{cls.__qualname__}.{spec.name}: {exc}") from None
            names.append(spec.name)
        complex_type.parts = lambda value: [getattr(value, name) for name in names]
        return complex_type

    def _add(self, complex_type: _Complex) -> None:
        known = self.complex.get(complex_type.name)
        if known is not None:
            raise TypeError(f"two types are named {complex_type.name}")
        self.complex[complex_type.name] = complex_type


@dataclasses.dataclass(frozen=True)
class _Factory:
    """A dataclass field's default_factory: a fresh default each time."""

    make: Callable[[], Any]


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        arms = [arm for arm in typing.get_args(annotation) if arm is not type(None)]
        if len(arms) != 1:
            raise TypeError(f"{_show(annotation)}: unions other than Optional[...] cannot map")
        return arms[0], True
    return annotation, False


def _capitalised(t: _Scalar | _Complex) -> str:
    name = t.xsd if isinstance(t, _Scalar) else t.name
    return name[:1].upper() + name[1:]


def _show(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else repr(annotation)


# -- operations --------------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class _Operation:
    name: str
    params: list[_Field]
    result: _Field | None
    doc: str
    with_request: bool


@dataclasses.dataclass(eq=False)
class _Schema:
    operations: dict[str, _Operation]
    types: dict[str, _Complex]


def _schema_of(cls: type) -> _Schema:
    """Every ``soap_*`` method of ``cls`` as an operation; TypeError if one cannot map."""
    types_ = _Types()
    operations: dict[str, _Operation] = {}
    for attribute in sorted(dir(cls)):
        if not attribute.startswith("soap_"):
            continue
        function = getattr(cls, attribute)
        if not callable(function):
            continue
        # A plain method is seen unbound, self first; static and class methods are not.
        unbound = not isinstance(
            inspect.getattr_static(cls, attribute), (staticmethod, classmethod)
        )
        name = attribute[5:]
        where = f"{cls.__qualname__}.{attribute}"
        if not name:
            raise TypeError(f"{where}: an operation needs a name after soap_")
        try:
            operations[name] = _operation(name, function, unbound, types_)
        except NameError as exc:
            raise NameError(f"{where}: {exc}") from exc
        except TypeError as exc:
            raise TypeError(f"{where}: {exc}") from None
    for name in operations:
        if name + "Response" in operations:
            raise TypeError(
                f"{cls.__qualname__}: soap_{name}Response and soap_{name} would both"
                f" define the element {name}Response"
            )
    return _Schema(operations, types_.complex)


def _operation(
    name: str, function: Callable[..., Any], unbound: bool, types_: _Types
) -> _Operation:
    hints = typing.get_type_hints(function)
    with_request = bool(getattr(function, "withRequest", False))
    parameters = list(inspect.signature(function).parameters.values())[int(unbound) :]
    if with_request:
        parameters = parameters[1:]
    params = []
    for parameter in parameters:
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            raise TypeError(f"parameter {parameter.name}: only named parameters can map")
        if parameter.name not in hints:
            raise TypeError(f"parameter {parameter.name} has no annotation")
        default = _ABSENT if parameter.default is parameter.empty else parameter.default
        try:
            params.append(types_.field(parameter.name, hints[parameter.name], default))
        except TypeError as exc:
            raise TypeError(f"parameter {parameter.name}: {exc}") from None
    if "return" not in hints:
        raise TypeError("the return type has no annotation (-> None for no answer)")
    returned = _awaited(hints["return"])
    try:
        result = None if returned is type(None) else types_.field("Result", returned)
    except TypeError as exc:
        raise TypeError(f"the return type: {exc}") from None
    return _Operation(name, params, result, inspect.getdoc(function) or "", with_request)


def _awaited(annotation: Any) -> Any:
    """T for ``Coroutine[..., T]``, ``Awaitable[T]``, ``Future[T]``...; else the annotation."""
    origin = typing.get_origin(annotation)
    if origin is Coroutine:
        return typing.get_args(annotation)[2]
    if isinstance(origin, type) and issubclass(origin, Awaitable):
        return typing.get_args(annotation)[0]
    return annotation


# -- values to elements and back ---------------------------------------------------------------


def _put(parent: etree._Element, field: _Field, value: Any, ns: str) -> None:
    if field.repeated:
        if not isinstance(value, (list, tuple)):
            raise _Unfit(f"{field.name}: a list is needed, not {type(value).__name__}")
        for item in value:
            _put_one(parent, field, item, ns)  # a None item is xsi:nil, to keep its place
    elif value is None and field.nillable:
        pass  # left out rather than xsi:nil, which zeep reads as an empty object
    else:
        _put_one(parent, field, value, ns)


def _put_one(parent: etree._Element, field: _Field, value: Any, ns: str) -> None:
    element = etree.SubElement(parent, f"{{{ns}}}{field.name}")
    if value is None:
        if not field.nillable:
            raise _Unfit(f"{field.name}: None, and the type is not Optional")
        element.set(_NIL, "true")
        return
    kind = field.type
    if isinstance(kind, _Scalar):
        if not kind.check(value):
            raise _Unfit(f"{field.name}: {type(value).__name__} for xsd:{kind.xsd}")
        try:
            element.text = kind.encode(value)
        except ValueError as exc:  # lxml: text XML cannot carry (NUL, say)
            raise _Unfit(f"{field.name}: {exc}") from None
        return
    if kind.parts is not None and not isinstance(value, kind.source):  # type: ignore[arg-type]
        raise _Unfit(f"{field.name}: {type(value).__name__} for {kind.name}")
    try:
        if kind.parts is None:  # an ArrayOf: the value is the list of items
            _put(element, kind.fields[0], value, ns)
        else:
            for sub, part in zip(kind.fields, kind.parts(value), strict=True):
                _put(element, sub, part, ns)
    except _Unfit as exc:
        raise _Unfit(f"{field.name}.{exc}") from None


def _take(element: etree._Element, fields: list[_Field], ns: str) -> dict[str, Any]:
    """The values of ``element``'s children, by field name; _Unfit if they do not fit."""
    by_name = {field.name: field for field in fields}
    found: dict[str, list[etree._Element]] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        if qname.namespace not in (ns, None) or qname.localname not in by_name:
            raise _Unfit(f"unexpected element {qname.localname}")
        found.setdefault(qname.localname, []).append(child)
    values: dict[str, Any] = {}
    for field in fields:
        elements = found.get(field.name, [])
        if field.repeated:
            values[field.name] = [_value(child, field, ns) for child in elements]
        elif len(elements) > 1:
            raise _Unfit(f"{field.name}: more than one")
        elif elements:
            values[field.name] = _value(elements[0], field, ns)
        elif not field.optional:
            raise _Unfit(f"{field.name}: missing")
        elif isinstance(field.default, _Factory):
            values[field.name] = field.default.make()
        elif field.default is not _ABSENT:
            values[field.name] = field.default
    return values


def _value(element: etree._Element, field: _Field, ns: str) -> Any:
    if element.get(_NIL) in ("true", "1"):
        if not field.nillable:
            raise _Unfit(f"{field.name}: nil, and the type is not Optional")
        return None
    kind = field.type
    try:
        if isinstance(kind, _Scalar):
            if len(element):
                raise _Unfit("elements inside a simple value")
            return kind.decode(element.text or "")
        values = _take(element, kind.fields, ns)
        try:
            return kind.make(values)
        except (TypeError, ValueError) as exc:  # a dataclass's own checks
            raise _Unfit(str(exc)) from None
    except _Unfit as exc:
        raise _Unfit(f"{field.name}: {exc}") from None


# -- the resource ------------------------------------------------------------------------------


class SOAPPublisher(Resource):
    """A resource publishing its ``soap_*`` methods over SOAP 1.1, with a WSDL at ``?wsdl``.

    ``namespace`` is the target namespace of the service's elements (by default
    ``urn:hive:`` and the class name; set one of your own for a published service),
    ``serviceName`` the WSDL's service name (the class name).
    """

    isLeaf = True
    allowedMethods = (b"GET", b"HEAD", b"POST")
    #: The charset of answers (Twisted's attribute).
    encoding = "UTF-8"
    namespace: str | None = None
    serviceName: str | None = None
    #: Larger request bodies get 413 without being parsed (hive's addition).
    max_request_size = 4 * 1024 * 1024
    _soap_schema: ClassVar[_Schema | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._soap_schema = None
        # An annotation may name what is not defined yet: then __init__ tries again.
        with contextlib.suppress(NameError):
            cls._soap_schema = _schema_of(cls)

    def __init__(self) -> None:
        super().__init__()
        cls = type(self)
        if cls.__dict__.get("_soap_schema") is None:
            cls._soap_schema = _schema_of(cls)

    @property
    def _schema(self) -> _Schema:
        schema = type(self)._soap_schema
        assert schema is not None, "SOAPPublisher.__init__ was not called"
        return schema

    def _namespace(self) -> str:
        return self.namespace or "urn:hive:" + type(self).__name__

    def _service(self) -> str:
        return self.serviceName or type(self).__name__

    # -- GET: the WSDL -----------------------------------------------------------------------

    def render_GET(self, request: IRequest) -> bytes:
        """The WSDL at ``?wsdl`` (any case); else a page naming the operations."""
        if any(name.lower() == b"wsdl" for name in request.args):
            request.setHeader(b"content-type", b"text/xml; charset=utf-8")
            location = request.prePathURL().decode("ascii")
            return wsdl(self._schema, self._namespace(), self._service(), location)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        names = "".join(f"<li>{html.escape(name)}</li>" for name in self._schema.operations)
        service = html.escape(self._service())
        return (
            f"<!DOCTYPE html><html><head><title>{service}</title></head><body>"
            f"<h1>{service}</h1><p>A SOAP 1.1 service; its description is at"
            f' <a href="?wsdl">?wsdl</a>.</p><ul>{names}</ul></body></html>\n'
        ).encode()

    # -- POST: calls -------------------------------------------------------------------------

    def render_POST(self, request: IRequest) -> Any:
        content = request.content
        size = content.seek(0, 2)
        content.seek(0)
        if size > self.max_request_size:
            raise Error(http.REQUEST_ENTITY_TOO_LARGE, b"SOAP request too large")
        request.setHeader(b"content-type", b'text/xml; charset="%s"' % self.encoding.encode())
        ns = self._namespace()
        try:
            operation, arguments = parse_call(content.read(), self._schema, ns)
        except Fault as fault:
            return self._fault(request, fault)
        function = getattr(self, "soap_" + operation.name)
        try:
            if operation.with_request:
                result = function(request, **arguments)
            else:
                result = function(**arguments)
        except Exception as exc:
            return self._failed(request, operation, exc)
        if is_deferred(result):  # a method ported from Twisted
            result = to_future(result)
        if inspect.isawaitable(result):
            return self._answer_later(request, operation, result)
        return self._answer(request, operation, result)

    async def _answer_later(
        self, request: IRequest, operation: _Operation, result: Awaitable[Any]
    ) -> bytes:
        try:
            value = await result
        except Exception as exc:
            return self._failed(request, operation, exc)
        return self._answer(request, operation, value)

    def _answer(self, request: IRequest, operation: _Operation, value: Any) -> bytes:
        try:
            return response(operation, value, self._namespace(), self.encoding)
        except _Unfit as exc:
            log.error("SOAP method %s: cannot serialize its result: %s", operation.name, exc)
            return self._fault(
                request, Fault("Server", f"Method {operation.name} failed: result {exc}")
            )

    def _failed(self, request: IRequest, operation: _Operation, exc: Exception) -> bytes:
        if isinstance(exc, Fault):
            return self._fault(request, exc)
        log.error("SOAP method %s failed", operation.name, exc_info=exc)
        detail = None
        if request.site.displayTracebacks:
            detail = "".join(traceback.format_exception(exc))
        return self._fault(request, Fault("Server", f"Method {operation.name} failed.", detail))

    def _fault(self, request: IRequest, fault: Fault) -> bytes:
        request.setResponseCode(http.INTERNAL_SERVER_ERROR)
        return fault_response(fault, self.encoding)


# -- envelopes and the WSDL (pure functions, for the resource and its tests) -------------------


def parse_call(data: bytes, schema: _Schema, ns: str) -> tuple[_Operation, dict[str, Any]]:
    """The operation a request envelope calls and its arguments; a Client (or
    VersionMismatch, MustUnderstand) `Fault` if the envelope is not one to answer."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise Fault("Client", f"not an XML document: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.doctype:
        raise Fault("Client", "document type declarations are not allowed")
    qname = etree.QName(root)
    if qname.localname == "Envelope" and qname.namespace != ENV:
        raise Fault("VersionMismatch", f"only SOAP 1.1 ({ENV}) is understood")
    if qname.text != f"{{{ENV}}}Envelope":
        raise Fault("Client", "not a SOAP envelope")
    parts = [child for child in root if isinstance(child.tag, str)]
    if parts and parts[0].tag == f"{{{ENV}}}Header":
        for block in parts.pop(0):
            if isinstance(block.tag, str) and block.get(f"{{{ENV}}}mustUnderstand") in (
                "1",
                "true",
            ):
                name = etree.QName(block).localname
                raise Fault("MustUnderstand", f"header {name} not understood")
    if len(parts) != 1 or parts[0].tag != f"{{{ENV}}}Body":
        raise Fault("Client", "the envelope needs one Body (after an optional Header)")
    calls = [child for child in parts[0] if isinstance(child.tag, str)]
    if len(calls) != 1:
        raise Fault("Client", "the Body needs exactly one element, the call")
    call = etree.QName(calls[0])
    operation = schema.operations.get(call.localname) if call.namespace == ns else None
    if operation is None:
        raise Fault("Client", f"Method {call.localname} not found")
    try:
        return operation, _take(calls[0], operation.params, ns)
    except _Unfit as exc:
        raise Fault("Client", f"bad arguments to {operation.name}: {exc}") from None


def _envelope(ns: str | None = None) -> tuple[etree._Element, etree._Element]:
    nsmap = {"soap": ENV, "xsi": XSI}
    if ns is not None:
        nsmap["tns"] = ns
    envelope = etree.Element(f"{{{ENV}}}Envelope", nsmap=nsmap)
    return envelope, etree.SubElement(envelope, f"{{{ENV}}}Body")


def response(operation: _Operation, value: Any, ns: str, encoding: str = "UTF-8") -> bytes:
    """The answer envelope: ``<nameResponse><Result>``; _Unfit if ``value`` does not fit."""
    envelope, body = _envelope(ns)
    wrapper = etree.SubElement(body, f"{{{ns}}}{operation.name}Response")
    if operation.result is not None:
        _put(wrapper, operation.result, value, ns)
    return etree.tostring(envelope, xml_declaration=True, encoding=encoding)


def fault_response(fault: Fault, encoding: str = "UTF-8") -> bytes:
    """A fault envelope for ``fault``."""
    envelope, body = _envelope()
    element = etree.SubElement(body, f"{{{ENV}}}Fault")
    if fault.code_namespace == ENV:
        code = etree.SubElement(element, "faultcode")
        code.text = "soap:" + fault.code_name
    else:
        code = etree.SubElement(element, "faultcode", nsmap={"code": fault.code_namespace})
        code.text = "code:" + fault.code_name
    texts: list[tuple[str, str | None]] = [("faultstring", fault.faultstring)]
    texts += [("faultactor", fault.faultactor), ("detail", fault.detail)]
    for name, text in texts:
        if text is not None:
            etree.SubElement(element, name).text = _NOT_XML.sub("?", text)
    return etree.tostring(envelope, xml_declaration=True, encoding=encoding)


def wsdl(schema: _Schema, ns: str, service: str, location: str) -> bytes:
    """The WSDL 1.1 document (document/literal, wrapped) for ``schema`` at ``location``."""
    w, s, x = f"{{{WSDL}}}", f"{{{WSDL_SOAP}}}", f"{{{XSD}}}"
    nsmap = {"wsdl": WSDL, "soap": WSDL_SOAP, "xsd": XSD, "tns": ns}
    root = etree.Element(w + "definitions", nsmap=nsmap, name=service, targetNamespace=ns)
    types_ = etree.SubElement(root, w + "types")
    xsd = etree.SubElement(types_, x + "schema", targetNamespace=ns, elementFormDefault="qualified")
    for name in sorted(schema.types):
        complex_type = etree.SubElement(xsd, x + "complexType", name=name)
        _sequence(complex_type, schema.types[name].fields)
    operations = schema.operations.values()
    for op in operations:
        for element, fields in [
            (op.name, op.params),
            (op.name + "Response", [op.result] if op.result else []),
        ]:
            wrapper = etree.SubElement(xsd, x + "element", name=element)
            _sequence(etree.SubElement(wrapper, x + "complexType"), fields)
    for op in operations:
        for message, element in [(op.name + "Request", op.name), (op.name + "Response",) * 2]:
            node = etree.SubElement(root, w + "message", name=message)
            etree.SubElement(node, w + "part", name="parameters", element="tns:" + element)
    port_type = etree.SubElement(root, w + "portType", name=service + "PortType")
    for op in operations:
        node = etree.SubElement(port_type, w + "operation", name=op.name)
        if op.doc:
            etree.SubElement(node, w + "documentation").text = op.doc
        etree.SubElement(node, w + "input", message=f"tns:{op.name}Request")
        etree.SubElement(node, w + "output", message=f"tns:{op.name}Response")
    binding = etree.SubElement(
        root, w + "binding", name=service + "Binding", type=f"tns:{service}PortType"
    )
    etree.SubElement(binding, s + "binding", style="document", transport=HTTP_TRANSPORT)
    for op in operations:
        node = etree.SubElement(binding, w + "operation", name=op.name)
        etree.SubElement(node, s + "operation", soapAction=f"{ns}/{op.name}", style="document")
        for direction in ("input", "output"):
            etree.SubElement(etree.SubElement(node, w + direction), s + "body", use="literal")
    service_node = etree.SubElement(root, w + "service", name=service)
    port = etree.SubElement(
        service_node, w + "port", name=service + "Port", binding=f"tns:{service}Binding"
    )
    etree.SubElement(port, s + "address", location=location)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _sequence(parent: etree._Element, fields: list[_Field]) -> None:
    sequence = etree.SubElement(parent, f"{{{XSD}}}sequence")
    for field in fields:
        element = etree.SubElement(
            sequence, f"{{{XSD}}}element", name=field.name, type=field.type.qname
        )
        if field.optional or field.repeated:
            element.set("minOccurs", "0")
        if field.repeated:
            element.set("maxOccurs", "unbounded")
        if field.nillable:
            element.set("nillable", "true")
