"""Template loaders: XML (Twisted's XMLString and XMLFile), HTML5 (HTMLString and HTMLFile,
hive's own, on the standard library's html.parser) and TagLoader.

The XML loaders read templates as Twisted does, through SAX with namespaces and without
external entities, and produce the same trees.  The HTML loaders read what editors and
browsers call HTML: void elements without end tags (``<br>``, ``<img src=x>``), boolean
attributes, entities such as ``&nbsp;``, ``<script>`` and ``<style>`` whose text is
written as it is, end tags that HTML lets authors leave out (``</li>``, ``</p>``,
``</td>``...), and ``<tag />`` read as an empty element.  The directives are the same:
``t:render``, ``t:slot``, ``t:attr``, ``t:transparent``, with the ``t:`` prefix, or another
prefix bound to the template namespace by an ``xmlns:`` attribute (which is dropped).  In
an HTML template ``<t:slot>`` has no content, and a ``t:attr`` right after a void element
(``<img><t:attr name="src">...</t:attr>``) belongs to it.

Each loader parses once and freezes the result (hive.template._compile): ``load()``
hands out the same lazy tags every time, and writing them costs only their dynamic
parts.
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from html.parser import HTMLParser
from typing import IO, Any, Final
from xml.sax import handler, make_parser
from xml.sax.xmlreader import AttributesNSImpl, Locator

from zope.interface import implementer

from hive.iweb import ITemplateLoader
from hive.template._compile import freeze
from hive.template._escape import checked_name
from hive.template._tags import CDATA, Comment, Flattenable, RawText, Tag, slot, voidElements

__all__ = [
    "TEMPLATE_NAMESPACE",
    "HTMLFile",
    "HTMLString",
    "TagLoader",
    "TemplateSyntaxError",
    "XMLFile",
    "XMLString",
]

#: The namespace of the template directives; its declarations are dropped from the output.
TEMPLATE_NAMESPACE: Final = "http://twistedmatrix.com/ns/twisted.web.template/0.1"

_XML_NAMESPACE: Final = "http://www.w3.org/XML/1998/namespace"


class TemplateSyntaxError(ValueError):
    """A template uses a directive wrongly; the message says where."""


def _where(filename: str | None, line: int | None, column: int | None) -> str:
    return f"{filename or '<string>'}, line {line}, column {column}"


# -- XML ----------------------------------------------------------------------------------------


class _ToStan(handler.ContentHandler, handler.EntityResolver):
    """SAX events to Tags, as Twisted's loader makes them."""

    def __init__(self, filename: str | None) -> None:
        super().__init__()
        self.filename = filename
        # Namespace URI -> prefix, one dict per open prefix mapping (innermost last).
        self.prefixes: list[dict[str | None, str | None]] = [{_XML_NAMESPACE: "xml"}]
        self.in_cdata = False
        self.document: list[Any] = []
        self.current: list[Any] = self.document
        self.stack: list[Any] = []
        self.xmlns_attributes: list[tuple[str, str]] = []
        self.locator: Locator | None = None

    def setDocumentLocator(self, locator: Locator) -> None:
        self.locator = locator

    def _position(self) -> tuple[int | None, int | None]:
        if self.locator is None:
            return None, None
        return self.locator.getLineNumber(), self.locator.getColumnNumber()

    def startPrefixMapping(self, prefix: str | None, uri: str) -> None:
        self.prefixes.append({**self.prefixes[-1], uri: prefix})
        if uri == TEMPLATE_NAMESPACE:
            return  # the template's own declaration is not written out
        self.xmlns_attributes.append(("xmlns" if prefix is None else f"xmlns:{prefix}", uri))

    def endPrefixMapping(self, prefix: str | None) -> None:
        self.prefixes.pop()

    def startElementNS(
        self, name: tuple[str | None, str], qname: str | None, attrs: AttributesNSImpl
    ) -> None:
        line, column = self._position()
        namespace, local = name
        if namespace == TEMPLATE_NAMESPACE:
            if local == "slot":
                if (None, "name") not in attrs:
                    raise TemplateSyntaxError(
                        f"<t:slot> needs a name attribute ({_where(self.filename, line, column)})"
                    )
                marker = slot(
                    attrs[(None, "name")],
                    default=attrs.get((None, "default")),
                    filename=self.filename,
                    lineNumber=line,
                    columnNumber=column,
                )
                self.stack.append(marker)
                self.current.append(marker)
                self.current = marker.children
                return
            if local not in ("transparent", "attr"):
                raise TemplateSyntaxError(
                    f"unknown template directive <t:{local}>"
                    f" ({_where(self.filename, line, column)})"
                )
        render = None
        prefixes = self.prefixes[-1]
        attributes: OrderedDict[bytes | str, Any] = OrderedDict()
        for (attribute_namespace, attribute_name), value in attrs.items():
            if attribute_namespace == TEMPLATE_NAMESPACE:
                if attribute_name != "render":
                    raise TemplateSyntaxError(
                        f"unknown template attribute t:{attribute_name}"
                        f" ({_where(self.filename, line, column)})"
                    )
                render = value
                continue
            prefix = prefixes.get(attribute_namespace)
            attributes[attribute_name if prefix is None else f"{prefix}:{attribute_name}"] = value
        if namespace == TEMPLATE_NAMESPACE and local == "attr":
            owner = self.stack[-1] if self.stack else None
            if not isinstance(owner, Tag):
                raise TemplateSyntaxError(
                    f"<t:attr> must be inside an element ({_where(self.filename, line, column)})"
                )
            if "name" not in attributes:
                raise TemplateSyntaxError(
                    f"<t:attr> needs a name attribute ({_where(self.filename, line, column)})"
                )
            value_tag = Tag("", render=render, filename=self.filename, lineNumber=line,
                            columnNumber=column)  # fmt: skip
            owner.attributes[attributes["name"]] = value_tag
            self.stack.append(value_tag)
            self.current = value_tag.children
            return
        if self.xmlns_attributes:
            attributes.update(self.xmlns_attributes)
            self.xmlns_attributes = []
        if namespace == TEMPLATE_NAMESPACE:
            tag_name = ""  # t:transparent
        elif namespace is not None and prefixes.get(namespace) is not None:
            tag_name = f"{prefixes[namespace]}:{local}"
        else:
            tag_name = local
        element = Tag(
            tag_name,
            attributes=dict(attributes),
            render=render,
            filename=self.filename,
            lineNumber=line,
            columnNumber=column,
        )
        self.stack.append(element)
        self.current.append(element)
        self.current = element.children

    def endElementNS(self, name: tuple[str | None, str], qname: str | None) -> None:
        self.stack.pop()
        self.current = self.stack[-1].children if self.stack else self.document

    def characters(self, content: str) -> None:
        if self.in_cdata:
            self.stack[-1].append(content)
        else:
            self.current.append(content)

    def processingInstruction(self, target: str, data: str) -> None:
        """Processing instructions are not written out."""

    # The lexical handler's events (comments, CDATA sections, the DTD).

    def comment(self, content: str) -> None:
        self.current.append(Comment(content))

    def startCDATA(self) -> None:
        self.in_cdata = True
        self.stack.append([])

    def endCDATA(self) -> None:
        self.in_cdata = False
        self.current.append(CDATA("".join(self.stack.pop())))

    def startDTD(self, name: str, publicId: str, systemId: str) -> None:
        """A DOCTYPE describes the template, not the page: not written out."""

    def endDTD(self, *args: object) -> None:
        pass

    def startEntity(self, name: str) -> None:
        pass

    def endEntity(self, name: str) -> None:
        pass


