"""CGI scripts (RFC 3875), with the names of ``twisted.web.twcgi``.

`CGIScript` runs an executable for each request: the request body on its standard input,
the CGI variables in its environment, and its standard output parsed as a CGI response
(header lines, ``Status:``, ``Location:``, then the body, streamed to the client as it
comes and read only as fast as the client reads).  `FilteredScript` runs the file through
an interpreter (``filter``), `CGIDirectory` serves a directory of scripts.

They run code found in the served directory: ``hive run --path DIR`` runs ``.cgi`` files
only with ``--scripts``.  Where hive differs from Twisted, to close holes CGI is known for:

- a ``Proxy`` request header is dropped (httpoxy), as are header names with ``_``
  (``X_Forwarded_For`` cannot pose as ``X-Forwarded-For``);
- of hive's own environment only ``passEnvironment`` (PATH, LANG, LC_ALL, TZ) reaches the
  script, not every variable (secrets included) as in Twisted;
- a query string without ``=`` is not passed as command-line arguments (the old ISINDEX
  convention behind PHP-CGI's argument injection);
- a client that goes away kills the script; its standard error goes to the error log.

The scripts run as asyncio subprocesses: no Twisted reactor is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from typing import Any, ClassVar, Final

from hive import http
from hive.iweb import IRequest
from hive.resource import NOT_DONE_YET, ErrorPage, NoResource, Resource
from hive.static import Registry, _safe_name

__all__ = ["CGIDirectory", "CGIScript", "FilteredScript", "PHPScript"]

log = logging.getLogger("hive.twcgi")

#: Bytes read from a script's output at a time.
CHUNK: Final = 64 * 1024
#: Longest header section a script may print; more is a 502.
MAX_HEADER_BYTES: Final = 64 * 1024
#: Standard error kept for the log, per run.
MAX_ERROR_BYTES: Final = 16 * 1024
_HEADER_ENDS: Final = (b"\r\n\r\n", b"\n\n", b"\n\r\n", b"\r\r")
#: Headers hive sets itself.
_NOT_FROM_SCRIPT: Final = frozenset({b"server", b"date", b"transfer-encoding", b"connection"})


class CGIScript(Resource):
    """Runs the executable ``filename`` as a CGI script for every request below it."""

    isLeaf = True
    #: Variables of the server's environment passed on to scripts.
    passEnvironment: ClassVar[Sequence[str]] = ("PATH", "LANG", "LC_ALL", "TZ")

    def __init__(self, filename: str, registry: Registry | None = None, reactor: Any = None):
        super().__init__()
        self.filename = filename
        self.registry = registry

    def render(self, request: IRequest) -> Any:
        return self.runProcess(self.environment(request), request)

    def environment(self, request: IRequest) -> dict[str, str]:
        """The CGI variables for ``request``, with ``passEnvironment`` from hive's."""
        script_name = b"/" + b"/".join(request.prepath)
        host = request.getHost()
        env = {
            "SERVER_SOFTWARE": "hive",
            "SERVER_NAME": _text(request.getRequestHostname()),
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": _text(request.clientproto),
            "SERVER_PORT": str(getattr(host, "port", "")),
            "REQUEST_METHOD": _text(request.method),
            "SCRIPT_NAME": _text(script_name),
            "SCRIPT_FILENAME": self.filename,
            "REQUEST_URI": _text(request.uri),
            "QUERY_STRING": _text(request.uri.partition(b"?")[2]),
            "HTTPS": "on" if request.isSecure() else "off",
        }
        client = request.getClientIP()
        if client is not None:
            env["REMOTE_ADDR"] = client
        if request.postpath:
            env["PATH_INFO"] = _text(b"/" + b"/".join(request.postpath))
        content = request.content
        length = content.seek(0, 2)
        content.seek(0)
        env["CONTENT_LENGTH"] = str(length)
        for name, value in request.getAllHeaders().items():
            if b"_" in name or name == b"proxy":
                continue
            key = _text(name).replace("-", "_").upper()
            if name not in (b"content-type", b"content-length"):
                key = "HTTP_" + key
            env[key] = _text(value)
        for key in self.passEnvironment:
            if key in os.environ and key not in env:
                env[key] = os.environ[key]
        return env

    def command(self) -> list[str]:
        """The program and its arguments."""
        return [self.filename]

    def runProcess(self, env: dict[str, str], request: IRequest, qargs: Any = ()) -> Any:
        """Start the script and answer from its output (``qargs`` is ignored)."""
        return _run(self, self.command(), env, request)


class FilteredScript(CGIScript):
    """A script run by an interpreter: ``filter`` with the file as its argument."""

    filter: str = "/usr/bin/cat"

    def command(self) -> list[str]:
        return [self.filter, self.filename]


