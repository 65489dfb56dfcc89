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

A request body sent with ``Content-Encoding: gzip`` (as ``xmlrpc.client`` sends one past its
``encode_threshold``, and Python's own server takes) is decompressed, at most
``max_request_size`` bytes of it; another coding gets 415.  `addIntrospection` also adds
``system.multicall`` (Python's ``register_multicall_functions``): the calls run in order,
each answer ``[result]`` or a fault struct, and a nested multicall is a fault.

`Proxy` is Twisted's client, on the keep-alive pool of `hive._httpclient`.

Not here: Twisted's ``Handler`` (use ``async def``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import xmlrpc.client
import zlib
from collections.abc import Awaitable, Callable, Mapping
from inspect import isawaitable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit
from xmlrpc.client import Binary, Boolean, DateTime, Fault

import h11

from hive import http
from hive._deferred import DeferredTask, is_deferred, to_future
from hive._httpclient import ClosedEarly, Connection, pool_for
from hive.error import Error
from hive.iweb import IRequest
from hive.resource import Resource

__all__ = [
    "FAILURE",
    "NOT_FOUND",
    "XMLRPC",
    "BadStatus",
    "Binary",
    "Boolean",
    "DateTime",
    "Fault",
    "NoSuchFunction",
    "Proxy",
    "ResponseError",
    "ResponseTooLarge",
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


def _gunzip(data: bytes, limit: int) -> bytes | None:
    """The gzip stream ``data`` decompressed (every member), or None past ``limit`` bytes;
    ValueError if it is not gzip or cut short."""
    out: list[bytes] = []
    size = 0
    while data:
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            piece = decoder.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise ValueError(f"not gzip: {exc}") from None
        size += len(piece)
        if size > limit or decoder.unconsumed_tail:
            return None
        if not decoder.eof:
            raise ValueError("gzip data cut short")
        out.append(piece)
        data = decoder.unused_data
    return b"".join(out)


def _decode_body(request: IRequest, data: bytes, limit: int) -> bytes:
    """The request body without its Content-Encoding (identity or gzip)."""
    coding = (request.getHeader(b"content-encoding") or b"identity").strip().lower()
    if coding == b"identity":
        return data
    if coding != b"gzip":
        raise Error(http.UNSUPPORTED_MEDIA_TYPE, b"content coding not supported: " + coding)
    try:
        decoded = _gunzip(data, limit)
    except ValueError as exc:
        raise Error(http.BAD_REQUEST, str(exc).encode()) from None
    if decoded is None:
        raise Error(http.REQUEST_ENTITY_TOO_LARGE, b"XML-RPC request too large")
    return decoded


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
        data = _decode_body(request, content.read(), self.max_request_size)
        request.setHeader(b"content-type", b"text/xml; charset=utf-8")
        try:
            args, procedurePath = _loads(data, self.useDateTime)
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
        if is_deferred(result):
            result = to_future(result)  # Twisted's way (defer.succeed), awaited on the loop
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

    @withRequest
    @_signature(["array", "array"])
    async def xmlrpc_multicall(self, request: IRequest, calls: list[Any]) -> list[Any]:
        """Call several methods in one request; each answer is [result] or a fault struct."""
        parent = self._xmlrpc_parent
        if not isinstance(calls, list):
            raise Fault(parent.FAILURE, "system.multicall takes an array of calls")
        results: list[Any] = []
        for call in calls:
            try:
                results.append([await self._one_call(request, call)])
            except Fault as fault:
                results.append({"faultCode": fault.faultCode, "faultString": fault.faultString})
        return results

    async def _one_call(self, request: IRequest, call: Any) -> Any:
        parent = self._xmlrpc_parent
        name = call.get("methodName") if isinstance(call, dict) else None
        params = call.get("params", []) if isinstance(call, dict) else None
        if not isinstance(name, str) or not isinstance(params, list):
            raise Fault(parent.FAILURE, "a call is a struct of methodName and params")
        if name == "system.multicall":
            raise Fault(parent.FAILURE, "recursive system.multicall forbidden")
        function = parent.lookupProcedure(name)
        try:
            if getattr(function, "withRequest", False):
                result = function(request, *params)
            else:
                result = function(*params)
            if isawaitable(result):
                result = await result
        except Exception as exc:
            raise parent._fault_for(exc, name) from None
        if isinstance(result, Fault):
            raise result
        try:
            # One answer XML-RPC cannot carry is its own fault, not the whole call's.
            xmlrpc.client.dumps((result,), methodresponse=True, allow_none=parent.allowNone)
        except Exception as exc:
            raise Fault(parent.FAILURE, f"Can't serialize output: {exc}") from None
        return result


def addIntrospection(xmlrpc: XMLRPC) -> None:
    """Publish the introspection API and multicall on ``xmlrpc`` as ``system.*``."""
    xmlrpc.putSubHandler("system", XMLRPCIntrospection(xmlrpc))


# -- the client ---------------------------------------------------------------------------------


class ResponseError(ValueError):
    """The server's answer is not an XML-RPC response: malformed HTTP, a body too large, a
    content coding not known, or a body that does not parse as a methodResponse."""


class BadStatus(ResponseError):
    """The server answered with a status other than 200.

    Its ``args`` are Twisted's (``ValueError(b"404", b"Not Found")``); ``status`` is the
    code as an int, ``reason`` the reason phrase and ``body`` the start of the page.
    """

    def __init__(self, status: int, reason: bytes, body: bytes = b"") -> None:
        super().__init__(b"%d" % status, reason)
        self.status = status
        self.reason = reason
        self.body = body


class ResponseTooLarge(ResponseError):
    """The response body, once decoded, is longer than the proxy's ``max_response_size``."""


_default_context: ssl.SSLContext | None = None


def _default_ssl_context() -> ssl.SSLContext:
    """One verifying context for every Proxy without its own, so that they share a pool."""
    global _default_context
    if _default_context is None:
        _default_context = ssl.create_default_context()
    return _default_context


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _octets(value: bytes | str | None) -> bytes | None:
    return value.encode("utf-8") if isinstance(value, str) else value


class Proxy:
    """An XML-RPC client for ``url``, Twisted's ``twisted.web.xmlrpc.Proxy``.

    ``proxy.callRemote("add", 1, 2)`` starts the call at once and returns an asyncio
    Task: ``await`` it for the result, or, as in Twisted, chain on it with
    ``addCallback`` / ``addErrback`` (Twisted's Deferred methods, where Twisted is
    installed).  A fault answer raises `Fault`; a status other than
    200 raises `BadStatus` (a ValueError, as in Twisted); an answer that is not XML-RPC
    raises `ResponseError`; a connection that cannot be made or breaks raises
    ConnectionError (OSError); no connection within ``connectTimeout`` seconds, or no
    whole answer within ``timeout`` seconds of the request going out, raises
    TimeoutError.  Cancelling the task drops its connection.

    ``url`` is ``http://`` or ``https://`` (certificates verified, or ``ssl_context``),
    bytes or str; a ``user:password@`` in it is used for Basic authentication unless
    ``user`` and ``password`` are given.  Unlike Twisted, the query string is sent too.
    ``allowNone`` lets None be sent (``<nil/>``); ``useDateTime`` gives dateTime values
    as ``datetime.datetime``.  Arguments XML-RPC cannot carry raise TypeError or
    OverflowError from callRemote itself.

    Calls go over HTTP/1.1 on the worker's keep-alive pool for the server's origin
    (`hive._httpclient`): at most ``pool_size`` idle connections are kept, each for
    ``idle_timeout`` seconds.  A call whose reused connection the server had closed
    before any byte of an answer came back is sent once more on a new connection, as
    ``xmlrpc.client`` does.  ``max_response_size`` bounds the answer's body (after gzip,
    which is asked for), ``max_response_head`` its status line and headers; ``headers``
    are extra request headers (a token, say).  The answer is parsed on the event loop,
    about 50 ms per MiB, with document type declarations refused as on the server side.

    Twisted's ``reactor`` argument is accepted and ignored.  Its ``queryFactory`` (a
    factory per call, to log or re-parse raw answers) has no equivalent: override
    `parseResponse`, which gets each answer's body.
    """

    def __init__(
        self,
        url: bytes | str,
        user: bytes | str | None = None,
        password: bytes | str | None = None,
        allowNone: bool = False,
        useDateTime: bool = False,
        connectTimeout: float = 30.0,
        reactor: object = None,
        *,
        timeout: float = 60.0,
        max_response_size: int = 4 * 1024 * 1024,
        max_response_head: int = 64 * 1024,
        ssl_context: ssl.SSLContext | None = None,
        headers: Mapping[str, str] | None = None,
        pool_size: int = 4,
        idle_timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(_text(url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {_text(url)!r}")
        self.url = _text(url)
        self.secure = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.secure else 80)
        path = parts.path or "/"
        self.path = (path + "?" + parts.query if parts.query else path).encode("ascii")
        self.user = _octets(user) or _octets(unquote(parts.username or "")) or None
        self.password = _octets(password)
        if self.password is None and parts.password is not None:
            self.password = unquote(parts.password).encode("utf-8")
        self.allowNone = allowNone
        self.useDateTime = useDateTime
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.max_response_size = max_response_size
        self.max_response_head = max_response_head
        self.ssl_context = (ssl_context or _default_ssl_context()) if self.secure else None
        self.pool_size = pool_size
        self.idle_timeout = idle_timeout
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        hostport = host if self.port == default else f"{host}:{self.port}"
        self._headers = [
            (b"host", hostport.encode("idna")),
            (b"user-agent", b"hive/xmlrpc"),
            (b"content-type", b"text/xml; charset=utf-8"),
            (b"accept-encoding", b"gzip"),
        ]
        if self.user is not None:
            credentials = self.user + b":" + (self.password or b"")
            self._headers.append((b"authorization", b"Basic " + base64.b64encode(credentials)))
        for name, value in (headers or {}).items():
            self._headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))

    def callRemote(self, method: str, *args: Any) -> DeferredTask[Any]:
        """Call ``method(*args)`` on the server; a Task of its result that also takes
        Deferred callbacks (see the class)."""
        payload = xmlrpc.client.dumps(args, method, allow_none=self.allowNone).encode("utf-8")
        return DeferredTask(self._call(payload), loop=asyncio.get_running_loop())

    def parseResponse(self, contents: bytes) -> Any:
        """The value of a methodResponse body; `Fault` for a fault, else ResponseError."""
        try:
            params, name = _loads(contents, self.useDateTime)
        except Fault:
            raise
        except Exception as exc:
            raise ResponseError(f"not an XML-RPC response: {exc}") from exc
        if name is not None or len(params) != 1:
            raise ResponseError("not an XML-RPC response: no single value in a methodResponse")
        return params[0]

    async def _call(self, payload: bytes) -> Any:
        request = h11.Request(
            method=b"POST",
            target=self.path,
            headers=[*self._headers, (b"content-length", b"%d" % len(payload))],
        )
        pool = pool_for(self.host, self.port, self.ssl_context)
        for attempt in (0, 1):
            try:
                conn, reused = await pool.acquire(
                    attempt > 0, self.connectTimeout, self.max_response_head
                )
            except TimeoutError:
                raise TimeoutError(
                    f"{self.url}: no connection in {self.connectTimeout} s"
                ) from None
            try:
                async with asyncio.timeout(self.timeout):
                    response = await conn.exchange(
                        request, payload, self.timeout, self.max_response_head
                    )
                    body = await self._body(conn, response)
            except ClosedEarly:
                conn.abort()
                if reused and attempt == 0:
                    continue  # the keep-alive race: the server had just closed it
                raise
            except TimeoutError:
                conn.abort()
                raise TimeoutError(f"{self.url}: no answer in {self.timeout} s") from None
            except h11.ProtocolError as exc:
                conn.abort()
                raise ResponseError(f"{self.url}: malformed HTTP response: {exc}") from None
            except BaseException:
                conn.abort()
                raise
            break
        else:
            raise AssertionError("the second attempt, on a new connection, is never retried")
        if conn.reusable():
            conn.parser.start_next_cycle()
            pool.release(conn, self.pool_size, self.idle_timeout)
        else:
            conn.close()
        if response.status_code != http.OK:
            raise BadStatus(response.status_code, response.reason, body[:4096])
        return self.parseResponse(body)

    async def _body(self, conn: Connection, response: h11.Response) -> bytes:
        """The response's body, decoded; ResponseError past the limit or in a strange coding."""
        limit = self.max_response_size
        body = await conn.read_body(limit, self.timeout)
        if body is None:
            raise ResponseTooLarge(f"{self.url}: response body over {limit} bytes")
        codings = [
            value.strip().lower() for name, value in response.headers if name == b"content-encoding"
        ]
        if codings in ([], [b"identity"]):
            return body
        if codings != [b"gzip"]:
            raise ResponseError(f"{self.url}: content coding {b', '.join(codings)!r} not supported")
        try:
            decoded = _gunzip(body, limit)
        except ValueError as exc:
            raise ResponseError(f"{self.url}: bad gzip body: {exc}") from None
        if decoded is None:
            raise ResponseTooLarge(f"{self.url}: response body over {limit} bytes")
        return decoded
