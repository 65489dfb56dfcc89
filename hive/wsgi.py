"""WSGI applications (PEP 3333) in the resource tree, as ``twisted.web.wsgi.WSGIResource``.

    root.putChild(b"app", WSGIResource(None, None, application))  # Twisted's constructor
    hive run --wsgi myproject.wsgi:application                    # an application at the root

`WSGIResource` is a leaf: SCRIPT_NAME is where it is mounted (the request's prepath) and
PATH_INFO the rest.  The application, its iterable and the iterable's ``close()`` run in
one thread of a pool: the worker's (``hive run --threads N``, 10 by default) unless the
resource was given an Executor.  With no threads (``--threads 0``) they run on the event
loop itself: no hand-off, fastest, but a call that blocks stops the whole worker.

How a response goes out:
- A body that is all at hand (a list or tuple, or as many bytes as its Content-Length) is
  sent with its head in one write, and the iterable is not asked for more.
- Otherwise each non-empty chunk goes out as it comes, and the next one is asked for once
  the client has taken it (``await request.drain()`` on the loop); ``write()`` also waits.
- ``close()`` is always called: when the body is done, on an error, when the client left.
- An error before the head went out answers 500 (logged with its traceback, as any
  render error); after it, the connection is cut.  The worker goes on serving.  An error
  that comes from reading a body the client cut short (it closed before Content-Length
  bytes came) is the client's abort: the connection is closed with no answer, one info
  line is logged, and the request counts as abandoned.
- ``OPTIONS *`` reaches the application with PATH_INFO ``*`` (gunicorn's and uvicorn's
  choice), so that it can be told from ``OPTIONS /``.
- ``wsgi.file_wrapper``: a regular file with a declared Content-Length goes out through
  ``request.sendfile`` (``os.sendfile``, zero-copy, over plain TCP; read and written
  otherwise); any other file-like is read in blocks of at least 64 KiB.

``wsgi.input``: an application in a thread pool reads a body with a Content-Length while it
arrives (hive.worker.body.RequestBody): the application starts as soon as the head is in,
the socket is read only as fast as the application reads (so an upload costs the worker
at most a few hundred KiB), a client sending ``Expect: 100-continue`` is asked for the
body on the first read, and a body the application leaves unread is dropped (or the
connection closed, past 1 MiB) after the response.  A body larger than the body size limit
is refused with 413 before the application runs.  A chunked body, and any body of an
application on the event loop (``--threads 0``, where a read must not block), is received
whole first (spooled to disk past 1 MiB), so CONTENT_LENGTH is always set (frameworks such
as Django read exactly CONTENT_LENGTH bytes).  Either way ``wsgi.input`` ends where the
body does (``wsgi.input_terminated``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Executor
from types import TracebackType
from typing import Any, BinaryIO, Final, NamedTuple, cast

from zope.interface import implementer

from hive._header_lists import HeaderLists
from hive.address import UNIXAddress
from hive.http_headers import Headers
from hive.iweb import IRequest, IResource
from hive.server import NOT_DONE_YET, Request
from hive.worker.threads import LoopInbox, ThreadPool

__all__ = ["FileWrapper", "WSGIResource", "set_default_threads"]

log = logging.getLogger("hive.wsgi")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Write = Callable[[bytes], None]
StartResponse = Callable[..., Write]
Application = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: wsgi.file_wrapper files are read at least this much at a time.
FILE_BLOCK: Final = 64 * 1024
_IN_MEMORY: Final[tuple[type, ...]] = (type(iter([])), type(iter(())))
#: Response headers the Site sets itself (--server-header); the application's are dropped.
_SITE_HEADERS: Final = (b"server", b"date")


class _WorkerPool:
    """The pool of resources given none: ``--threads`` threads (0: the event loop)."""

    def __init__(self) -> None:
        self.threads = 10
        self._pool: ThreadPool | None = None

    def configure(self, threads: int) -> None:
        if threads < 0:
            raise ValueError(f"threads must not be negative, got {threads}")
        if threads != self.threads and self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self.threads = threads

    def get(self) -> ThreadPool | None:
        if self.threads == 0:
            return None
        if self._pool is None:
            self._pool = ThreadPool(self.threads, "hive-wsgi")
        return self._pool


_worker_pool = _WorkerPool()


def set_default_threads(threads: int) -> None:
    """Size the worker's pool (``hive run --threads``); 0 runs applications on the loop."""
    _worker_pool.configure(threads)