def _parse_xml(source: IO[str] | IO[bytes], filename: str | None) -> list[Any]:
    parser = make_parser()
    parser.setFeature(handler.feature_validation, False)
    parser.setFeature(handler.feature_namespaces, True)
    parser.setFeature(handler.feature_external_ges, False)
    parser.setFeature(handler.feature_external_pes, False)
    builder = _ToStan(filename)
    parser.setContentHandler(builder)
    parser.setEntityResolver(builder)
    parser.setProperty(handler.property_lexical_handler, builder)
    parser.parse(source)
    return builder.document


# -- HTML ---------------------------------------------------------------------------------------

_BLOCKS: Final = {
    "address",
    "article",
    "aside",
    "blockquote",
    "details",
    "dialog",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "ul",
}

#: A start tag closes these open elements first (HTML's optional end tags, simplified).
_CLOSES: Final[dict[str, frozenset[str]]] = {
    **{block: frozenset({"p"}) for block in _BLOCKS},
    "li": frozenset({"li", "p"}),
    "dt": frozenset({"dt", "dd", "p"}),
    "dd": frozenset({"dt", "dd", "p"}),
    "tr": frozenset({"tr", "td", "th"}),
    "td": frozenset({"td", "th"}),
    "th": frozenset({"td", "th"}),
    "thead": frozenset({"thead", "tbody", "tfoot", "tr", "td", "th"}),
    "tbody": frozenset({"thead", "tbody", "tfoot", "tr", "td", "th"}),
    "tfoot": frozenset({"thead", "tbody", "tfoot", "tr", "td", "th"}),
    "option": frozenset({"option"}),
    "optgroup": frozenset({"option", "optgroup"}),
}

