"""Reverse proxying, with the names of ``twisted.web.proxy``.

``ReverseProxyResource(host, port, path)`` relays every request below it to another HTTP
server, as in Twisted: a request for ``/mount/a/b?q`` goes to ``path + b"/a/b?q"``, and the
Host header names the upstream (``host:port``, the port left out when it is 80).

Where Twisted opens a new connection per request, reads the whole response into memory
and answers 501 when it cannot connect, hive:

- keeps a pool of keep-alive connections per upstream (host, port) in each worker
  (`hive._httpclient`, shared with `hive.xmlrpc.Proxy`); a connection goes back to the
  pool only after a complete response, at most ``pool_size`` wait there, and one idle
  for ``idle_timeout`` seconds, closed by the upstream, or sent bytes nobody asked for
  is closed.  Keep ``idle_timeout`` below the upstream's own
  keep-alive timeout.  A request that fails on a reused connection before any byte of
  the answer came back is retried once on a new connection if its method is idempotent;
- streams the response to the client as it arrives, reading from the upstream only as
  fast as the client reads, so memory per request stays bounded whatever the body's size;
  the request body (which hive has already received) is sent from ``request.content`` in
  chunks;
- parses responses with h11, a strict parser: chunked and close-delimited bodies, HEAD,
  1xx (dropped), and refuses malformed ones;
- answers 502 Bad Gateway when the upstream cannot be reached, closes before answering or
  answers something malformed, and 504 Gateway Timeout after ``connect_timeout`` or when
  the upstream is silent for ``read_timeout`` seconds; once the response has begun, such
  a failure cuts the client's connection (the client sees a truncated response, never a
  wrong one);
- removes hop-by-hop headers both ways (Connection and the headers it names, Keep-Alive,
  Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade), so upgrades (WebSocket) are not
  proxied; adds X-Forwarded-For (the connecting peer appended), X-Forwarded-Proto and
  X-Forwarded-Host; ``keep_host=True`` passes the client's Host header instead;
- drops the upstream's Date and Server headers (hive sends its own, as nginx does);
- when the client goes away, drops the upstream connection at once.

Forward proxying (a proxy a client is configured to use: ``curl -x``, a browser's proxy
setting) is Twisted's ``Proxy`` with its ``ProxyRequest``: a request for an absolute URL
(``GET http://example.com/a HTTP/1.1``) is relayed to that host by the same client as
above, streamed and pooled, Host passed as the client sent it and no X-Forwarded-*
added.  ``hive run hive.proxy:ProxyFactory`` serves one (or a program's own
``HTTPFactory`` whose ``buildProtocol`` returns a ``Proxy``).  Only ``http`` URLs are
relayed (``ports`` / ``protocols``, as Twisted's); others get 501, an origin-form target
400, and CONNECT (HTTPS tunnels) 400 from the engine, as in Twisted, which has no CONNECT
either.  A forward proxy relays for whoever can reach it: bind it to loopback or a private
network.  ``ProxyClient`` and ``ProxyClientFactory`` (Twisted's per-request client
protocol) are not provided: override ``ProxyRequest.process`` to change what is relayed.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any, ClassVar, Final
from urllib.parse import quote_from_bytes, urlsplit

import h11

from hive import http
from hive._httpclient import ClosedEarly, Connection, Pool, pool_for
from hive.address import IPv4Address, IPv6Address
from hive.http_headers import Headers
from hive.iweb import IRequest
from hive.resource import NOT_DONE_YET, ErrorPage, Resource
from hive.server import Request

__all__ = ["Proxy", "ProxyFactory", "ProxyRequest", "ReverseProxyResource"]

log = logging.getLogger("hive.proxy")

_HOP_BY_HOP: Final = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
#: IRequest headers the proxy sets itself.
_SET_BY_PROXY: Final = frozenset(
    {
        b"host",
        b"content-length",
        b"expect",  # the body is already here: no 100 Continue to wait for
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
    }
)
#: hive's own Date and Server go out with every response.
_DROPPED_FROM_RESPONSE: Final = frozenset({b"date", b"server"})
_IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


def _hop_by_hop(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The hop-by-hop names for a header list: the fixed ones and those Connection names."""
    named = [
        token.strip().lower()
        for name, value in headers
        if name == b"connection"
        for token in value.split(b",")
    ]
    return _HOP_BY_HOP.union(named) if named else _HOP_BY_HOP