class _TwistedThreads(Executor):
    """A Twisted ThreadPool (``callInThread``) where the container wants an Executor."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.pool.callInThread(fn, *args, **kwargs)


@implementer(IResource)
class WSGIResource:
    """A leaf resource that answers every request under it with a WSGI application.

    ``WSGIResource(reactor, threadpool, application)`` keeps Twisted's signature: the
    reactor is ignored; ``threadpool`` is None for the worker's pool or any
    `concurrent.futures.Executor`.  ``WSGIResource.create(application, threads=N)``
    gives the resource a pool of its own (0: the event loop).
    """

    isLeaf = True
    server: Any = None

    @property
    def streamsRequestBody(self) -> bool:
        """Bodies are read while they arrive, unless the application runs on the loop."""
        if self._pool is not None:
            return True
        return not self._on_loop and _worker_pool.threads > 0

    def __init__(
        self, reactor: object, threadpool: Executor | None, application: Application
    ) -> None:
        if threadpool is not None and not isinstance(threadpool, Executor):
            if not callable(getattr(threadpool, "callInThread", None)):
                raise TypeError(
                    "threadpool must be None (the worker's pool, sized by --threads), a "
                    "concurrent.futures.Executor or a Twisted ThreadPool, not "
                    f"{type(threadpool).__name__}"
                )
            # A Twisted ThreadPool (reactor.getThreadPool()): its threads run the calls.
            threadpool = _TwistedThreads(threadpool)
        if not callable(application):
            raise TypeError(f"the WSGI application must be callable, not {application!r}")
        self._reactor = reactor
        self._application = application
        self._pool: ThreadPool | Executor | None = threadpool
        self._on_loop = False
        self._inbox: LoopInbox | None = None

    @classmethod
    def create(cls, application: Application, *, threads: int | None = None) -> WSGIResource:
        """A resource for ``application`` with ``threads`` threads of its own: 0 runs it on
        the event loop, None shares the worker's pool."""
        resource = cls(None, None, application)
        if threads is not None:
            if threads < 0:
                raise ValueError(f"threads must not be negative, got {threads}")
            resource._pool = ThreadPool(threads, "hive-wsgi") if threads else None
            resource._on_loop = threads == 0
        return resource

    def render(self, request: IRequest) -> Any:
        """Start the application: on the loop, the body if it came whole at once, else a
        coroutine that streams it; in a thread, NOT_DONE_YET (answered when it is done)."""
        # A container reads the request hive's Site makes (its parsed head, its answer
        # path), not only what IRequest promises.
        request = cast(Request, request)
        pool = self._pool
        if pool is None and not self._on_loop:
            pool = _worker_pool.get()
        if pool is None:
            environ = wsgi_environ(request, multithread=False)
            return _Call(self._application, environ, request).run_on_loop()
        multithread = pool.size > 1 if isinstance(pool, ThreadPool) else True
        call = _Call(self._application, wsgi_environ(request, multithread), request)
        loop = asyncio.get_running_loop()
        inbox = self._inbox
        if inbox is None or inbox.loop is not loop:
            inbox = self._inbox = LoopInbox(loop)
        return call.run_in(pool, inbox)

    def getChildWithDefault(self, name: bytes, request: IRequest) -> Any:
        raise RuntimeError("Cannot get IResource children from WSGIResource")

    def putChild(self, path: bytes, child: Any) -> None:
        raise RuntimeError("Cannot put IResource children under WSGIResource")


