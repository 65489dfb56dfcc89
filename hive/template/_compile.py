"""Templates frozen once, written from precomputed programs.

A loader parses its template into Tags, then `freeze` copies them into `Compiled` nodes
that nothing outside hive.template ever sees.  Each Compiled tag gets, the first time a
lazy clone of it is flattened, a *program*: the tag's serialization as a tuple of
pre-escaped ``bytes`` (runs of static markup and text, joined) and the dynamic points
between them: slots, tags with a render directive, and `InAttribute` values (an
attribute whose value is not plain text).  A row like
``<tr><td><t:slot name="a"/></td><td><t:slot name="b"/></td></tr>`` becomes
``(b"<tr><td>", slot("a"), b"</td><td>", slot("b"), b"</td></tr>")``: writing it costs two
slot look-ups and three appends.

Programs assume they are written as element content.  A transparent tag's text takes the
escaping of where it lands (Twisted's rule), so the flattener writes a transparent tag
that is inside an attribute from its children instead.  Everything here walks trees with
explicit stacks: a template ten thousand levels deep compiles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hive.template._escape import (
    checked_name,
    escape_attribute,
    escape_content,
    escaped_cdata,
    escaped_comment,
)
from hive.template._tags import (
    CDATA,
    CharRef,
    Comment,
    Compiled,
    RawText,
    Tag,
    slot,
    thaw,
    voidElements,
)


class InAttribute:
    """A program's dynamic attribute value: flattened with attribute escaping."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"InAttribute({self.value!r})"


def freeze(nodes: list[Any]) -> list[Any]:
    """A parsed template's top-level nodes, with every Tag frozen and handed out lazily."""
    return [thaw(_freeze(node)) if isinstance(node, Tag) else node for node in nodes]


def _freeze(root: Tag) -> Compiled:
    """A Compiled copy of ``root`` and its descendant tags (children, attribute values)."""
    made: dict[int, Compiled] = {}
    work: list[tuple[Tag, bool]] = [(root, False)]
    while work:
        tag, ready = work.pop()
        children = tag.children
        attributes = tag.attributes
        if not ready:
            work.append((tag, True))
            work.extend((child, False) for child in children if isinstance(child, Tag))
            work.extend((value, False) for value in attributes.values() if isinstance(value, Tag))
            continue
        name = tag.tagName
        made[id(tag)] = Compiled(
            name if isinstance(name, str) else name.decode("ascii"),
            {
                key: made.pop(id(value)) if isinstance(value, Tag) else value
                for key, value in attributes.items()
            },
            [made.pop(id(child)) if isinstance(child, Tag) else child for child in children],
            tag.render,
            tag.filename,
            tag.lineNumber,
            tag.columnNumber,
        )
    return made[id(root)]


class _Close:
    """Where a tag's closing markup goes in the program being built."""

    __slots__ = ("markup",)

    def __init__(self, markup: bytes) -> None:
        self.markup = markup


def program(tag: Compiled) -> tuple[Any, ...]:
    """The ops that write ``tag`` as content, leaving out its own render directive."""
    ops: list[Any] = []
    static: list[bytes] = []

    def dynamic(op: Any) -> None:
        if static:
            ops.append(b"".join(static))
            static.clear()
        ops.append(op)

    work: list[Any] = [tag]
    first = True
    while work:
        item = work.pop()
        kind = type(item)
        if kind is str:
            static.append(escape_content(item))
        elif kind is Compiled:
            if item.render is not None and not first:
                dynamic(item)
                continue
            first = False
            name = item.tagName
            if not name:
                work.extend(reversed(item.children))
                continue
            encoded = checked_name(name.encode("ascii"))
            static.append(b"<" + encoded)
            for key, value in item.attributes.items():
                key_bytes = checked_name(key.encode("ascii") if isinstance(key, str) else key)
                if isinstance(value, str):
                    static.append(b' %s="%s"' % (key_bytes, escape_attribute(value.encode())))
                    continue
                static.append(b' %s="' % key_bytes)
                if _text_and_slots(value):
                    # A t:attr of text and slots (<t:attr name="href">/u/<t:slot .../>):
                    # part of the program, its text escaped as an attribute's now.
                    for part in value.children:
                        if type(part) is str:
                            static.append(escape_attribute(part.encode()))
                        else:
                            dynamic(InAttribute(part))
                else:
                    dynamic(InAttribute(value))
                static.append(b'"')
            if item.children or name not in voidElements:
                static.append(b">")
                work.append(_Close(b"</%s>" % encoded))
                work.extend(reversed(item.children))
            else:
                static.append(b" />")
        elif kind is _Close:
            static.append(item.markup)
        elif kind is RawText:
            static.append(item.encode())
        elif kind is Comment:
            static.append(b"<!--%s-->" % escaped_comment(item.data))
        elif kind is CDATA:
            static.append(b"<![CDATA[%s]]>" % escaped_cdata(item.data))
        elif kind is CharRef:
            static.append(b"&#%d;" % item.ordinal)
        else:
            # A slot, or anything else a loader left in the tree: flattened when written.
            dynamic(item)
    if static:
        ops.append(b"".join(static))
    return tuple(ops)


