"""Request-side parsing: query strings, form bodies, cookies and Basic credentials.

Pure functions on bytes and seekable binary files; hive's Request uses them to fill
``args``, ``received_cookies`` and ``getUser``/``getPassword`` the way Twisted does.
"""

from __future__ import annotations

import binascii
import os
import re
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import unquote_to_bytes

__all__ = [
    "DEFAULT_MAX_FIELDS",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_MEMORY",
    "FormError",
    "FormPart",
    "format_set_cookie",
    "parse_basic_auth",
    "parse_content_type",
    "parse_cookies",
    "parse_form",
    "parse_multipart",
    "parse_query",
]

DEFAULT_MAX_FIELDS = 1000
DEFAULT_MAX_MEMORY = 64 * 1024 * 1024
DEFAULT_MAX_HEADER_BYTES = 16 * 1024

_CHUNK_SIZE = 64 * 1024
_URLENCODED = b"application/x-www-form-urlencoded"
_MULTIPART = b"multipart/form-data"

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PARAM = re.compile(rb'[ \t]*;[ \t]*([^\s;=]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^;]*)')
_QUOTED_PAIR = re.compile(rb'\\([\\"])')
_BAD_COOKIE_VALUE = re.compile(rb"[\x00-\x20\x7f,;]")
_BAD_COOKIE_ATTR = re.compile(rb"[\x00\r\n;]")
_SAME_SITE = (b"lax", b"strict", b"none")


class FormError(ValueError):
    """A form body could not be parsed or exceeds a limit; answer 400."""


@dataclass(frozen=True, slots=True)
class FormPart:
    """One part of a multipart/form-data body.

    ``name`` is b"" when the part has no usable Content-Disposition name. ``headers``
    holds (lowercased name, value) pairs in order. ``value`` is the content with any
    base64 or quoted-printable Content-Transfer-Encoding undone.
    """

    name: bytes
    filename: bytes | None
    content_type: bytes | None
    headers: list[tuple[bytes, bytes]]
    value: bytes


def _unquote_plus(s: bytes) -> bytes:
    if b"+" in s:
        s = s.replace(b"+", b" ")
    if b"%" in s:
        s = unquote_to_bytes(s)
    return s


def parse_query(query: bytes) -> dict[bytes, list[bytes]]:
    """Parse a query string (without the "?") into Twisted's ``request.args`` shape.

    Same results as ``urllib.parse.parse_qs(query, keep_blank_values=True)`` but on raw
    bytes: fields split on b"&" only, a field without "=" gets b"", "+" becomes a space,
    %XX escapes decode to bytes and invalid escapes are kept as they are. Twisted's own
    ``http.parse_qs`` also splits on b";" and drops fields without "="; hive does not.
    """
    args: dict[bytes, list[bytes]] = {}
    if not query:
        return args
    for field in query.split(b"&"):
        if not field:
            continue
        raw_name, _, raw_value = field.partition(b"=")
        name = _unquote_plus(raw_name)
        value = _unquote_plus(raw_value)
        values = args.get(name)
        if values is None:
            args[name] = [value]
        else:
            values.append(value)
    return args


