"""XML-RPC resources, with the names of ``twisted.web.xmlrpc``.

Subclass `XMLRPC` and define ``xmlrpc_<name>`` methods; mount the resource (at ``/RPC2``
by convention).  A method returns an XML-RPC value or a `Fault`, or raises a `Fault`; it may
be ``async def`` (where Twisted methods return Deferreds).  `withRequest` passes the request
first.  ``putSubHandler(prefix, handler)`` publishes another XMLRPC's methods as
``prefix.name``; `addIntrospection` adds ``system.listMethods``, ``system.methodHelp`` and
``system.methodSignature``.

As in Twisted: a method that does not exist is fault 8001 (``NOT_FOUND``); one that raises
anything but a Fault is fault 8002 (``FAILURE``, message "error", the exception logged); a
body that is not an XML-RPC call is fault 8002 "Can't deserialize input"; faults are sent
with status 200.  Any method but POST gets 405 with ``Allow: POST`` (Twisted: 405 for GET,
501 for a method its site does not know).

Parsing is the standard library's (``xmlrpc.client``, on expat).  Expat never fetches
external entities, and from version 2.4 it limits entity expansion ("billion laughs"), but
the expat a Python links varies, so hive does not rely on it: XML-RPC has no use for a
document type declaration, so a body with one is refused before any entity is defined
(whatever the document's encoding), and bodies over ``max_request_size`` (4 MiB by
default) get 413 without being parsed.  What remains: the parse is synchronous on the
worker's event loop, about 50 ms per MiB, and the parsed values take several times the
body's size in memory; lower ``max_request_size`` for endpoints open to the internet.

Not here: Twisted's ``Handler`` (use ``async def``) and its ``Proxy`` client (use
``xmlrpc.client.ServerProxy`` in a thread, or an HTTP client).
"""

from __future__ import annotations

import logging
import xmlrpc.client
from collections.abc import Awaitable, Callable
from inspect import isawaitable
from typing import Any, TypeVar
from xmlrpc.client import Binary, Boolean, DateTime, Fault

from hive import http
from hive.error import Error
from hive.iweb import IRequest
from hive.resource import Resource

__all__ = [
    "FAILURE",
    "NOT_FOUND",
    "XMLRPC",
    "Binary",
    "Boolean",
    "DateTime",
    "Fault",
    "NoSuchFunction",
    "XMLRPCIntrospection",
    "addIntrospection",
    "withRequest",
]

log = logging.getLogger("hive.xmlrpc")

NOT_FOUND = 8001
FAILURE = 8002

_F = TypeVar("_F", bound=Callable[..., Any])


def withRequest(f: _F) -> _F:
    """Decorate an ``xmlrpc_`` method to receive the request as its first argument."""
    f.withRequest = True  # type: ignore[attr-defined]
    return f


def _signature(*signatures: list[str]) -> Callable[[_F], _F]:
    """Set the ``signature`` attribute that system.methodSignature reports."""

    def mark(f: _F) -> _F:
        f.signature = list(signatures)  # type: ignore[attr-defined]
        return f

    return mark


class NoSuchFunction(Fault):
    """There is no procedure by the given name."""


class _DocumentTypeRefused(ValueError):
    pass


def _refuse_doctype(*args: object) -> None:
    raise _DocumentTypeRefused("document type declarations are not allowed")


def _loads(data: bytes, use_datetime: bool) -> tuple[tuple[Any, ...], str | None]:
    """``xmlrpc.client.loads`` with document type declarations refused."""
    parser, unmarshaller = xmlrpc.client.getparser(use_datetime=use_datetime)
    expat = getattr(parser, "_parser", None)
    if expat is not None:
        # Whatever the document's encoding, no DOCTYPE means no entity can be defined.
        expat.StartDoctypeDeclHandler = _refuse_doctype
    elif b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        _refuse_doctype()
    parser.feed(data)
    parser.close()
    return unmarshaller.close(), unmarshaller.getmethodname()