def _text_and_slots(value: Any) -> bool:
    """Whether an attribute value is a transparent tag of nothing but text and slots."""
    return (
        type(value) is Compiled
        and not value.tagName
        and value.render is None
        and all(type(part) is str or type(part) is slot for part in value.children)
    )


def compile_tag(tag: Compiled) -> tuple[Any, ...]:
    """Work out ``tag``'s program (and its one-step filler, when it has one) and keep them."""
    ops = program(tag)
    tag.fill = _filler(ops)
    tag.ops = ops
    return ops


#: Slots a generated filler takes at most; a tag with more is written from its program.
_FILLER_SLOTS = 64

Filler = Callable[[dict[str, Any] | None, list[dict[str, Any]]], bytes | None]


def _filler(ops: tuple[Any, ...]) -> Filler | None:
    """For a program of text and slots only (in content or attribute values): a function
    that writes the tag in one step when every slot holds text.

    It is generated, the way Jinja2 compiles templates: straight-line code that reads the
    tag's own slot values, escapes them and fills a %-format of the static text.  A slot
    filled further out, or a default, is looked up by `_fill`; a value that is not text
    makes it return None, and the flattener runs the program instead.
    """
    texts: list[str] = [""]  # the static text before each slot, and after the last
    markers: list[Any] = []
    quoted: list[bool] = []
    for op in ops:
        if type(op) is bytes:
            try:
                texts[-1] += op.decode()
            except UnicodeDecodeError:
                return None
            continue
        in_attribute = type(op) is InAttribute
        marker = op.value if in_attribute else op
        if type(marker) is not slot or not isinstance(marker.name, str):
            return None
        markers.append(marker)
        quoted.append(in_attribute)
        texts.append("")
    if not markers or len(markers) > _FILLER_SLOTS:
        return None
    count = range(len(markers))
    lines = ["def filler(own, outer):", "    try:"]
    lines += [f"        v{n} = own[{markers[n].name!r}]" for n in count]
    lines += ["    except (KeyError, TypeError):", "        return fill(own, outer)"]
    checks = " or ".join(f"type(v{n}) is not str" for n in count)
    lines += [f"    if {checks}:", "        return None"]
    for n in count:
        # Most text has nothing to escape: three "in" tests are cheaper than three calls.
        test = f'"&" in v{n} or "<" in v{n} or ">" in v{n}'
        lines += [
            f"    if {test}:",
            f'        v{n} = v{n}.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")',
        ]
        if quoted[n]:
            lines += [f"    if '\"' in v{n}:", f"        v{n} = v{n}.replace('\"', '&quot;')"]
    joined = "".join(f"{{t{n}}}{{v{n}}}" for n in count) + f"{{t{len(markers)}}}"
    lines += [f'    return f"{joined}".encode()']
    namespace: dict[str, Any] = {f"t{n}": text for n, text in enumerate(texts)}
    form = "".join(text.replace("%", "%%") + "%s" for text in texts[:-1]) + texts[-1].replace(
        "%", "%%"
    )

    def fill(own: dict[str, Any] | None, outer: list[dict[str, Any]]) -> bytes | None:
        return _fill(form, markers, quoted, own, outer)

    namespace["fill"] = fill
    exec(compile("\n".join(lines), "<hive.template filler>", "exec"), namespace)
    made: Filler = namespace["filler"]
    return made


def _fill(
    form: str,
    markers: list[Any],
    quoted: list[bool],
    own: dict[str, Any] | None,
    outer: list[dict[str, Any]],
) -> bytes | None:
    """The filler's slow way: each slot looked up in the tag's own values, then in the
    enclosing ones, then its default; None unless every value is text."""
    values: list[str] = []
    for marker, in_attribute in zip(markers, quoted, strict=True):
        name = marker.name
        if own is not None and name in own:
            value = own[name]
        else:
            for data in reversed(outer):
                if name in data:
                    value = data[name]
                    break
            else:
                value = marker.default
        if type(value) is not str:
            return None
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if in_attribute:
            value = value.replace('"', "&quot;")
        values.append(value)
    return (form % tuple(values)).encode()