def parse_content_type(value: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """Split a Content-Type-like header into (lowercased type, parameters).

    Parameter names are lowercased; quoted values are unquoted (only \\" and \\\\ are
    escapes, so Windows paths in old browsers' file names survive). The first occurrence
    of a parameter wins; pieces that are not ``name=value`` are ignored.
    """
    semicolon = value.find(b";")
    if semicolon < 0:
        return value.strip().lower(), {}
    kind = value[:semicolon].strip().lower()
    params: dict[bytes, bytes] = {}
    pos = semicolon
    while pos < len(value):
        match = _PARAM.match(value, pos)
        if match is None:
            # Skip junk up to the next separator rather than rejecting the header.
            nxt = value.find(b";", pos + 1)
            if nxt < 0:
                break
            pos = nxt
            continue
        name = match.group(1).lower()
        raw = match.group(2)
        if raw.startswith(b'"') and raw.endswith(b'"') and len(raw) >= 2:
            param = _QUOTED_PAIR.sub(rb"\1", raw[1:-1])
        else:
            param = raw.rstrip(b" \t")
        params.setdefault(name, param)
        pos = match.end()
    return kind, params


def parse_form(
    content_type: bytes | None,
    body: BinaryIO,
    *,
    max_fields: int = DEFAULT_MAX_FIELDS,
    max_memory: int = DEFAULT_MAX_MEMORY,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
) -> dict[bytes, list[bytes]]:
    """Parse a urlencoded or multipart/form-data body into arguments for ``request.args``.

    Returns {} for other content types and for an empty body. Twisted merges the result
    with ``args.update(...)``, so a body field replaces a query field of the same name.
    Multipart values are part contents (file contents included) in body order; parts
    without a name are skipped. Twisted does this for POST requests only; that choice is
    the caller's. ``body`` must be seekable; it is left at position 0, also on error.

    Raises FormError for malformed multipart bodies, more than ``max_fields`` fields,
    more than ``max_memory`` bytes of values, or a part header block over
    ``max_header_bytes``.
    """
    if not content_type:
        return {}
    kind, params = parse_content_type(content_type)
    if kind not in (_URLENCODED, _MULTIPART):
        return {}
    try:
        if body.seek(0, os.SEEK_END) == 0:
            return {}
        body.seek(0)
        if kind == _URLENCODED:
            return _parse_urlencoded(body, max_fields, max_memory)
        boundary = params.get(b"boundary")
        if not boundary:
            raise FormError("multipart/form-data request without a boundary parameter")
        args: dict[bytes, list[bytes]] = {}
        parts = parse_multipart(
            body,
            boundary,
            max_fields=max_fields,
            max_memory=max_memory,
            max_header_bytes=max_header_bytes,
        )
        for part in parts:
            if part.name:
                args.setdefault(part.name, []).append(part.value)
        return args
    finally:
        body.seek(0)


def _parse_urlencoded(body: BinaryIO, max_fields: int, max_memory: int) -> dict[bytes, list[bytes]]:
    data = body.read(max_memory + 1)
    if len(data) > max_memory:
        raise FormError(f"urlencoded form body is larger than {max_memory} bytes")
    if data.count(b"&") >= max_fields:
        raise FormError(f"urlencoded form has more than {max_fields} fields")
    return parse_query(data)


def parse_multipart(
    body: BinaryIO,
    boundary: bytes,
    *,
    max_fields: int = DEFAULT_MAX_FIELDS,
    max_memory: int = DEFAULT_MAX_MEMORY,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
) -> list[FormPart]:
    """Parse a multipart/form-data body read from the current position of ``body``.

    ``boundary`` is the Content-Type boundary parameter, unquoted. Accepts CRLF and
    bare LF line endings, a preamble and an epilogue (never read). The position of
    ``body`` afterwards is unspecified. Raises FormError as described in parse_form.
    """
    if not boundary:
        raise FormError("multipart boundary is empty")
    return _MultipartReader(body, boundary, max_memory, max_header_bytes).parts(max_fields)


class _MultipartReader:
    """Streaming multipart splitter over a chunked buffer.

    A delimiter is ``(CR)LF--boundary`` followed by optional ``--`` (the close
    delimiter), blanks and a line end; anything else that merely looks like one is
    content.
    """

    def __init__(self, body: BinaryIO, boundary: bytes, max_memory: int, max_header_bytes: int):
        self._body = body
        self._delimiter = b"\n--" + boundary
        # A virtual line end in front lets a delimiter on the very first line match too.
        self._buf = bytearray(b"\r\n")
        self._eof = False
        self._memory = 0
        self._max_memory = max_memory
        self._max_header_bytes = max_header_bytes

    def parts(self, max_fields: int) -> list[FormPart]:
        parts: list[FormPart] = []
        closed = self._next_delimiter(None)
        while not closed:
            if len(parts) >= max_fields:
                raise FormError(f"multipart form has more than {max_fields} parts")
            headers = self._read_headers()
            content: list[bytes] = []
            closed = self._next_delimiter(content)
            parts.append(_make_part(headers, b"".join(content)))
        return parts

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._body.read(_CHUNK_SIZE)
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def _byte_at(self, index: int) -> int | None:
        while index >= len(self._buf):
            if not self._fill():
                return None
        return self._buf[index]

    def _take(self, count: int, sink: list[bytes] | None) -> None:
        if sink is not None and count:
            self._memory += count
            if self._memory > self._max_memory:
                raise FormError(f"multipart form values exceed {self._max_memory} bytes")
            sink.append(bytes(self._buf[:count]))
        del self._buf[:count]

    def _next_delimiter(self, sink: list[bytes] | None) -> bool:
        """Move content up to the next delimiter into ``sink``; True if it closes the body."""
        start = 0
        while True:
            found = self._buf.find(self._delimiter, start)
            if found < 0:
                # Keep enough to recognise a delimiter (and its CR) split across reads.
                self._take(max(0, len(self._buf) - len(self._delimiter)), sink)
                if not self._fill():
                    raise FormError("multipart body has no closing boundary delimiter")
                start = 0
                continue
            line = self._delimiter_line(found + len(self._delimiter))
            if line is None:
                start = found + 1
                continue
            end, closing = line
            content_end = found - 1 if found and self._buf[found - 1] == 0x0D else found
            self._take(content_end, sink)
            del self._buf[: end - content_end]
            return closing

    def _delimiter_line(self, index: int) -> tuple[int, bool] | None:
        """Given the index just after ``--boundary``: (end of its line, closing?) or None."""
        closing = self._byte_at(index) == 0x2D and self._byte_at(index + 1) == 0x2D
        pos = index + 2 if closing else index
        byte = self._byte_at(pos)
        while byte in (0x20, 0x09):
            pos += 1
            if pos - index > self._max_header_bytes:
                raise FormError("multipart boundary line is too long")
            byte = self._byte_at(pos)
        if byte is None:
            return (pos, True) if closing else None
        if byte == 0x0A:
            return pos + 1, closing
        if byte == 0x0D and self._byte_at(pos + 1) == 0x0A:
            return pos + 2, closing
        return None

    def _read_headers(self) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        used = 0
        while True:
            newline = self._buf.find(b"\n")
            while newline < 0:
                if used + len(self._buf) > self._max_header_bytes:
                    break
                searched = len(self._buf)
                if not self._fill():
                    raise FormError("multipart body ends inside part headers")
                newline = self._buf.find(b"\n", searched)
            used += newline + 1
            if newline < 0 or used > self._max_header_bytes:
                raise FormError(f"multipart part headers exceed {self._max_header_bytes} bytes")
            line = bytes(self._buf[:newline]).removesuffix(b"\r")
            del self._buf[: newline + 1]
            if not line:
                return headers
            if line[:1] in (b" ", b"\t") and headers:
                # Obsolete line folding: a continuation of the previous header's value.
                name, value = headers[-1]
                headers[-1] = (name, value + b" " + line.strip(b" \t"))
                continue
            name, colon, value = line.partition(b":")
            if not colon or _TOKEN.fullmatch(name) is None:
                raise FormError(f"malformed multipart part header {line[:100]!r}")
            headers.append((name.lower(), value.strip(b" \t")))


def _make_part(headers: list[tuple[bytes, bytes]], raw: bytes) -> FormPart:
    found = dict(reversed(headers))  # the first occurrence of a header wins
    name = b""
    filename = None
    disposition = found.get(b"content-disposition")
    if disposition is not None:
        kind, params = parse_content_type(disposition)
        if kind == b"form-data":
            name = params.get(b"name", b"")
            filename = params.get(b"filename")
    return FormPart(
        name=name,
        filename=filename,
        content_type=found.get(b"content-type"),
        headers=headers,
        value=_decode_transfer(found.get(b"content-transfer-encoding", b""), raw),
    )


def _decode_transfer(encoding: bytes, raw: bytes) -> bytes:
    # RFC 7578 deprecates Content-Transfer-Encoding, but Twisted's email-based parser
    # decodes these two, so ported applications may rely on it.
    encoding = encoding.strip().lower()
    if encoding == b"base64":
        try:
            return binascii.a2b_base64(raw)
        except binascii.Error as exc:
            raise FormError(f"multipart part has invalid base64 content: {exc}") from None
    if encoding == b"quoted-printable":
        return binascii.a2b_qp(raw)
    return raw


def parse_cookies(values: list[bytes]) -> dict[bytes, bytes]:
    """Parse all Cookie header values into Twisted's ``request.received_cookies``.

    Each header is split on b";" and each piece stripped and split on its first b"=";
    pieces without "=" are skipped. Names and values are otherwise kept raw, as Twisted
    does: no unquoting (b'"v"' stays quoted), no %-decoding, and b"=v" gives name b"".
    A later cookie with the same name replaces an earlier one.
    """
    cookies: dict[bytes, bytes] = {}
    for header in values:
        for piece in header.split(b";"):
            name, equals, value = piece.strip().partition(b"=")
            if equals:
                cookies[name] = value
    return cookies


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def format_set_cookie(
    k: bytes | str,
    v: bytes | str,
    expires: bytes | str | None = None,
    domain: bytes | str | None = None,
    path: bytes | str | None = None,
    max_age: int | bytes | str | None = None,
    comment: bytes | str | None = None,
    secure: bool | None = None,
    httpOnly: bool = False,
    sameSite: bytes | str | None = None,
) -> bytes:
    """Build one Set-Cookie header value with Twisted ``Request.addCookie`` semantics.

    Strings are encoded as UTF-8. Output order is name=value, Expires, Domain, Path,
    Max-Age, Comment, Secure, HttpOnly, SameSite (lowercased, as Twisted writes it);
    ``expires`` is written verbatim. Unlike Twisted, which only folds line breaks,
    unsafe input raises ValueError: a name that is not an HTTP token, a value with
    control characters, whitespace, b"," or b";", an attribute with CR, LF, NUL or
    b";", or a sameSite other than lax/strict/none (Twisted also refuses "none").
    """
    name = _as_bytes(k)
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(f"invalid cookie name {name!r}")
    value = _as_bytes(v)
    if _BAD_COOKIE_VALUE.search(value):
        raise ValueError(f"cookie {name!r}: invalid value {value!r}")
    if isinstance(max_age, int):
        max_age = str(max_age)
    pieces = [name + b"=" + value]
    for label, attr in (
        (b"Expires", expires),
        (b"Domain", domain),
        (b"Path", path),
        (b"Max-Age", max_age),
        (b"Comment", comment),
    ):
        if attr is None:
            continue
        raw = _as_bytes(attr)
        if _BAD_COOKIE_ATTR.search(raw):
            raise ValueError(f"cookie {name!r}: invalid {label.decode()} {raw!r}")
        pieces.append(label + b"=" + raw)
    if secure:
        pieces.append(b"Secure")
    if httpOnly:
        pieces.append(b"HttpOnly")
    if sameSite:
        same_site = _as_bytes(sameSite).lower()
        if same_site not in _SAME_SITE:
            raise ValueError(f"cookie {name!r}: invalid SameSite {same_site!r}")
        pieces.append(b"SameSite=" + same_site)
    return b"; ".join(pieces)


def parse_basic_auth(value: bytes | None) -> tuple[bytes, bytes] | None:
    """Return (user, password) from an ``Authorization: Basic`` header value, else None.

    None for a missing header, another scheme, anything but exactly "scheme credentials",
    invalid base64 or decoded credentials without b":". The password is everything after
    the first b":". Twisted's getUser/getPassword report b"" for the None cases.
    """
    if not value:
        return None
    words = value.split()
    if len(words) != 2 or words[0].lower() != b"basic":
        return None
    try:
        decoded = binascii.a2b_base64(words[1], strict_mode=True)
    except binascii.Error:
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    return user, password
