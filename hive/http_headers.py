"""HTTP header storage with the API of ``twisted.web.http_headers.Headers``.

Names are case-insensitive. Names and values may be given as bytes or str: a str
name is encoded as ISO-8859-1 and a str value as UTF-8. ``getRawHeaders`` called
with a str name returns the values decoded as UTF-8; with a bytes name, bytes.

Unlike Twisted, which silently turns line breaks into spaces, hive refuses to
store a value containing CR, LF or NUL, or a name that is not an RFC 9110 token:
``ValueError`` is raised, naming the header, and nothing is stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Final, TypeVar, overload

from mypy_extensions import mypyc_attr

_T = TypeVar("_T")

# Three arms because Mapping is invariant in its key type.
_RawHeaders = (
    Mapping[bytes, Sequence[bytes | str]]
    | Mapping[str, Sequence[bytes | str]]
    | Mapping[bytes | str, Sequence[bytes | str]]
)

_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# Names whose usual spelling is not plain dash-capitalisation (Twisted's list, and
# WebSocket's).
_SPECIAL_NAMES: Final[dict[bytes, bytes]] = {
    b"content-md5": b"Content-MD5",
    b"dnt": b"DNT",
    b"etag": b"ETag",
    b"p3p": b"P3P",
    # RFC 6455's spelling.
    b"sec-websocket-accept": b"Sec-WebSocket-Accept",
    b"sec-websocket-extensions": b"Sec-WebSocket-Extensions",
    b"sec-websocket-key": b"Sec-WebSocket-Key",
    b"sec-websocket-protocol": b"Sec-WebSocket-Protocol",
    b"sec-websocket-version": b"Sec-WebSocket-Version",
    b"te": b"TE",
    b"www-authenticate": b"WWW-Authenticate",
    b"x-xss-protection": b"X-XSS-Protection",
}

# Bounded because applications may echo client-chosen names into responses.
_CANONICAL_CACHE_LIMIT: Final = 4096
_canonical_cache: dict[bytes, bytes] = dict(_SPECIAL_NAMES)


def _canonical_name(lower: bytes) -> bytes:
    """The wire spelling of a lowercased header name, e.g. b"Content-Type"."""
    name = _canonical_cache.get(lower)
    if name is None:
        name = b"-".join([part.capitalize() for part in lower.split(b"-")])
        if len(_canonical_cache) < _CANONICAL_CACHE_LIMIT:
            _canonical_cache[lower] = name
    return name


def _lookup_key(name: bytes | str) -> bytes:
    if isinstance(name, str):
        return name.encode("iso-8859-1").lower()
    return name.lower()


# Names already checked, to their lowercase form: the same few names are set on every
# response, and the token check is the costly part.  Bounded, as names may come from clients.
_checked_names: dict[bytes, bytes] = {}


def _checked_name(name: bytes | str) -> bytes:
    if type(name) is bytes:
        known = _checked_names.get(name)
        if known is not None:
            return known
    if isinstance(name, str):
        try:
            raw = name.encode("iso-8859-1")
        except UnicodeEncodeError:
            raise ValueError(f"header name {name!r} is not an RFC 9110 token") from None
    elif isinstance(name, bytes):
        raw = name
    else:
        raise TypeError(f"header name must be bytes or str, not {type(name).__name__}")
    if _TOKEN.fullmatch(raw) is None:
        raise ValueError(f"header name {name!r} is not an RFC 9110 token")
    lower = raw.lower()
    if type(name) is bytes and len(_checked_names) < _CANONICAL_CACHE_LIMIT:
        _checked_names[name] = lower
    return lower


def _checked_value(name: bytes | str, value: bytes | str) -> bytes:
    if isinstance(value, str):
        raw = value.encode("utf-8")
    elif isinstance(value, bytes):
        raw = value
    else:
        raise TypeError(
            f"value of header {name!r} must be bytes or str, not {type(value).__name__}"
        )
    if b"\r" in raw or b"\n" in raw or b"\x00" in raw:
        raise ValueError(f"value of header {name!r} contains CR, LF or NUL: {raw!r}")
    return raw


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled (hive._compiled); subclassed
class Headers:
    """A case-insensitive multi-map of HTTP header names to lists of values."""

    __slots__ = ("_raw",)

    def __init__(self, rawHeaders: _RawHeaders | None = None) -> None:
        self._raw: dict[bytes, list[bytes]] = {}
        if rawHeaders is not None:
            for name, values in rawHeaders.items():
                self.setRawHeaders(name, values)

    @classmethod
    def _from_pairs(cls, pairs: list[tuple[bytes, bytes]]) -> Headers:
        """Build from parser output: names already lowercased, nothing is checked."""
        raw: dict[bytes, list[bytes]] = {}
        for name, value in pairs:
            values = raw.get(name)
            if values is None:
                raw[name] = [value]
            else:
                values.append(value)
        headers = cls()
        headers._raw = raw
        return headers

    def _wire_items(self) -> list[tuple[bytes, bytes]]:
        """(canonical name, value) pairs in insertion order, for serialising."""
        items: list[tuple[bytes, bytes]] = []
        for lower, values in self._raw.items():
            name = _canonical_name(lower)
            for value in values:
                items.append((name, value))
        return items

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._raw!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._raw == other._raw
        return NotImplemented

    def copy(self) -> Headers:
        """An independent copy with the same headers."""
        headers = type(self)()
        headers._raw = {name: list(values) for name, values in self._raw.items()}
        return headers

    def hasHeader(self, name: bytes | str) -> bool:
        """Whether a header with this name is present."""
        return _lookup_key(name) in self._raw

    def removeHeader(self, name: bytes | str) -> None:
        """Remove every value of the named header; absent names are ignored."""
        self._raw.pop(_lookup_key(name), None)

    def setRawHeaders(self, name: bytes | str, values: Sequence[bytes | str]) -> None:
        """Replace all values of the named header.

        Raises ``TypeError`` for wrong types (including a bare bytes or str given as
        ``values``) and ``ValueError`` for a bad name or value; nothing is changed then.
        """
        if type(values) is not list and (
            isinstance(values, (bytes, str)) or not isinstance(values, Sequence)
        ):
            raise TypeError(
                f"values of header {name!r} must be a sequence of bytes or str, "
                f"not {type(values).__name__}"
            )
        key = _checked_name(name)
        self._raw[key] = [_checked_value(name, value) for value in values]

    def addRawHeader(self, name: bytes | str, value: bytes | str) -> None:
        """Append one value to the named header. Raises like ``setRawHeaders``."""
        key = _checked_name(name)
        checked = _checked_value(name, value)
        values = self._raw.get(key)
        if values is None:
            self._raw[key] = [checked]
        else:
            values.append(checked)

    @overload
    def getRawHeaders(self, name: bytes) -> list[bytes] | None: ...
    @overload
    def getRawHeaders(self, name: bytes, default: _T) -> list[bytes] | _T: ...
    @overload
    def getRawHeaders(self, name: str) -> list[str] | None: ...
    @overload
    def getRawHeaders(self, name: str, default: _T) -> list[str] | _T: ...

    def getRawHeaders(self, name: bytes | str, default: object = None) -> object:
        """A new list of the named header's values, or ``default`` if it has none.

        With a str name the values are decoded as UTF-8 (``UnicodeDecodeError`` if
        they are not); with a bytes name they are returned as bytes.
        """
        values = self._raw.get(_lookup_key(name))
        if not values:
            return default
        if isinstance(name, str):
            return [value.decode("utf-8") for value in values]
        return list(values)

    def getAllRawHeaders(self) -> Iterator[tuple[bytes, list[bytes]]]:
        """Yield (canonical name, new list of values) for each header, as bytes."""
        for lower, values in self._raw.items():
            yield _canonical_name(lower), list(values)


__all__ = ["Headers"]