class FileWrapper:
    """``wsgi.file_wrapper``: a file's contents as an iterable of blocks; ``close()``
    closes the file.  hive recognises it: a regular file whose length the application
    declared is sent with ``request.sendfile``, anything else in blocks of `FILE_BLOCK`
    or more."""

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> Iterator[bytes]:
        return self.blocks(self.blksize)

    def blocks(self, size: int) -> Iterator[bytes]:
        read = self.filelike.read
        while block := read(size):
            yield block

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class ErrorStream:
    """``wsgi.errors``: text written here goes to the error log (logger "hive.wsgi"), a
    line at a time."""

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = ""

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"wsgi.errors takes str, not {type(text).__name__}")
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            log.error("%s", line)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._partial:
            log.error("%s", self._partial)
            self._partial = ""


# -- the environ -------------------------------------------------------------------------------

_BASE_ENVIRON: Final[dict[str, Any]] = {
    "wsgi.version": (1, 0),
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
    "wsgi.file_wrapper": FileWrapper,
    # wsgi.input ends with the body (streamed or not): reading to its end is safe.
    "wsgi.input_terminated": True,
}

_KEY_CACHE_LIMIT: Final = 1024
#: Lowercased header name -> its environ key, or "" for a header the environ does not carry.
_header_keys: dict[bytes, str] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
}
#: Request method and protocol -> the environ's str, for the usual few.
_texts: dict[bytes, str] = {}


def _header_key(name: bytes) -> str:
    """HTTP_USER_AGENT for user-agent; "" for headers the environ does not carry."""
    # Headers with "_" would collide with "-" ones (a client's X_Forwarded_For posing as a
    # proxy's X-Forwarded-For): dropped, as nginx, Apache and gunicorn do.
    text = name.decode("latin-1")
    key = "" if "_" in text else "HTTP_" + text.upper().replace("-", "_")
    if len(_header_keys) < _KEY_CACHE_LIMIT:
        _header_keys[name] = key
    return key


def _text(raw: bytes) -> str:
    text = _texts.get(raw)
    if text is None:
        text = raw.decode("latin-1")
        if len(_texts) < 64:
            _texts[raw] = text
    return text


