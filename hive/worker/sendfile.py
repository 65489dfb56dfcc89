"""A file's bytes as a response body: zero-copy ``os.sendfile``, or read and write.

``Request.sendfile`` uses these.  Zero-copy goes through the transport's flow control
rather than ``loop.sendfile``, so that one design serves both event loops: uvloop does not
implement ``loop.sendfile``, and the stdlib's has no stall deadline (a client that stops
reading would hold the response forever) and makes ``transport.write`` raise meanwhile.

The design: with the transport's high-water mark at 0, ``pause_writing`` comes as soon as
anything waits in its buffer and ``resume_writing`` only when the buffer is empty again,
which is exactly when bytes may go to the socket behind the transport's back without being
reordered.  ``os.sendfile`` then runs until the socket is full (EAGAIN); one piece is then
written through the transport, which puts the connection back into the pause/resume cycle,
and ``request.drain()`` waits until the client has read it.  A client that stops reading
meets the connection's send_timeout as with any other response.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
from typing import Any, BinaryIO

__all__ = ["CHUNK", "send_copied", "send_zero_copy"]

log = logging.getLogger("hive.server")

#: Bytes read and written at a time when the kernel cannot copy for us (TLS, chunked).
CHUNK = 64 * 1024
#: The most one ``os.sendfile`` call is asked for; the loop runs other work between calls.
_SENDFILE_MAX = 4 * 1024 * 1024


def _fileno(obj: Any) -> int:
    try:
        fd = obj.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return -1
    return fd if isinstance(fd, int) else -1


async def send_zero_copy(request: Any, file: BinaryIO, offset: int, count: int) -> int:
    """Send up to ``count`` bytes of ``file`` from ``offset`` straight to the socket.

    Returns how many bytes of the range were sent (through the kernel or, on EAGAIN, one
    piece through the transport): the caller sends any rest another way.  0 means
    zero-copy is not possible here (no socket, or a file without a descriptor).  Raises
    ConnectionError when the client is gone.
    """
    channel = request.channel
    transport = channel.transport
    get_extra_info = getattr(transport, "get_extra_info", None)
    out_fd = _fileno(get_extra_info("socket")) if get_extra_info is not None else -1
    in_fd = _fileno(file)
    if out_fd < 0 or in_fd < 0 or not hasattr(transport, "set_write_buffer_limits"):
        return 0
    count = min(count, channel.body_remaining or 0)
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0, low=0)
    done = 0
    try:
        while done < count:
            if channel.write_paused:
                await request.drain()  # the transport's buffer is empty after this
            if not channel.can_sendfile() or transport.get_write_buffer_size():
                break  # closed, or (never seen) still buffered: the rest goes by copy
            try:
                sent = os.sendfile(out_fd, in_fd, offset + done, min(count - done, _SENDFILE_MAX))
            except BlockingIOError:
                # The socket is full.  A piece through the transport makes it call
                # pause_writing now and resume_writing once the client has read it all.
                piece = os.pread(in_fd, min(count - done, CHUNK), offset + done)
                if not piece:
                    break
                request.write(piece)
                done += len(piece)
                continue
            except OSError as exc:
                # EPIPE, ECONNRESET...: the client is gone; connection_lost follows.
                transport.abort()
                raise ConnectionError(f"sendfile: {exc.strerror or exc}") from exc
            if sent == 0:
                break  # the file is shorter than the range; finish() notices and closes
            channel.body_sent_elsewhere(sent)
            request.sentLength += sent
            done += sent
            # Let other connections in: a fast client never makes sendfile wait.
            await asyncio.sleep(0)
    finally:
        with contextlib.suppress(Exception):  # the transport may be closed by now
            transport.set_write_buffer_limits(high=high, low=low)
    return done


async def send_copied(request: Any, file: BinaryIO, offset: int, count: int) -> None:
    """Send ``count`` bytes of ``file`` from ``offset``: read, write, wait while the client
    is not reading.  A file shorter than that ends early (finish() then closes)."""
    fd = _fileno(file)
    if fd < 0:
        file.seek(offset)
    while count > 0:
        size = min(count, CHUNK)
        piece = os.pread(fd, size, offset) if fd >= 0 else file.read(size)
        if not piece:
            return
        request.write(piece)
        offset += len(piece)
        count -= len(piece)
        await request.drain()
