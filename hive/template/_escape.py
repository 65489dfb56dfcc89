"""Escaping for text, attribute values, comments and CDATA: Twisted's rules, byte for byte.

Text gets ``&``, ``<`` and ``>`` as entities; attribute values also ``"`` (they are always
written in double quotes).  Escaping replaces each character on its own, so escaping a
concatenation is the concatenation of the escaped parts: the flattener relies on that to
write pre-escaped template text inside attributes.
"""

from __future__ import annotations

import re


def escape_content(data: bytes | str) -> bytes:
    """Text as element content: ``&<>`` become entities; str is encoded as UTF-8."""
    if isinstance(data, str):
        return data.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode()
    return data.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")


def escape_attribute(data: bytes) -> bytes:
    """Bytes inside a double-quoted attribute value: ``&<>"`` become entities."""
    return (
        data.replace(b"&", b"&amp;")
        .replace(b"<", b"&lt;")
        .replace(b">", b"&gt;")
        .replace(b'"', b"&quot;")
    )


def escape_attribute_times(data: bytes, times: int) -> bytes:
    """``data`` escaped for ``times`` nested attribute levels (a tag inside an attribute
    inside an attribute: what Twisted writes for such trees)."""
    for _ in range(times):
        data = escape_attribute(data)
    return data


def escaped_cdata(data: bytes | str) -> bytes:
    """CDATA content: ``]]>`` is split across two sections."""
    if isinstance(data, str):
        data = data.encode()
    return data.replace(b"]]>", b"]]]]><![CDATA[>")


def escaped_comment(data: bytes | str) -> bytes:
    """Comment content that cannot end the comment early.

    Twisted's rules (``-->`` becomes ``--&gt;``, a trailing ``-`` gets a space), and the
    other ways HTML5 ends a comment, which Twisted lets through: ``--!>``, and content
    that starts with ``>`` or ``->`` (``<!-->`` is a whole comment to a browser).
    """
    if isinstance(data, str):
        data = data.encode()
    data = data.replace(b"-->", b"--&gt;").replace(b"--!>", b"--!&gt;")
    if data[:1] == b">":
        data = b"&gt;" + data[1:]
    elif data[:2] == b"->":
        data = b"-&gt;" + data[2:]
    if data[-1:] == b"-":
        data += b" "
    return data


_NAME_CHARACTERS = re.compile(r"[^\s\"'>/=\x00-\x1f\x7f]+\Z")
_checked_names: set[bytes] = set()


def checked_name(name: bytes) -> bytes:
    """``name`` if it can be written as an element or attribute name; else ValueError.

    Twisted writes names as they are, so a name made from user data could carry markup
    (``'onclick="..." x'``); hive refuses whitespace, quotes, ``>``, ``/``, ``=`` and
    control characters in names.  Names seen before are not checked again.
    """
    if name in _checked_names:
        return name
    if not _NAME_CHARACTERS.match(name.decode("latin-1")):
        raise ValueError(f"{name!r} cannot be an element or attribute name")
    if len(_checked_names) < 4096:
        _checked_names.add(name)
    return name