def wsgi_environ(request: Request, multithread: bool = True) -> dict[str, Any]:
    """The PEP 3333 environ for ``request``; str values are latin-1 decoded bytes."""
    prepath = request.prepath
    postpath = request.postpath
    secure = request.isSecure()
    method = request.method
    protocol = request.clientproto
    environ = {
        **_BASE_ENVIRON,
        "REQUEST_METHOD": _text(method),
        "SCRIPT_NAME": "/" + b"/".join(prepath).decode("latin-1") if prepath else "",
        "PATH_INFO": "/" + b"/".join(postpath).decode("latin-1") if postpath else "",
        "QUERY_STRING": request.uri.partition(b"?")[2].decode("latin-1"),
        "SERVER_PROTOCOL": _text(protocol),
        "wsgi.url_scheme": "https" if secure else "http",
        "wsgi.input": request.content,
        "wsgi.errors": ErrorStream(),
        "wsgi.multithread": multithread,
    }
    headers = request._request_headers
    # The parsed head's pairs, unless something changed the request's headers before.
    pairs = (
        request._head.headers
        if headers is None
        else [(name, value) for name, values in headers._raw.items() for value in values]
    )
    keys = _header_keys
    for name, value in pairs:
        key = keys.get(name)
        if key is None:
            key = _header_key(name)
        if key:
            text = value.decode("latin-1")
            earlier = environ.get(key)
            if earlier is None:
                environ[key] = text
            else:
                environ[key] = earlier + ("; " if key == "HTTP_COOKIE" else ",") + text
    if request.path == b"*":
        # OPTIONS * (asterisk-form, RFC 9112 3.2.4) is about the server, not a path: as
        # gunicorn and uvicorn do, PATH_INFO says "*" so that it is not taken for "/".
        environ["PATH_INFO"] = "*"
    if "CONTENT_TYPE" not in environ:
        environ["CONTENT_TYPE"] = ""
    if "CONTENT_LENGTH" not in environ:
        environ["CONTENT_LENGTH"] = ""
    if "HTTP_TRANSFER_ENCODING" in environ:
        # A chunked body has no Content-Length, but hive has it all: say how long it is.
        content = request.content
        environ["CONTENT_LENGTH"] = str(content.seek(0, 2))
        content.seek(0)
    host_header = environ.get("HTTP_HOST")
    if host_header:
        # As Request.getRequestHostname: the Host header's name without its port.
        if host_header[0] == "[":
            environ["SERVER_NAME"] = host_header.split("]", 1)[0] + "]"
        else:
            environ["SERVER_NAME"] = host_header.split(":", 1)[0]
    else:
        environ["SERVER_NAME"] = request.getRequestHostname().decode("latin-1")
    host = request.getHost()
    if isinstance(host, UNIXAddress):
        # No port on a unix socket: the Host header's, else the scheme's.
        authority = host_header or ""
        port = authority.rpartition(":")[2] if ":" in authority.rpartition("]")[2] else ""
        environ["SERVER_PORT"] = port or ("443" if secure else "80")
    else:
        environ["SERVER_PORT"] = str(host.port)
    client = request.getClientAddress()
    if isinstance(client, UNIXAddress):
        environ["REMOTE_ADDR"] = ""
    else:
        environ["REMOTE_ADDR"] = client.host
        environ["REMOTE_PORT"] = str(client.port)
    return environ


# -- start_response ---------------------------------------------------------------------------

_STATUS_CACHE_LIMIT: Final = 256
_statuses: dict[str, tuple[int, bytes]] = {}


def parse_status(status: object) -> tuple[int, bytes]:
    """``"200 OK"`` -> (200, b"OK"); TypeError or ValueError for anything else."""
    if not isinstance(status, str):
        raise TypeError(f"status must be a str such as '200 OK', not {type(status).__name__}")
    parsed = _statuses.get(status)
    if parsed is not None:
        return parsed
    code, _, reason = status.partition(" ")
    if not (len(code) == 3 and code.isascii() and code.isdigit() and code[0] != "0"):
        raise ValueError(f"status must be a 3-digit code and a reason, not {status!r}")
    if any(c in reason for c in "\r\n\0"):
        raise ValueError(f"status must not contain CR, LF or NUL: {status!r}")
    try:
        parsed = (int(code), reason.encode("latin-1"))
    except UnicodeEncodeError:
        raise ValueError(f"status must be latin-1 text, not {status!r}") from None
    if len(_statuses) < _STATUS_CACHE_LIMIT:
        _statuses[status] = parsed
    return parsed


_NAME_CACHE_LIMIT: Final = 1024
#: Header names already found to be tokens: name -> (lowercased bytes name).
_names: dict[str, bytes] = {}


def _header_name(name: str) -> bytes:
    key = _names.get(name)
    if key is None:
        try:
            raw = name.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"header name {name!r} is not latin-1 text") from None
        Headers().addRawHeader(raw, b"")  # ValueError unless an RFC 9110 token
        key = raw.lower()
        if len(_names) < _NAME_CACHE_LIMIT:
            _names[name] = key
    return key