class PHPScript(FilteredScript):
    """A PHP file run by php-cgi (which takes its script from SCRIPT_FILENAME)."""

    filter = "/usr/bin/php-cgi"

    def environment(self, request: IRequest) -> dict[str, str]:
        env = super().environment(request)
        env["REDIRECT_STATUS"] = "200"  # php-cgi's cgi.force_redirect check
        return env


class CGIDirectory(Resource):
    """A directory whose files are CGI scripts (and subdirectories likewise)."""

    def __init__(self, pathname: str) -> None:
        super().__init__()
        self.path = pathname

    def getChild(self, path: bytes, request: IRequest) -> Any:
        name = _safe_name(path)
        if not name:
            return NoResource()
        child = os.path.join(self.path, name)
        if os.path.isdir(child):
            return CGIDirectory(child)
        if os.path.isfile(child):
            return CGIScript(child)
        return NoResource()

    def render(self, request: IRequest) -> bytes:
        return NoResource().render(request)


def _text(value: bytes) -> str:
    # Environment variables are str: bytes go through latin-1, one character per byte.
    return value.decode("latin-1")


async def _run(
    script: CGIScript, command: list[str], env: dict[str, str], request: IRequest
) -> Any:
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=os.path.dirname(script.filename) or None,
        )
    except OSError as exc:
        log.error("cannot run CGI script %s: %s", command[0], exc)
        return _error(request, "CGI Script Error", "The script could not be run.")
    assert process.stdin is not None and process.stdout is not None
    errors = asyncio.ensure_future(_collect_errors(process))
    task = asyncio.current_task()

    def gone(finished: asyncio.Future[None]) -> None:
        if task is not None and finished.exception() is not None:
            task.cancel()  # the client went away: stop reading and kill the script

    request.notifyFinish().add_done_callback(gone)
    try:
        await _feed(process.stdin, request)
        return await _respond(process.stdout, request)
    except asyncio.CancelledError:
        return NOT_DONE_YET  # the client went away: the script is killed below
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        code = await process.wait()
        text = await errors
        if code:
            log.error("CGI %s exited with status %d", _text(request.uri), code)
        if text:
            log.error("errors from CGI %s: %s", _text(request.uri), text)


async def _feed(stdin: asyncio.StreamWriter, request: IRequest) -> None:
    content = request.content
    content.seek(0)
    try:
        while chunk := content.read(CHUNK):
            stdin.write(chunk)
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # a script need not read its input
    finally:
        stdin.close()


async def _collect_errors(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    kept = bytearray()
    while chunk := await process.stderr.read(CHUNK):
        if len(kept) < MAX_ERROR_BYTES:
            kept += chunk[: MAX_ERROR_BYTES - len(kept)]
    return kept.decode("utf-8", "replace").strip()


async def _respond(stdout: asyncio.StreamReader, request: IRequest) -> Any:
    head = bytearray()
    while True:
        found = [(head.find(end), end) for end in _HEADER_ENDS if head.find(end) >= 0]
        if found:
            at, end = min(found)
            break
        if len(head) > MAX_HEADER_BYTES:
            log.error("CGI %s: header section too long", _text(request.uri))
            return _error(request, "Bad Gateway", "The script's headers are too long.", 502)
        chunk = await stdout.read(CHUNK)
        if not chunk:
            log.error("premature end of headers in CGI %s", _text(request.uri))
            return _error(request, "CGI Script Error", "Premature end of script headers.")
        head += chunk
    rest = bytes(head[at + len(end) :])
    if not _apply_headers(bytes(head[:at]), end[: len(end) // 2], request):
        return _error(request, "Bad Gateway", "The script's headers are malformed.", 502)
    # The script decides the Content-Type (none is a valid choice), as in Twisted.
    request.defaultContentType = None
    request.write(rest)
    while chunk := await stdout.read(CHUNK):
        request.write(chunk)
        await request.drain()
    request.finish()
    return NOT_DONE_YET


def _apply_headers(text: bytes, line_end: bytes, request: IRequest) -> bool:
    status: int | None = None
    for line in text.split(line_end):
        name, colon, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip()
        if not colon or not name:
            log.error("ignoring malformed CGI header %r", line)
            continue
        if name == b"status":
            try:
                status = int(value[:3])
            except ValueError:
                log.error("malformed CGI Status header %r", value)
            continue
        if name == b"location" and status is None:
            status = http.FOUND
        if name in _NOT_FROM_SCRIPT:
            continue
        try:
            request.responseHeaders.addRawHeader(name, value)
        except ValueError:
            return False
    if status is not None:
        request.setResponseCode(status)
    return True


def _error(request: IRequest, brief: str, detail: str, code: int = 500) -> bytes:
    return ErrorPage(code, brief, detail).render(request)
