"""The document model (Twisted's stan): Tag, slot, Comment, CDATA, CharRef and ``tags``.

A Tag made from a loaded template is *lazy*.  The loader freezes its template once into
`Compiled` nodes, private and never handed out, each with its serialization worked out
in advance (see hive.template._compile); what a renderer receives, or ``clone()`` makes,
is a Tag that points at one of them and has no children or attributes of its own.  The
flattener writes such a tag from the precomputed program: only slots and renderers cost
anything.  The first time code asks for ``children`` or ``attributes`` (``tag("more")``
does), the tag takes a copy of them (lazy clones of the frozen children) and from then
on is an ordinary tag.  ``fillSlots`` and ``render`` leave it lazy.

Nothing here recurses over a tree: ``clone()`` and ``repr()`` keep to bounded stacks, so
a tree ten thousand levels deep is as good as a flat one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, Protocol, TypeAlias, Union


class Renderable(Protocol):
    """What the flattener calls an IRenderable: an object with a template and renderers."""

    def lookupRenderMethod(self, name: str) -> Callable[[Any, Tag], Any]: ...

    def render(self, request: Any) -> Any: ...


#: What may appear in a tree: text, tags, slots, markup objects, iterables of these,
#: awaitables of these, and renderables.  Not numbers or None: flattening them is an error.
Flattenable: TypeAlias = Union[
    str,
    bytes,
    "Tag",
    "slot",
    "CDATA",
    "Comment",
    "CharRef",
    Iterable[Any],
    Awaitable[Any],
    Renderable,
]


class slot:
    """Marker for markup insertion in a template: filled with ``Tag.fillSlots(name=...)``."""

    __slots__ = ("children", "columnNumber", "default", "filename", "lineNumber", "name")

    def __init__(
        self,
        name: str,
        default: Flattenable | None = None,
        filename: str | None = None,
        lineNumber: int | None = None,
        columnNumber: int | None = None,
    ) -> None:
        self.name = name
        #: What the template had inside the slot's element; not rendered (as in Twisted).
        self.children: list[Tag] = []
        #: Rendered when the slot is not filled; None: an unfilled slot is an error.
        self.default = default
        self.filename = filename
        self.lineNumber = lineNumber
        self.columnNumber = columnNumber

    def __repr__(self) -> str:
        return (
            f"slot(name={self.name!r}, children={self.children!r}, default={self.default!r},"
            f" filename={self.filename!r}, lineNumber={self.lineNumber!r},"
            f" columnNumber={self.columnNumber!r})"
        )


class CDATA:
    """A ``<![CDATA[...]]>`` block."""

    __slots__ = ("data",)

    def __init__(self, data: str) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"CDATA({self.data!r})"


class Comment:
    """A ``<!-- ... -->`` comment; ``-->`` in its data is written as ``--&gt;``."""

    __slots__ = ("data",)

    def __init__(self, data: str) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Comment({self.data!r})"


class CharRef:
    """A numeric character reference (``&#8364;``), so a character can be written in ASCII."""

    __slots__ = ("ordinal",)

    def __init__(self, ordinal: int) -> None:
        self.ordinal = ordinal

    def __repr__(self) -> str:
        return f"CharRef({self.ordinal})"


class RawText(str):
    """The text of a ``<script>`` or ``<style>`` element in an HTML template: written as it
    is, since HTML reads no entities there.  Only the HTML loaders make these, from the
    template's own text; data put into a page is always escaped."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"RawText({str.__repr__(self)})"


class Compiled:
    """A tag of a loaded template, frozen: the loader's own copy, never handed out.

    ``ops`` is the program that writes this tag without its render directive (see
    hive.template._compile): pre-escaped bytes and the dynamic points between them.
    Children and attribute values that are tags are Compiled too.
    """

    __slots__ = (
        "attributes",
        "children",
        "columnNumber",
        "filename",
        "fill",
        "lineNumber",
        "ops",
        "render",
        "tagName",
    )

    def __init__(
        self,
        tagName: str,
        attributes: dict[bytes | str, Any],
        children: list[Any],
        render: str | None,
        filename: str | None,
        lineNumber: int | None,
        columnNumber: int | None,
    ) -> None:
        self.tagName = tagName
        self.attributes = attributes
        self.children = children
        self.render = render
        self.filename = filename
        self.lineNumber = lineNumber
        self.columnNumber = columnNumber
        #: Worked out when a clone of this tag is first flattened (_compile.program).
        self.ops: tuple[Any, ...] | None = None
        #: For a program of text and slots only: writes a clone whose slots hold text
        #: in one step, ``fill(slot values, enclosing slot values)`` (_compile._filler).
        self.fill: Callable[[dict[str, Any] | None, list[dict[str, Any]]], bytes | None] | None
        self.fill = None

    def __repr__(self) -> str:
        return _tag_repr(self.tagName, self.attributes, self.children)


_new = object.__new__


def lazy(proto: Compiled, render: str | None) -> Tag:
    """A Tag that is a clone of ``proto``, with ``render`` as its render directive."""
    tag: Tag = _new(Tag)
    tag._tagName = proto.tagName
    tag._attributes = None
    tag._children = None
    tag.render = render
    tag.slotData = None
    tag.filename = proto.filename
    tag.lineNumber = proto.lineNumber
    tag.columnNumber = proto.columnNumber
    tag._proto = proto
    return tag


def thaw(value: Any) -> Any:
    """What a frozen child or attribute value is when handed out: Compiled as a lazy Tag."""
    return lazy(value, value.render) if type(value) is Compiled else value


class Tag:
    """An element: a name, attributes, children, an optional renderer name and slot values.

    ``tags.div(...)`` makes one; calling a tag adds children and attributes and returns it,
    so trees read as nested calls: ``tags.ul(tags.li("one"), class_="list")``.
    """

    __slots__ = (
        "_attributes",
        "_children",
        "_proto",
        "_tagName",
        "columnNumber",
        "filename",
        "lineNumber",
        "render",
        "slotData",
    )

    _tagName: bytes | str
    _attributes: dict[bytes | str, Any] | None
    _children: list[Any] | None
    #: The frozen template tag this one is a still-unchanged clone of, or None.
    _proto: Compiled | None
    #: The name of the renderer to call for this tag (``t:render``), or None.
    render: str | None
    #: Values for slots under this tag (``fillSlots``), or None.
    slotData: dict[str, Any] | None
    filename: str | None
    lineNumber: int | None
    columnNumber: int | None

    def __init__(
        self,
        tagName: bytes | str,
        attributes: dict[bytes | str, Any] | None = None,
        children: list[Any] | None = None,
        render: str | None = None,
        filename: str | None = None,
        lineNumber: int | None = None,
        columnNumber: int | None = None,
    ) -> None:
        self._tagName = tagName
        self._attributes = {} if attributes is None else attributes
        self._children = [] if children is None else children
        self._proto = None
        self.render = render
        self.slotData = None
        self.filename = filename
        self.lineNumber = lineNumber
        self.columnNumber = columnNumber

    # -- the parts that make a lazy tag its own ---------------------------------------------

    def _own(self) -> None:
        """Take a copy of the frozen children and attributes: this tag may change now."""
        proto = self._proto
        if proto is not None:
            self._proto = None
            self._attributes = {key: thaw(value) for key, value in proto.attributes.items()}
            self._children = [thaw(child) for child in proto.children]

    @property
    def tagName(self) -> bytes | str:
        """The element's name; "" for a transparent tag (its children without markup)."""
        return self._tagName

    @tagName.setter
    def tagName(self, value: bytes | str) -> None:
        self._own()
        self._tagName = value

    @property
    def attributes(self) -> dict[bytes | str, Any]:
        """The attributes, name to flattenable value."""
        self._own()
        assert self._attributes is not None
        return self._attributes

    @attributes.setter
    def attributes(self, value: dict[bytes | str, Any]) -> None:
        self._own()
        self._attributes = value

    @property
    def children(self) -> list[Any]:
        """The contents."""
        self._own()
        assert self._children is not None
        return self._children

    @children.setter
    def children(self, value: list[Any]) -> None:
        self._own()
        self._children = value

    # -- Twisted's API -------------------------------------------------------------------------

    def fillSlots(self, **slots: Flattenable) -> Tag:
        """Give values to the slots under this tag; returns the tag, for
        ``return tag.fillSlots(...)``."""
        if self.slotData is None:
            self.slotData = slots
        else:
            self.slotData.update(slots)
        return self

    def __call__(self, *children: Flattenable, **kw: Flattenable) -> Tag:
        """Add children and set attributes: ``tag("text", tags.b("bold"), class_="x")``.

        A trailing underscore is dropped from a keyword (``class_`` sets ``class``);
        ``render="name"`` sets the render directive instead of an attribute.
        """
        self._own()
        assert self._children is not None and self._attributes is not None
        self._children.extend(children)
        for key, value in kw.items():
            if key.endswith("_"):
                key = key[:-1]
            if key == "render":
                if not isinstance(value, str):
                    raise TypeError(f'Value for "render" attribute must be str, got {value!r}')
                self.render = value
            else:
                self._attributes[key] = value
        return self

    def clone(self, deep: bool = True) -> Tag:
        """A copy of this tag: with copies of its child tags (``deep``), or sharing them.

        Attribute and slot values are copied either way; lists and tuples become lists.
        A lazy tag's clone is made in constant time, whatever the size of its template.
        """
        proto = self._proto
        if proto is not None:
            new: Tag = _new(Tag)
            new._tagName = self._tagName
            new._attributes = None
            new._children = None
            new.render = self.render
            new.slotData = _clone_tree(self.slotData) if self.slotData else None
            new.filename = self.filename
            new.lineNumber = self.lineNumber
            new.columnNumber = self.columnNumber
            new._proto = proto
            return new
        if deep:
            cloned: Tag = _clone_tree(self)
            return cloned
        assert self._children is not None and self._attributes is not None
        new = Tag(
            self._tagName,
            _clone_tree(self._attributes),
            self._children[:],
            self.render,
            self.filename,
            self.lineNumber,
            self.columnNumber,
        )
        if self.slotData:
            new.slotData = _clone_tree(self.slotData)
        return new

    def clear(self) -> Tag:
        """Remove every child; returns the tag."""
        self.children = []
        return self

    def __repr__(self) -> str:
        if self._proto is not None:
            return _tag_repr(self._tagName, self._proto.attributes, self._proto.children)
        assert self._attributes is not None and self._children is not None
        return _tag_repr(self._tagName, self._attributes, self._children)


def _clone_tree(root: Any) -> Any:
    """Twisted's deep ``Tag._clone``, with a work list instead of recursion.

    Tags, lists and tuples (which become lists) and dicts (the attributes and slot values
    being copied) are copied; objects with a ``clone`` method are asked for one; anything
    else is shared.
    """
    holder: list[Any] = [None]
    work: list[tuple[Any, Any, Any]] = [(root, holder, 0)]
    while work:
        source, target, key = work.pop()
        kind = type(source)
        if kind is Tag or isinstance(source, Tag):
            if source._proto is not None:
                target[key] = source.clone()
                continue
            children = source._children
            attributes = source._attributes
            new = Tag(
                source._tagName,
                dict.fromkeys(attributes),
                [None] * len(children),
                source.render,
                source.filename,
                source.lineNumber,
                source.columnNumber,
            )
            target[key] = new
            work.extend((child, new._children, index) for index, child in enumerate(children))
            work.extend((value, new._attributes, name) for name, value in attributes.items())
            if source.slotData:
                new.slotData = dict.fromkeys(source.slotData)
                work.extend((value, new.slotData, name) for name, value in source.slotData.items())
        elif kind is list or kind is tuple:
            copy: list[Any] = [None] * len(source)
            target[key] = copy
            work.extend((item, copy, index) for index, item in enumerate(source))
        elif kind is dict:
            mapping = dict.fromkeys(source)
            target[key] = mapping
            work.extend((value, mapping, name) for name, value in source.items())
        elif hasattr(source, "clone"):
            target[key] = source.clone(True)
        else:
            target[key] = source
    return holder[0]


_REPR_DEPTH_LIMIT: Final = 12
_repr_depth = 0


def _tag_repr(name: bytes | str, attributes: dict[Any, Any], children: list[Any]) -> str:
    """Twisted's ``Tag('div', attributes=..., children=[...])``, cut off when deeply nested."""
    global _repr_depth
    if _repr_depth >= _REPR_DEPTH_LIMIT:
        return f"Tag({name!r}, ...)"
    _repr_depth += 1
    try:
        text = ""
        if attributes:
            text += f", attributes={attributes!r}"
        if children:
            text += f", children={children!r}"
        return f"Tag({name!r}{text})"
    finally:
        _repr_depth -= 1


#: Names ``tags`` knows: Twisted's list, and the HTML elements it lacks.
VALID_HTML_TAG_NAMES: Final = frozenset(
    {
        "a",
        "abbr",
        "acronym",
        "address",
        "applet",
        "area",
        "article",
        "aside",
        "audio",
        "b",
        "base",
        "basefont",
        "bdi",
        "bdo",
        "big",
        "blockquote",
        "body",
        "br",
        "button",
        "canvas",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "command",
        "data",
        "datalist",
        "dd",
        "del",
        "details",
        "dfn",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "em",
        "embed",
        "fieldset",
        "figcaption",
        "figure",
        "font",
        "footer",
        "form",
        "frame",
        "frameset",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "header",
        "hgroup",
        "hr",
        "html",
        "i",
        "iframe",
        "img",
        "input",
        "ins",
        "isindex",
        "keygen",
        "kbd",
        "label",
        "legend",
        "li",
        "link",
        "main",
        "map",
        "mark",
        "menu",
        "meta",
        "meter",
        "nav",
        "noframes",
        "noscript",
        "object",
        "ol",
        "optgroup",
        "option",
        "output",
        "p",
        "param",
        "picture",
        "pre",
        "progress",
        "q",
        "rp",
        "rt",
        "ruby",
        "s",
        "samp",
        "script",
        "search",
        "section",
        "select",
        "slot",
        "small",
        "source",
        "span",
        "strike",
        "strong",
        "style",
        "sub",
        "summary",
        "sup",
        "svg",
        "table",
        "tbody",
        "td",
        "template",
        "textarea",
        "tfoot",
        "th",
        "thead",
        "time",
        "title",
        "tr",
        "track",
        "tt",
        "u",
        "ul",
        "var",
        "video",
        "wbr",
    }
)

#: Elements written as ``<br />`` when they have no children: HTML's void elements (Twisted's
#: list, with ``wbr`` where it has the misspelt ``wbs``).
voidElements: Final = frozenset(
    {
        "img",
        "br",
        "hr",
        "base",
        "meta",
        "link",
        "param",
        "area",
        "input",
        "col",
        "basefont",
        "isindex",
        "frame",
        "command",
        "embed",
        "keygen",
        "source",
        "track",
        "wbr",
    }
)


class _TagFactory:
    """``tags.div`` is ``Tag("div")``; ``tags.del_`` is ``Tag("del")``; ``tags.transparent``
    is ``Tag("")``.  An unknown name is an AttributeError, so that typos are caught."""

    def __getattr__(self, tagName: str) -> Tag:
        if tagName == "transparent":
            return Tag("")
        tagName = tagName.rstrip("_")
        if tagName not in VALID_HTML_TAG_NAMES:
            raise AttributeError(f"unknown tag {tagName!r}")
        return Tag(tagName)


tags: Final = _TagFactory()