class ReverseProxyResource(Resource):
    """Relays requests to ``host:port``, under ``path`` (bytes, already URL-encoded).

    hive's options: ``connect_timeout`` and ``read_timeout`` (seconds; 504 after them),
    ``keep_host`` (pass the client's Host header instead of ``host:port``), ``pool_size``
    (idle keep-alive connections kept per upstream), ``idle_timeout`` (seconds an idle
    connection is kept) and ``max_response_head`` (bytes of status line and headers; more
    is a 502).
    """

    #: Add X-Forwarded-For/-Proto/-Host (a reverse proxy's part; a forward proxy's is not).
    add_forwarded: bool = True

    def __init__(
        self,
        host: str,
        port: int,
        path: bytes,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        keep_host: bool = False,
        pool_size: int = 16,
        idle_timeout: float = 10.0,
        max_response_head: int = 64 * 1024,
    ) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.path = path
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.keep_host = keep_host
        self.pool_size = pool_size
        self.idle_timeout = idle_timeout
        self.max_response_head = max_response_head

    def getChild(self, path: bytes, request: IRequest) -> ReverseProxyResource:
        """A proxy with the same settings for ``self.path`` plus the segment ``path``."""
        child = copy.copy(self)
        child.children = {}
        child.path = self.path + b"/" + quote_from_bytes(path, safe="").encode("ascii")
        return child

    def render(self, request: IRequest) -> Any:
        """Relay the request; every method goes through."""
        return self._relay(request)

    # -- the exchange --------------------------------------------------------------------

    def _target(self, request: IRequest) -> bytes:
        query = request.uri.partition(b"?")[2]
        target = self.path if self.path.startswith(b"/") else b"/" + self.path
        return target + b"?" + query if query else target

    def _upstream_host(self) -> bytes:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (host if self.port == 80 else f"{host}:{self.port}").encode("idna")

    def _request_headers(self, request: IRequest, body_size: int) -> list[tuple[bytes, bytes]]:
        incoming = [
            (name.lower(), value)
            for name, values in request.requestHeaders.getAllRawHeaders()
            for value in values
        ]
        hop = _hop_by_hop(incoming)
        headers = [
            (name, value)
            for name, value in incoming
            if name not in hop and name not in _SET_BY_PROXY and not name.startswith(b"proxy-")
        ]
        client_host = request.getHeader(b"host")
        if self.keep_host and client_host:
            headers.append((b"host", client_host))
        else:
            headers.append((b"host", self._upstream_host()))
        if body_size or any(
            name in (b"content-length", b"transfer-encoding") for name, _ in incoming
        ):
            headers.append((b"content-length", b"%d" % body_size))
        if not self.add_forwarded:
            forwarded = request.requestHeaders.getRawHeaders(b"x-forwarded-for") or []
            if forwarded:
                headers.append((b"x-forwarded-for", b", ".join(forwarded)))
            return headers
        # Each proxy appends the address its connection came from.  A unix-socket peer is a
        # proxy on this host (nginx); the hop before it is the one worth passing on.
        forwarded = request.requestHeaders.getRawHeaders(b"x-forwarded-for") or []
        peer = request.channel.peer
        if isinstance(peer, (IPv4Address, IPv6Address)):
            forwarded.append(peer.host.encode("ascii"))
        if forwarded:
            headers.append((b"x-forwarded-for", b", ".join(forwarded)))
        headers.append((b"x-forwarded-proto", b"https" if request.isSecure() else b"http"))
        if client_host:
            headers.append((b"x-forwarded-host", client_host))
        return headers

    async def _relay(self, request: IRequest) -> Any:
        # The client going away cancels this task, so the upstream connection goes at once.
        task = asyncio.current_task()
        finished = request.notifyFinish()
        if task is not None:
            finished.add_done_callback(lambda future: _cancel_if_failed(future, task))
        content = request.content
        body_size = content.seek(0, 2)
        content.seek(0)
        method = request.method
        try:
            upstream = h11.Request(
                method=method,
                target=self._target(request),
                headers=self._request_headers(request, body_size),
            )
        except h11.LocalProtocolError as exc:
            # hive accepted the request, but h11 will not write it out (a target with
            # bytes h11 refuses, say).
            return self._error_page(request, http.BAD_REQUEST, f"cannot forward: {exc}")
        pool = pool_for(self.host, self.port)
        attempts = 2 if method in _IDEMPOTENT else 1
        for attempt in range(attempts):
            try:
                conn, reused = await pool.acquire(
                    attempt > 0, self.connect_timeout, self.max_response_head
                )
            except TimeoutError:
                return self._gateway_error(request, http.GATEWAY_TIMEOUT, "connect timed out")
            except OSError as exc:
                return self._gateway_error(request, http.BAD_GATEWAY, f"cannot connect: {exc}")
            try:
                response = await conn.exchange(
                    upstream, content, self.read_timeout, self.max_response_head
                )
                break
            except ClosedEarly as exc:
                conn.abort()
                if reused and attempt + 1 < attempts:
                    continue  # a kept-alive connection the upstream had just closed
                return self._gateway_error(request, http.BAD_GATEWAY, str(exc))
            except TimeoutError:
                conn.abort()
                return self._gateway_error(request, http.GATEWAY_TIMEOUT, "no response in time")
            except (OSError, h11.ProtocolError) as exc:
                conn.abort()
                return self._gateway_error(request, http.BAD_GATEWAY, f"bad response: {exc}")
            except BaseException:
                conn.abort()
                raise
        else:
            raise AssertionError("the last attempt, on a new connection, is never retried")
        try:
            return await self._stream(request, conn, response, pool, finished)
        except BaseException:
            conn.abort()
            raise

    async def _stream(
        self,
        request: IRequest,
        conn: Connection,
        response: h11.Response,
        pool: Pool,
        finished: asyncio.Future[None],
    ) -> Any:
        """Copy the response to the client, reading only as fast as the client reads."""
        parser = conn.parser
        raw = list(response.headers)
        hop = _hop_by_hop(raw)
        request.setResponseCode(response.status_code, response.reason or None)
        out = request.responseHeaders
        for name, value in raw:
            dropped = name in hop or name in _DROPPED_FROM_RESPONSE or name.startswith(b"proxy-")
            if not dropped:
                out.addRawHeader(name, value)
        parts: list[bytes | bytearray] = []
        # A whole small response already in hand goes out in one write, with a length.
        whole = request.method != b"HEAD"
        while True:
            try:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    whole = False
                    request.write(b"".join(parts))  # the head goes out with the first bytes
                    parts.clear()
                    await request.drain()
                    parser.receive_data(await conn.read(self.read_timeout))
                    continue
            except ConnectionError as exc:
                if finished.done():  # the client went away: nothing to say
                    conn.abort()
                    return NOT_DONE_YET
                return self._broken(request, conn, f"connection lost: {exc}")
            except TimeoutError:
                return self._broken(request, conn, "upstream silent mid-response")
            except h11.ProtocolError as exc:
                return self._broken(request, conn, f"bad response body: {exc}")
            if type(event) is h11.Data:
                parts.append(event.data)
            elif type(event) is h11.EndOfMessage:
                break
            else:
                return self._broken(request, conn, f"unexpected {type(event).__name__}")
        if conn.reusable():
            parser.start_next_cycle()
            pool.release(conn, self.pool_size, self.idle_timeout)
        else:
            conn.close()
        body = b"".join(parts)
        if whole:
            return body
        request.write(body)
        request.finish()
        return NOT_DONE_YET

    def _gateway_error(self, request: IRequest, status: int, reason: str) -> bytes:
        return self._error_page(request, status, reason, "The upstream server did not answer.")

    def _error_page(self, request: IRequest, status: int, reason: str, detail: str = "") -> bytes:
        log.warning("proxy to %s:%d: %s", self.host, self.port, reason)
        request.responseHeaders = Headers()
        brief = http.RESPONSES[status].decode("ascii")
        return ErrorPage(status, brief, detail).render(request)

    def _broken(self, request: IRequest, conn: Connection, reason: str) -> Any:
        """The upstream failed mid-response: a 502 if nothing was sent, else cut the client."""
        conn.abort()
        if not request.startedWriting:
            return self._gateway_error(request, http.BAD_GATEWAY, reason)
        # processingFailed aborts the client's connection; a never-raised exception keeps
        # the log to one line.
        request.processingFailed(_UpstreamFailed(f"{self.host}:{self.port}: {reason}"))
        return NOT_DONE_YET


