"""An application's response header lists, parsed once: the WSGI and ASGI containers' cache.

An application tends to answer with a few header lists over and over; each is checked and
turned into wire pairs the first time, then found by value (the list as a tuple).  Lists
that cannot be hashed, and bad lists, are parsed (and refused) every time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from hive.http_headers import Headers

__all__ = ["HeaderLists"]

#: Wire pairs and the Content-Length, apart from them.
Parsed = tuple[list[tuple[bytes, bytes]], int | None]

CACHE_LIMIT: Final = 512


class HeaderLists:
    """``parse`` (a container's own checks) behind a bounded cache, giving Headers."""

    __slots__ = ("_cache", "_parse")

    def __init__(self, parse: Callable[[object], Parsed]) -> None:
        self._parse = parse
        self._cache: dict[tuple[Any, ...], Parsed] = {}

    def __call__(self, headers: object) -> tuple[Headers, int | None]:
        """The list as Headers, and its Content-Length; the parser's errors for a bad one."""
        if type(headers) is list:
            try:
                key = tuple(headers)
                parsed = self._cache.get(key)
            except TypeError:  # something unhashable in the list: parsed below
                parsed = None
            else:
                if parsed is None:
                    parsed = self._parse(headers)
                    if len(self._cache) >= CACHE_LIMIT:
                        self._cache.clear()
                    self._cache[key] = parsed
            if parsed is not None:
                return Headers._from_pairs(parsed[0]), parsed[1]
        pairs, length = self._parse(headers)
        return Headers._from_pairs(pairs), length
