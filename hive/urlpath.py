"""``URLPath``, with the API of ``twisted.python.urlpath.URLPath``.

Attributes are bytes; ``str()`` gives the URL as str. Non-ASCII bytes and NUL in
input are percent-encoded, as Twisted does. Segments given to ``child`` and
``sibling`` are one path segment each: characters that would end or split a
segment ("/", "?", "#", spaces, ...) are percent-encoded.

`site_prefix` (hive's own) is the path the site's root is at for the client, behind a
proxy that serves it under a prefix and strips it.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote, unquote_to_bytes, urljoin, urlsplit, urlunsplit

_SEGMENT_SAFE = "!$&'()*+,;=:@%~"
# Twisted's rule for input: escape only NUL and non-ASCII, keep everything else as given.
_ASCII_SAFE = "".join(map(chr, range(1, 128)))


class _HasPrePathURL(Protocol):
    def prePathURL(self) -> bytes: ...


class _HasSitePath(Protocol):
    sitepath: list[bytes]


def site_prefix(request: _HasSitePath) -> bytes:
    """Where the site's root is for the client: ``b"/app"`` behind a proxy serving it at
    /app/ (X-Forwarded-Prefix or ``--root-path``: the request's ``sitepath``), else b"".

    ``request.uri`` and ``request.path`` are what hive received; the client asked for
    ``site_prefix(request) + request.uri``.
    """
    return b"".join(b"/" + quote(part, safe="").encode("ascii") for part in request.sitepath)


def _encode_segment(segment: bytes) -> bytes:
    return quote(segment, safe=_SEGMENT_SAFE).encode("ascii")


class URLPath:
    """An absolute URL, split into scheme, netloc, path, query and fragment."""

    __slots__ = ("fragment", "netloc", "path", "query", "scheme")

    def __init__(
        self,
        scheme: bytes = b"",
        netloc: bytes = b"localhost",
        path: bytes = b"",
        query: bytes = b"",
        fragment: bytes = b"",
    ) -> None:
        self.scheme = scheme or b"http"
        self.netloc = netloc
        self.path = path or b"/"
        self.query = query
        self.fragment = fragment

    @classmethod
    def fromString(cls, url: str) -> URLPath:
        """Parse a str URL. Raises ``ValueError`` if ``url`` is not a str."""
        if not isinstance(url, str):
            raise ValueError("'url' must be a str")
        scheme, netloc, path, query, fragment = urlsplit(quote(url, safe=_ASCII_SAFE))
        return cls(
            scheme.encode("ascii"),
            netloc.encode("ascii"),
            path.encode("ascii"),
            query.encode("ascii"),
            fragment.encode("ascii"),
        )

    @classmethod
    def fromBytes(cls, url: bytes) -> URLPath:
        """Parse a bytes URL. Raises ``ValueError`` if ``url`` is not bytes."""
        if not isinstance(url, bytes):
            raise ValueError("'url' must be bytes")
        return cls.fromString(quote(url, safe=_ASCII_SAFE))

    @classmethod
    def fromRequest(cls, request: _HasPrePathURL) -> URLPath:
        """The URL of the resource being rendered: ``request.prePathURL()``."""
        return cls.fromBytes(request.prePathURL())

    def pathList(self, unquote: bool = False, copy: bool = True) -> list[bytes]:
        """The path split on "/", starting with b"" for the root; ``copy`` is ignored."""
        segments = self.path.split(b"/")
        if unquote:
            return [unquote_to_bytes(segment) for segment in segments]
        return segments

    def _with_path(self, path: bytes, keepQuery: bool) -> URLPath:
        return URLPath(self.scheme, self.netloc, path, self.query if keepQuery else b"")

    def sibling(self, path: bytes, keepQuery: bool = False) -> URLPath:
        """The URL of ``path`` in the same directory as this one."""
        segments = self.path.split(b"/")[:-1]
        segments.append(_encode_segment(path))
        return self._with_path(b"/".join(segments), keepQuery)

    def child(self, path: bytes, keepQuery: bool = False) -> URLPath:
        """The URL of ``path`` inside this one (a trailing "/" is not doubled)."""
        segments = self.path.split(b"/")
        if segments[-1] == b"":
            segments.pop()
        segments.append(_encode_segment(path))
        return self._with_path(b"/".join(segments), keepQuery)

    def parent(self, keepQuery: bool = False) -> URLPath:
        """The directory above this URL's directory: ``click("..")``."""
        return self._with_path(self.click(b"..").path, keepQuery)

    def here(self, keepQuery: bool = False) -> URLPath:
        """This URL's directory: ``click(".")``."""
        return self._with_path(self.click(b".").path, keepQuery)

    def click(self, st: bytes) -> URLPath:
        """Where a link with this href leads from here (RFC 3986 resolution)."""
        if not st:
            return URLPath(self.scheme, self.netloc, self.path, self.query, self.fragment)
        return URLPath.fromString(urljoin(str(self), quote(st, safe=_ASCII_SAFE)))

    def __str__(self) -> str:
        parts = (self.scheme, self.netloc, self.path, self.query, self.fragment)
        return urlunsplit([part.decode("latin-1") for part in parts])

    def __repr__(self) -> str:
        return (
            f"URLPath(scheme={self.scheme!r}, netloc={self.netloc!r}, path={self.path!r}, "
            f"query={self.query!r}, fragment={self.fragment!r})"
        )