def _parse_header_list(headers: object) -> tuple[list[tuple[bytes, bytes]], int | None]:
    """The application's header list as wire pairs, and apart from them its Content-Length.

    TypeError for a wrong shape; ValueError, as `Headers` raises it, for a name that is
    not a token or a value with CR, LF or NUL, and for text outside latin-1.
    """
    if not isinstance(headers, list):
        raise TypeError(f"headers must be a list of (name, value), not {type(headers).__name__}")
    pairs = []
    length = None
    for header in headers:
        if not (isinstance(header, tuple) and len(header) == 2):
            raise TypeError(f"a header must be a (name, value) tuple, not {header!r}")
        name, value = header
        if not (isinstance(name, str) and isinstance(value, str)):
            raise TypeError(f"a header's name and value must be str, not {header!r}")
        key = _header_name(name)
        if "\r" in value or "\n" in value or "\0" in value:
            raise ValueError(f"value of header {name!r} contains CR, LF or NUL: {value!r}")
        try:
            raw_value = value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"value of header {name!r} is not latin-1 text") from None
        if key == b"content-length":
            # Kept apart: a body sent whole is framed by its own length.
            if raw_value.isdigit():
                length = int(raw_value)
        elif key not in _SITE_HEADERS:
            pairs.append((key, raw_value))
    # Every name and value was checked above, as Headers would have.
    return pairs, length


#: The list as Headers and its Content-Length, each distinct list parsed once.
parse_headers = HeaderLists(_parse_header_list)

# -- one call ---------------------------------------------------------------------------------


class _FileSpan(NamedTuple):
    """``size`` bytes of ``file`` from ``offset``, for ``request.sendfile``."""

    file: BinaryIO
    offset: int
    size: int


class _ClientGone(ConnectionError):
    """Raised in the application's thread when the client went away while it streamed."""


