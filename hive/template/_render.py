"""renderElement: an element as a whole page, streamed to the request.

What it adds to Twisted's: a page that is rendered without waiting and fits in one chunk
goes out in one write with a Content-Length; a longer or waiting page is streamed in
chunks with backpressure; rendering stops when the client goes away; errors go through
hive's own paths (`Request._fail`): before anything was sent, hive's 500 page (or the
status of a ``hive.error.Error`` a renderer raised); after, the connection is cut and
the traceback logged.  Never is a traceback written into the page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from hive.error import Error, FlattenerError
from hive.iweb import IRequest
from hive.server import NOT_DONE_YET, Request
from hive.template._flatten import DONE, Walk, _watch_for
from hive.template._tags import Flattenable

__all__ = ["renderElement"]

log = logging.getLogger("hive.template")

# Pages being streamed: asyncio keeps only weak references to tasks.
_streaming: set[asyncio.Task[None]] = set()


def renderElement(
    request: IRequest,
    element: Flattenable,
    doctype: bytes | None = b"<!DOCTYPE html>",
    _failElement: Callable[..., Any] | None = None,
    *,
    concurrent: bool = False,
) -> object:
    """Render ``element`` as the response to ``request``; returns NOT_DONE_YET.

    Sets ``Content-Type: text/html; charset=utf-8`` unless a content type is set, writes
    ``doctype`` and a newline first (None: no doctype), and finishes the request.
    ``concurrent=True`` is flatten's (see hive.template).  ``_failElement`` is accepted
    for Twisted's signature and not used: hive shows no tracebacks in pages.
    """
    if not request.responseHeaders.hasHeader(b"content-type"):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
    prefix = b"" if doctype is None else doctype + b"\n"
    walk = Walk(request, element, concurrent)
    try:
        signal = walk.step()
    except Exception as exc:
        _failed(request, exc)
        return NOT_DONE_YET
    if signal is DONE:
        # All of it at once: one write, with a Content-Length.
        body = prefix + walk.take()
        if isinstance(request, Request):
            request._send(body)
        else:
            request.setHeader(b"content-length", b"%d" % len(body))
            request.write(body)
            request.finish()
        return NOT_DONE_YET
    request.write(prefix + walk.take())
    drain = getattr(request, "drain", None)
    task = asyncio.get_running_loop().create_task(_stream(request, walk, signal, drain))
    _streaming.add(task)
    task.add_done_callback(_streaming.discard)
    return NOT_DONE_YET


async def _stream(request: IRequest, walk: Walk, signal: Any, drain: Any) -> None:
    try:
        await walk.finish(signal, request.write, drain, _watch_for(request))
    except ConnectionError:
        if walk.client_gone or getattr(request, "_disconnected", False):
            log.debug("the client went away while its page was rendered")
            return
        raise
    except Exception as exc:
        _failed(request, exc)
        return
    request.finish()


def _failed(request: IRequest, exc: Exception) -> None:
    """Answer an error the way hive answers a render's: 500 page or cut connection."""
    if isinstance(request, Request):
        cause = exc._exception if isinstance(exc, FlattenerError) else exc
        if isinstance(cause, Error) and not request.startedWriting:
            # A renderer's hive.error.Error(404, ...) is that page, as from a resource.
            request._fail(cause)
        else:
            request._fail(exc)
        return
    request.processingFailed(exc)