class XMLRPC(Resource):
    """A resource publishing its ``xmlrpc_*`` methods over XML-RPC.

    ``allowNone`` lets None be sent (as ``<nil/>``); ``useDateTime`` gives dateTime
    arguments as ``datetime.datetime`` instead of ``xmlrpc.client.DateTime``.
    """

    # Twisted's fault codes; change them on a subclass if they clash with yours.
    NOT_FOUND = NOT_FOUND
    FAILURE = FAILURE

    isLeaf = True
    separator = "."
    allowedMethods = (b"POST",)
    #: Larger request bodies get 413 without being parsed (hive's addition).
    max_request_size = 4 * 1024 * 1024

    def __init__(self, allowNone: bool = False, useDateTime: bool = False) -> None:
        super().__init__()
        self.subHandlers: dict[str, XMLRPC] = {}
        self.allowNone = allowNone
        self.useDateTime = useDateTime

    def putSubHandler(self, prefix: str, handler: XMLRPC) -> None:
        self.subHandlers[prefix] = handler

    def getSubHandler(self, prefix: str) -> XMLRPC | None:
        return self.subHandlers.get(prefix)

    def getSubHandlerPrefixes(self) -> list[str]:
        return list(self.subHandlers)

    def render_POST(self, request: IRequest) -> Any:
        content = request.content
        size = content.seek(0, 2)
        content.seek(0)
        if size > self.max_request_size:
            raise Error(http.REQUEST_ENTITY_TOO_LARGE, b"XML-RPC request too large")
        request.setHeader(b"content-type", b"text/xml; charset=utf-8")
        try:
            args, procedurePath = _loads(content.read(), self.useDateTime)
            if procedurePath is None:
                raise ValueError("not a methodCall")
        except Exception as exc:
            return self._render_result(Fault(self.FAILURE, f"Can't deserialize input: {exc}"))
        try:
            function = self.lookupProcedure(procedurePath)
        except Fault as fault:
            return self._render_result(fault)
        try:
            if getattr(function, "withRequest", False):
                result = function(request, *args)
            else:
                result = function(*args)
        except Exception as exc:
            result = self._fault_for(exc, procedurePath)
        if isawaitable(result):
            return self._render_later(result, procedurePath)
        return self._render_result(result)

    async def _render_later(self, result: Awaitable[Any], procedurePath: str) -> bytes:
        try:
            value = await result
        except Exception as exc:
            value = self._fault_for(exc, procedurePath)
        return self._render_result(value)

    def _fault_for(self, exc: Exception, procedurePath: str) -> Fault:
        if isinstance(exc, Fault):
            return exc
        log.error("XML-RPC procedure %s failed", procedurePath, exc_info=exc)
        return Fault(self.FAILURE, "error")

    def _render_result(self, result: Any) -> bytes:
        """The methodResponse for a value or a Fault."""
        params = result if isinstance(result, Fault) else (result,)
        try:
            content = xmlrpc.client.dumps(params, methodresponse=True, allow_none=self.allowNone)
        except Exception as exc:
            fault = Fault(self.FAILURE, f"Can't serialize output: {exc}")
            content = xmlrpc.client.dumps(fault, methodresponse=True, allow_none=self.allowNone)
        return content.encode("utf-8")

    def lookupProcedure(self, procedurePath: str) -> Callable[..., Any]:
        """The callable for ``procedurePath`` (``name`` or ``prefix.name``), or NoSuchFunction.

        Override it, and `listProcedures`, for another naming policy.
        """
        if self.separator in procedurePath:
            prefix, procedurePath = procedurePath.split(self.separator, 1)
            handler = self.getSubHandler(prefix)
            if handler is None:
                raise NoSuchFunction(self.NOT_FOUND, f"no such subHandler {prefix}")
            return handler.lookupProcedure(procedurePath)
        function = getattr(self, "xmlrpc_" + procedurePath, None)
        if not function:
            raise NoSuchFunction(self.NOT_FOUND, f"procedure {procedurePath} not found")
        if not callable(function):
            raise NoSuchFunction(self.NOT_FOUND, f"procedure {procedurePath} not callable")
        return function  # type: ignore[no-any-return]

    def listProcedures(self) -> list[str]:
        """The names of this resource's procedures (without sub-handlers')."""
        return sorted(name[7:] for name in dir(type(self)) if name.startswith("xmlrpc_"))


class XMLRPCIntrospection(XMLRPC):
    """The XML-RPC introspection API for ``parent``.

    ``methodHelp`` answers a method's ``help`` attribute, else its docstring, else "".
    ``methodSignature`` answers its ``signature`` attribute: a list of lists of XML-RPC
    type names, return type first (``[["int", "int", "int"]]``), else "".
    """

    def __init__(self, parent: XMLRPC) -> None:
        super().__init__()
        self._xmlrpc_parent = parent

    @_signature(["array"])
    def xmlrpc_listMethods(self) -> list[str]:
        """Return a list of the method names implemented by this server."""
        functions: list[str] = []
        todo: list[tuple[XMLRPC, str]] = [(self._xmlrpc_parent, "")]
        while todo:
            handler, prefix = todo.pop(0)
            functions.extend(prefix + name for name in handler.listProcedures())
            for name in handler.getSubHandlerPrefixes():
                sub = handler.getSubHandler(name)
                if sub is not None:
                    todo.append((sub, prefix + name + handler.separator))
        return functions

    @_signature(["string", "string"])
    def xmlrpc_methodHelp(self, method: str) -> str:
        """Return a documentation string describing the use of the given method."""
        function = self._xmlrpc_parent.lookupProcedure(method)
        return getattr(function, "help", None) or getattr(function, "__doc__", None) or ""

    @_signature(["array", "string"], ["string", "string"])
    def xmlrpc_methodSignature(self, method: str) -> Any:
        """Return a list of type signatures, [return type, argument types...] each."""
        function = self._xmlrpc_parent.lookupProcedure(method)
        return getattr(function, "signature", None) or ""


def addIntrospection(xmlrpc: XMLRPC) -> None:
    """Publish the introspection API on ``xmlrpc`` as ``system.*``."""
    xmlrpc.putSubHandler("system", XMLRPCIntrospection(xmlrpc))
