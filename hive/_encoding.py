"""Response compression: ``GzipEncoderFactory`` and what ``EncodingResourceWrapper`` installs.

The Twisted protocol is kept: an encoder factory's ``encoderForRequest(request)`` returns an
encoder or None, and the encoder has ``encode(data) -> bytes`` and ``finish() -> bytes``;
``Request`` keeps it in ``request._encoder`` and passes the body through it.

Beyond Twisted, an encoder may have ``start(request, length) -> bool``, called just before
the status and headers go out, when the response is known: it may decline (a small body,
an image, a body that already has a Content-Encoding, a 206), and it sets the headers
itself (Content-Encoding, Vary, Content-Length removed).  ``length`` is the body's size
when the whole body is at hand, else None.  An encoder without ``start`` always encodes,
as in Twisted.  This module is imported by hive.resource and hive.server and imports
neither: requests are typed with hive.iweb.IRequest.
"""

from __future__ import annotations

import zlib
from typing import Any, Final

from zope.interface import implementer

from hive.iweb import IRequest, _IRequestEncoder, _IRequestEncoderFactory

__all__ = ["GzipEncoderFactory", "accepts_encoding", "start_encoder"]


def accepts_encoding(request: Any, coding: bytes, aliases: tuple[bytes, ...] = ()) -> bool:
    """Whether the request's Accept-Encoding allows ``coding`` (RFC 9110 section 12.5.3).

    The coding's own q-value wins, else that of ``*``; q=0 means "not acceptable".  With
    no Accept-Encoding at all, only identity is assumed: compressing then is allowed by
    the RFC but breaks clients that do not expect it.
    """
    values = request.requestHeaders.getRawHeaders(b"accept-encoding")
    if not values:
        return False
    names = (coding, *aliases)
    own: float | None = None
    star: float | None = None
    for element in b",".join(values).split(b","):
        name, _, params = element.partition(b";")
        name = name.strip().lower()
        if name not in names and name != b"*":
            continue
        quality = _quality(params)
        if name == b"*":
            star = quality
        else:
            own = quality if own is None else max(own, quality)
    if own is not None:
        return own > 0
    return star is not None and star > 0


def _quality(params: bytes) -> float:
    for param in params.split(b";"):
        key, _, value = param.partition(b"=")
        if key.strip().lower() == b"q":
            try:
                quality = float(value.strip())
            except ValueError:
                return 0.0  # an unreadable weight: not a yes
            return quality if 0.0 <= quality <= 1.0 else 0.0
    return 1.0


def start_encoder(request: IRequest, encoder: Any, length: int | None) -> bool:
    """Ask ``encoder`` whether it encodes this response; Twisted-style encoders always do."""
    start = getattr(encoder, "start", None)
    return True if start is None else bool(start(request, length))


# Compressing these gains nothing (they are compressed already) and costs CPU.
_INCOMPRESSIBLE_PREFIXES: Final = (b"image/", b"video/", b"audio/")
_COMPRESSIBLE_IMAGES: Final = frozenset({b"image/svg+xml", b"image/x-icon", b"image/bmp"})
_INCOMPRESSIBLE: Final = frozenset(
    {
        b"application/zip",
        b"application/gzip",
        b"application/x-gzip",
        b"application/x-bzip2",
        b"application/x-xz",
        b"application/zstd",
        b"application/x-7z-compressed",
        b"application/x-rar-compressed",
        b"application/vnd.rar",
        b"application/octet-stream",
        b"application/pdf",
        b"application/wasm",
        b"font/woff",
        b"font/woff2",
    }
)
# No body, or a body whose bytes are pinned (a range of the identity representation).
_NOT_ENCODED_CODES: Final = frozenset({204, 206, 304})


def encodable(request: IRequest) -> bool:
    """Whether the response as it stands may be compressed at all, whatever its size."""
    code = request.code
    if code < 200 or code in _NOT_ENCODED_CODES:
        return False
    headers = request.responseHeaders
    if headers.hasHeader(b"content-range"):
        return False
    encoding = headers.getRawHeaders(b"content-encoding")
    if encoding and any(value.strip().lower() != b"identity" for value in encoding):
        return False
    control = headers.getRawHeaders(b"cache-control")
    if control and b"no-transform" in b",".join(control).lower():
        return False
    content_type = headers.getRawHeaders(b"content-type")
    if content_type:
        media = content_type[-1].split(b";", 1)[0].strip().lower()
        if media == b"text/event-stream":
            # Each event must reach the client as it is written, and proxies in between
            # (and some EventSource clients) hold a compressed stream back.
            return False
        if media in _INCOMPRESSIBLE:
            return False
        if media.startswith(_INCOMPRESSIBLE_PREFIXES) and media not in _COMPRESSIBLE_IMAGES:
            return False
    return True