# -- forward proxying --------------------------------------------------------------------------


class _ForwardRelay(ReverseProxyResource):
    """Relays one request of a forward proxy: the target as the client gave it."""

    add_forwarded = False

    def __init__(self, host: str, port: int, target: bytes) -> None:
        super().__init__(host, port, target, keep_host=True)

    def _target(self, request: IRequest) -> bytes:
        return self.path


class ProxyRequest(Request):
    """A request to a forward proxy: its absolute URL is fetched and relayed (Twisted's).

    ``ports`` gives the default port of each scheme relayed, ``protocols`` the relay
    for it; a subclass may override ``process`` (print, refuse, then call this one).
    """

    protocols: ClassVar[dict[bytes, type[ReverseProxyResource]]] = {b"http": _ForwardRelay}
    ports: ClassVar[dict[bytes, int]] = {b"http": 80}

    def process(self) -> None:
        try:
            parts = urlsplit(self.uri)
            scheme = parts.scheme.lower()
            port = parts.port
            host = parts.hostname
        except ValueError:
            self._refuse(http.BAD_REQUEST, "The request's URL is not a valid absolute URL.")
            return
        if not scheme or not host:
            self._refuse(http.BAD_REQUEST, "A proxy request needs an absolute URL.")
            return
        relay = self.protocols.get(scheme)
        if relay is None or scheme not in self.ports:
            self._refuse(http.NOT_IMPLEMENTED, f"{scheme.decode('latin-1')} is not proxied.")
            return
        target = parts.path or b"/"
        if parts.query:
            target += b"?" + parts.query
        try:
            name = host.decode("idna") if host.startswith(b"xn--") else host.decode("ascii")
        except UnicodeError:
            self._refuse(http.BAD_REQUEST, "The request's host is not a valid name.")
            return
        self.render(relay(name, port or self.ports[scheme], target))

    def _refuse(self, code: int, detail: str) -> None:
        self.render(ErrorPage(code, http.RESPONSES[code].decode("ascii"), detail))


class Proxy(http.HTTPChannel):
    """Twisted's forward proxy protocol: its requests are `ProxyRequest`s."""

    requestFactory = ProxyRequest


class ProxyFactory(http.HTTPFactory):
    """A forward proxy to serve: ``hive run hive.proxy:ProxyFactory``."""

    protocol = Proxy


class _UpstreamFailed(Exception):
    """The upstream server failed after the response had begun."""


def _cancel_if_failed(future: asyncio.Future[None], task: asyncio.Task[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        task.cancel()