class _Call:
    """One call of the application: start_response, write, and how far the response got.

    The application, its iterable and ``close()`` run in one thread (a pool's, or the
    loop's); the request is touched on the event loop only.
    """

    __slots__ = (
        "_loop",
        "application",
        "environ",
        "headers",
        "headers_sent",
        "length",
        "request",
        "sent",
        "status",
    )

    def __init__(self, application: Application, environ: dict[str, Any], request: Request):
        self.application = application
        self.environ = environ
        self.request = request
        self.status: tuple[int, bytes] | None = None
        self.headers = Headers()
        #: The Content-Length the application declared, if any.
        self.length: int | None = None
        #: The head is committed: no start_response may replace it any more.
        self.headers_sent = False
        self.sent = 0
        #: The loop to hand chunks to, when the application runs in another thread.
        self._loop: asyncio.AbstractEventLoop | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Write:
        """PEP 3333's start_response."""
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self.status is not None:
            raise RuntimeError("start_response called a second time without exc_info")
        parsed = parse_status(status)
        self.headers, self.length = parse_headers(headers)
        self.status = parsed
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333's write(): send ``data`` now, the head first."""
        if self.status is None:
            raise RuntimeError("write() called before start_response")
        if not isinstance(data, bytes):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        if data:
            self._commit()
            self.sent += len(data)
            if self._loop is None:
                self._send_now(data)
            else:
                self._send_from_thread(data)

    def call(self) -> Any:
        """Call the application; what it returns (an iterable, or a FileWrapper)."""
        try:
            return self.application(self.environ, self.start_response)
        except (SystemExit, KeyboardInterrupt) as exc:
            # Not the worker's to obey: the application's error, answered like any other.
            self.environ["wsgi.errors"].flush()
            raise RuntimeError(f"the WSGI application raised {type(exc).__name__}") from exc
        except BaseException:
            self.environ["wsgi.errors"].flush()
            raise

    def whole(self, result: Any) -> bytes | None:
        """The body, if ``result`` is a list or tuple and nothing was written yet (the
        usual answer, taken without a generator); else None, for `respond`."""
        if (type(result) is list or type(result) is tuple) and not self.headers_sent:
            try:
                return self._whole(b"".join(result))
            finally:
                self.environ["wsgi.errors"].flush()
        return None

    def respond(self, result: Any) -> Generator[bytes | _FileSpan, None, bytes]:
        """Walk the application's ``result``: yield each chunk (or file span) to stream,
        and return what is left of the body (all of it, when it came whole)."""
        try:
            try:
                if type(result) is FileWrapper:
                    span = self._file_span(result)
                    if span is not None:
                        self._commit()
                        self.sent += span.size
                        yield span
                        return b""
                    iterator = result.blocks(max(result.blksize, FILE_BLOCK))
                else:
                    iterator = iter(result)
                if type(iterator) in _IN_MEMORY and not self.headers_sent:
                    return self._whole(b"".join(iterator))
                for chunk in iterator:
                    if type(chunk) is not bytes:
                        chunk = _as_bytes(chunk)
                    if not chunk:
                        continue
                    if self.length is not None and len(chunk) >= self.length - self.sent:
                        # PEP 3333: stop iterating once Content-Length bytes were sent.
                        chunk = chunk[: max(self.length - self.sent, 0)]
                        if not self.headers_sent:
                            return self._whole(chunk)
                        if chunk:
                            self.sent += len(chunk)
                            yield chunk
                        return b""
                    self._commit()
                    self.sent += len(chunk)
                    yield chunk
                return b"" if self.headers_sent else self._whole(b"")
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except (SystemExit, KeyboardInterrupt) as exc:
            # Not the worker's to obey: the application's error, answered like any other.
            raise RuntimeError(f"the WSGI application raised {type(exc).__name__}") from exc
        finally:
            self.environ["wsgi.errors"].flush()

    def _file_span(self, wrapper: FileWrapper) -> _FileSpan | None:
        """The wrapped file as a span for ``request.sendfile`` (zero-copy where the
        connection allows): a regular file, and a declared Content-Length to send."""
        if self.length is None or self.status is None or self.headers_sent:
            return None
        file = wrapper.filelike
        try:
            regular = stat.S_ISREG(os.fstat(file.fileno()).st_mode)
            offset = file.tell()
        except (AttributeError, OSError, ValueError):
            return None
        return _FileSpan(file, offset, self.length) if regular else None

    def _commit(self) -> None:
        """The head goes out with the next bytes: start_response cannot replace it now."""
        if self.status is None:
            raise RuntimeError("the WSGI application gave a body without calling start_response")
        self.headers_sent = True

    def _whole(self, body: bytes) -> bytes:
        self._commit()
        if self.length is not None and len(body) > self.length:
            body = body[: self.length]
        return body

    # -- on the event loop ----------------------------------------------------------------

    def _apply_head(self, whole: bool = False) -> None:
        """Give the request the application's status and headers; ``whole`` if the body
        is sent at once, framed by its own length (HEAD keeps the declared one)."""
        request = self.request
        if not request.startedWriting:
            assert self.status is not None
            code, reason = self.status
            request.setResponseCode(code, reason or None)
            headers = self.headers
            if self.length is not None and (not whole or request.method == b"HEAD"):
                headers.setRawHeaders(b"content-length", [b"%d" % self.length])
            request.responseHeaders = headers

    def _send_now(self, data: bytes) -> None:
        self._apply_head()
        self.request.write(data)

    def run_on_loop(self) -> Any:
        """Run the application here: return the body if it came whole, else a coroutine
        that streams it."""
        result = self.call()
        whole = self.whole(result)
        if whole is not None:
            self._apply_head(whole=True)
            return whole
        body = self.respond(result)
        try:
            chunk = next(body)
        except StopIteration as stop:
            self._apply_head(whole=True)
            return stop.value
        return self._stream_on_loop(body, chunk)

    async def _stream_on_loop(
        self, body: Generator[bytes | _FileSpan, None, bytes], chunk: bytes | _FileSpan
    ) -> Any:
        try:
            while True:
                if not await self._deliver(chunk):
                    return NOT_DONE_YET  # the client left; closing `body` closes the iterable
                try:
                    chunk = next(body)
                except StopIteration as stop:
                    return stop.value
        finally:
            body.close()

    def run_in(self, pool: ThreadPool | Executor, inbox: LoopInbox) -> Any:
        """Run the application in ``pool``; the response is sent from the loop when it is
        done (NOT_DONE_YET for the render: no future or task per request)."""
        self._loop = inbox.loop
        if isinstance(pool, ThreadPool):
            pool.call(self._run_in_thread, inbox)
        else:
            pool.submit(self._run_in_thread, inbox)
        return NOT_DONE_YET

    def _settle(self, value: Any, error: Exception | None) -> None:
        """On the loop: answer with what the thread's call gave, as a render would."""
        request = self.request
        if error is not None:
            if _cut_short(error, request):
                _abandon(request, error)
            else:
                request._fail(error)
            return
        try:
            if type(value) is bytes:
                self._apply_head(whole=True)
            request._answer(value)
        except Exception as exc:
            request._fail(exc)

    async def _deliver(self, chunk: bytes | _FileSpan) -> bool:
        """Send ``chunk`` and wait until the client can take more; False if it left."""
        request = self.request
        self._apply_head()
        try:
            if isinstance(chunk, _FileSpan):
                await request.sendfile(chunk.file, chunk.offset, chunk.size)
            else:
                request.write(chunk)
                await request.drain()
        except ConnectionError:
            return False
        return True

    # -- in the pool's thread -------------------------------------------------------------

    def _run_in_thread(self, inbox: LoopInbox) -> None:
        value: Any = NOT_DONE_YET
        error: Exception | None = None
        try:
            value = self._drive()
        except _ClientGone:
            pass
        except Exception as exc:
            error = exc
        except BaseException as exc:
            error = RuntimeError(f"the WSGI application raised {type(exc).__name__}")
            error.__cause__ = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: the worker has stopped
            inbox.put(self._settle, value, error)

    def _drive(self) -> Any:
        result = self.call()
        whole = self.whole(result)
        if whole is not None:
            return whole
        body = self.respond(result)
        try:
            while True:
                try:
                    chunk = next(body)
                except StopIteration as stop:
                    return stop.value
                self._send_from_thread(chunk)
        finally:
            body.close()

    def _send_from_thread(self, data: bytes | _FileSpan) -> None:
        loop = self._loop
        assert loop is not None
        sent = asyncio.run_coroutine_threadsafe(self._deliver(data), loop)
        while True:
            try:
                if sent.result(timeout=1.0):
                    return
                raise _ClientGone("the client went away")
            except TimeoutError:
                # A loop that closes without running the send (the worker stopping) must
                # not hold this thread forever.
                if loop.is_closed():
                    raise _ClientGone("the worker stopped") from None


def _cut_short(error: BaseException, request: Request) -> bool:
    """Whether ``error`` comes from reading a body the client cut short: it half-closed,
    or the connection went, before Content-Length bytes came (an application may have
    raised its own error from the read's, as Django's UnreadablePostError is)."""
    cause = getattr(request.content, "error", None)  # a streamed RequestBody's
    if cause is None:
        return False
    seen: BaseException | None = error
    for _ in range(16):  # a chain of causes is short; a cycle must not hang the loop
        if seen is None:
            return False
        if seen is cause:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _abandon(request: Request, error: Exception) -> None:
    """The client went away while it sent the body: a client abort, not a 500.  The
    connection is closed with no answer, and the request is counted as abandoned."""
    log.info(
        "%s %s: abandoned: %s",
        request.method.decode("latin-1"),
        request.uri.decode("latin-1"),
        getattr(request.content, "error", error),
    )
    if not request.finished and not request._disconnected:
        request.channel.abort_response()
        request.connectionLost(error)


def _as_bytes(chunk: object) -> bytes:
    if isinstance(chunk, bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"the WSGI application gave {type(chunk).__name__}, not bytes")