def add_vary(request: IRequest, name: bytes = b"Accept-Encoding") -> None:
    """Add ``name`` to the response's Vary header unless it is there (or Vary is ``*``)."""
    headers = request.responseHeaders
    values = headers.getRawHeaders(b"vary") or []
    present = {token.strip().lower() for value in values for token in value.split(b",")}
    if name.lower() in present or b"*" in present:
        return
    headers.setRawHeaders(b"vary", [b", ".join([*values, name])])


def declared_length(request: IRequest) -> int | None:
    """The Content-Length the resource set, if it set a valid one."""
    values = request.responseHeaders.getRawHeaders(b"content-length")
    if values and values[-1].strip().isdigit():
        return int(values[-1])
    return None


@implementer(_IRequestEncoder)
class VaryOnly:
    """Installed when no encoder applies: the response still varies with Accept-Encoding.

    A cache must not give this identity response to a client that accepts gzip (or the
    reverse), so Vary is added to every response that could have been encoded.
    """

    def start(self, request: IRequest, length: int | None) -> bool:
        if encodable(request):
            add_vary(request)
        return False

    def encode(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


@implementer(_IRequestEncoderFactory)
class GzipEncoderFactory:
    """Compress responses with gzip for clients whose Accept-Encoding allows it.

    ``compressLevel`` is zlib's (1 fastest, 9 smallest; 9 as in Twisted).  Responses whose
    size is known and below ``minimumSize`` bytes are sent as they are: gzip's header and
    a TCP round trip cost more than they save.  Already encoded bodies, partial content,
    ``Cache-Control: no-transform`` and compressed media types are never compressed.
    """

    compressLevel: int = 9
    minimumSize: int = 1024

    def __init__(self, compressLevel: int | None = None, minimumSize: int | None = None) -> None:
        if compressLevel is not None:
            if not -1 <= compressLevel <= 9:
                raise ValueError(f"compressLevel must be -1 to 9, got {compressLevel}")
            self.compressLevel = compressLevel
        if minimumSize is not None:
            if minimumSize < 0:
                raise ValueError(f"minimumSize must not be negative, got {minimumSize}")
            self.minimumSize = minimumSize

    def encoderForRequest(self, request: IRequest) -> GzipEncoder | None:
        """A gzip encoder if the client accepts gzip, else None."""
        if not accepts_encoding(request, b"gzip", (b"x-gzip",)):
            return None
        return GzipEncoder(self.compressLevel, request, self.minimumSize)


@implementer(_IRequestEncoder)
class GzipEncoder:
    """One response's gzip stream (Twisted's ``_GzipEncoder``, with ``start``).

    Every ``encode`` ends with a sync flush, so a streamed response reaches the client as
    it is written (a chat line, a progress report) instead of waiting in zlib's buffer.
    """

    def __init__(self, compressLevel: int, request: IRequest, minimumSize: int = 0) -> None:
        self._compressor: Any = zlib.compressobj(compressLevel, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self._request = request
        self._minimum = minimumSize

    def start(self, request: IRequest, length: int | None) -> bool:
        if not encodable(request):
            return False
        add_vary(request)
        if length is None:
            length = declared_length(request)
        if length is not None and length < self._minimum:
            return False
        headers = request.responseHeaders
        headers.setRawHeaders(b"content-encoding", [b"gzip"])
        # The declared length is the identity body's; the gzip body's is not known yet.
        headers.removeHeader(b"content-length")
        etag = request.etag
        if etag is not None and not etag.startswith(b"W/"):
            # Not byte-identical to the identity response: a strong tag would be a lie.
            request.etag = b"W/" + etag
        return True

    def encode(self, data: bytes) -> bytes:
        compressor = self._compressor
        if compressor is None or not data:
            return b""
        return bytes(compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))

    def finish(self) -> bytes:
        compressor, self._compressor = self._compressor, None
        return bytes(compressor.flush()) if compressor is not None else b""