#: Elements whose text HTML reads without entities or tags: written as the template has it.
_RAW_TEXT: Final = frozenset({"script", "style"})


class _HTMLBuilder(HTMLParser):
    """html.parser events to Tags."""

    def __init__(self, filename: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.filename = filename
        self.prefix = "t:"
        self.document: list[Any] = []
        # The open elements, each with the name its end tag will have.
        self.open: list[tuple[str, Tag]] = []
        # A void element just started: a t:attr may still follow for it.
        self.void: Tag | None = None
        self.held: list[str] = []

    def _error(self, message: str) -> TemplateSyntaxError:
        line, column = self.getpos()
        return TemplateSyntaxError(f"{message} ({_where(self.filename, line, column)})")

    @property
    def _children(self) -> list[Any]:
        return self.open[-1][1].children if self.open else self.document

    def _end_void(self) -> None:
        if self.void is not None:
            self.void = None
            self._children.extend(self.held)
            self.held.clear()

    def set_cdata_mode(self, elem: str, *args: Any, **kwargs: Any) -> None:
        # Only script and style are read as raw text, whatever html.parser's version
        # would add (newer ones read <title> and <textarea> so): directives in a title
        # are directives, and their text is escaped when written.
        if elem in _RAW_TEXT:
            super().set_cdata_mode(elem, *args, **kwargs)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line, column = self.getpos()
        for key, value in attrs:
            if key.startswith("xmlns:") and value == TEMPLATE_NAMESPACE:
                self.prefix = key[len("xmlns:") :] + ":"
        prefix = self.prefix
        render = None
        attributes: dict[bytes | str, Any] = {}
        for key, value in attrs:
            if key.startswith("xmlns:") and value == TEMPLATE_NAMESPACE:
                continue
            if key.startswith(prefix):
                if key != prefix + "render":
                    raise self._error(f"unknown template attribute {key}")
                render = value
                continue
            try:
                checked_name(key.encode("utf-8"))
            except ValueError as exc:
                raise self._error(str(exc)) from None
            attributes[key] = "" if value is None else value
        if tag.startswith(prefix):
            self._directive(tag[len(prefix) :], attributes, render, line, column)
            return
        self._end_void()
        closes = _CLOSES.get(tag)
        while closes and self.open and self.open[-1][0] in closes:
            self.open.pop()
        element = Tag(tag, attributes, render=render, filename=self.filename,
                      lineNumber=line, columnNumber=column)  # fmt: skip
        self._children.append(element)
        if tag in voidElements:
            self.void = element
        else:
            self.open.append((tag, element))

    def _directive(
        self, name: str, attributes: dict[bytes | str, Any], render: str | None, line: int,
        column: int,
    ) -> None:  # fmt: skip
        if name == "attr":
            owner = self.void if self.void is not None else None
            if owner is None and self.open:
                owner = self.open[-1][1]
            if owner is None:
                raise self._error(f"<{self.prefix}attr> must be inside an element")
            if "name" not in attributes:
                raise self._error(f"<{self.prefix}attr> needs a name attribute")
            self.held.clear()
            value = Tag("", render=render, filename=self.filename, lineNumber=line,
                        columnNumber=column)  # fmt: skip
            owner.attributes[attributes["name"]] = value
            self.open.append((self.prefix + "attr", value))
            return
        self._end_void()
        if name == "slot":
            if "name" not in attributes:
                raise self._error(f"<{self.prefix}slot> needs a name attribute")
            self._children.append(
                slot(
                    attributes["name"],
                    default=attributes.get("default"),
                    filename=self.filename,
                    lineNumber=line,
                    columnNumber=column,
                )
            )
        elif name == "transparent":
            element = Tag("", render=render, filename=self.filename, lineNumber=line,
                          columnNumber=column)  # fmt: skip
            self._children.append(element)
            self.open.append((self.prefix + "transparent", element))
        else:
            raise self._error(f"unknown template directive <{self.prefix}{name}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == self.prefix + "slot":
            return
        if tag == self.prefix + "attr":
            while self.open:
                if self.open.pop()[0] == tag:
                    break
            return
        if self.void is not None and tag == self.void.tagName:
            self.void = None
            self.held.clear()
            return
        self._end_void()
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index][0] == tag:
                del self.open[index:]
                return
        # An end tag with nothing to close: HTML ignores it too.

    def handle_data(self, data: str) -> None:
        if self.void is not None:
            if data.isspace():
                self.held.append(data)
                return
            self._end_void()
        if self.open and self.open[-1][0] in _RAW_TEXT:
            self._children.append(RawText(data))
        else:
            self._children.append(data)

    def handle_comment(self, data: str) -> None:
        self._end_void()
        self._children.append(Comment(data))

    def unknown_decl(self, data: str) -> None:
        if data.startswith("CDATA["):
            self._end_void()
            self._children.append(CDATA(data[len("CDATA[") :]))

    def close(self) -> None:
        super().close()
        self._end_void()


def _parse_html(text: str, filename: str | None) -> list[Any]:
    builder = _HTMLBuilder(filename)
    builder.feed(text)
    builder.close()
    return builder.document


# -- the loaders ----------------------------------------------------------------------------------


def _read(path: Any) -> tuple[bytes, str | None]:
    """The bytes of a template file, and its name: ``path`` is a str or os.PathLike, an
    object with a ``path`` (Twisted's FilePath), or a file opened for reading."""
    if hasattr(path, "read"):
        data = path.read()
        name = getattr(path, "name", None)
        return (data.encode("utf-8") if isinstance(data, str) else data), name
    location = getattr(path, "path", path)
    if isinstance(location, bytes):
        location = os.fsdecode(location)
    with open(location, "rb") as file:
        return file.read(), os.fspath(location)


@implementer(ITemplateLoader)
class XMLString:
    """A template from XML text (str, or UTF-8 bytes), parsed once."""

    def __init__(self, s: str | bytes) -> None:
        text = s if isinstance(s, str) else s.decode("utf-8")
        self._loadedTemplate: list[Flattenable] = freeze(_parse_xml(io.StringIO(text), None))

    def load(self) -> list[Flattenable]:
        return self._loadedTemplate


@implementer(ITemplateLoader)
class XMLFile:
    """A template from an XML file: a path, a FilePath or an open file; read at first use."""

    def __init__(self, path: Any) -> None:
        self._path = path
        self._loadedTemplate: list[Flattenable] | None = None

    def load(self) -> list[Flattenable]:
        if self._loadedTemplate is None:
            data, name = _read(self._path)
            # Bytes: the XML declaration, if any, says the encoding.
            self._loadedTemplate = freeze(_parse_xml(io.BytesIO(data), name))
        return self._loadedTemplate

    def __repr__(self) -> str:
        return f"<XMLFile of {self._path!r}>"


@implementer(ITemplateLoader)
class HTMLString:
    """A template from HTML5 text (str, or UTF-8 bytes), parsed once."""

    def __init__(self, s: str | bytes) -> None:
        text = s if isinstance(s, str) else s.decode("utf-8")
        self._loadedTemplate: list[Flattenable] = freeze(_parse_html(text, None))

    def load(self) -> list[Flattenable]:
        return self._loadedTemplate


@implementer(ITemplateLoader)
class HTMLFile:
    """A template from an HTML5 file: a path, a FilePath or an open file; read at first use."""

    def __init__(self, path: Any) -> None:
        self._path = path
        self._loadedTemplate: list[Flattenable] | None = None

    def load(self) -> list[Flattenable]:
        if self._loadedTemplate is None:
            data, name = _read(self._path)
            self._loadedTemplate = freeze(_parse_html(data.decode("utf-8"), name))
        return self._loadedTemplate

    def __repr__(self) -> str:
        return f"<HTMLFile of {self._path!r}>"


@implementer(ITemplateLoader)
class TagLoader:
    """A template that is a tree already made: ``load()`` returns ``[tag]``.

    Sub-views use it: ``yield WidgetElement(TagLoader(tag), widget)`` renders the part of
    the page the renderer was given with another element's renderers.
    """

    def __init__(self, tag: Flattenable) -> None:
        self.tag = tag

    def load(self) -> list[Flattenable]:
        return [self.tag]
