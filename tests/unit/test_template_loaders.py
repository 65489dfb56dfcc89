"""The loaders: XML as Twisted reads it, HTML5 on html.parser, files, TagLoader."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hive.template import (
    Element,
    HTMLFile,
    HTMLString,
    Tag,
    TagLoader,
    TemplateSyntaxError,
    XMLFile,
    XMLString,
    flattenString,
    renderer,
    tags,
)

NS = 'xmlns:t="http://twistedmatrix.com/ns/twisted.web.template/0.1"'


class Page(Element):
    """An element with a few renderers, for any loader."""

    @renderer
    def name(self, request: Any, tag: Tag) -> Any:
        return tag("Ada <Lovelace>")

    @renderer
    def link(self, request: Any, tag: Tag) -> Any:
        return tag("/people?a=1&b=2")

    @renderer
    def items(self, request: Any, tag: Tag) -> Any:
        return [tag.clone().fillSlots(item=str(n)) for n in range(2)]


def render(loader: Any) -> bytes:
    result: bytes = asyncio.run(flattenString(None, Page(loader)))
    return result


# -- XML ------------------------------------------------------------------------------------------


def test_xml_file_from_a_path_a_str_a_filepath_and_a_file(tmp_path: Path) -> None:
    path = tmp_path / "page.xml"
    path.write_text(f'<p {NS}>Hi <b t:render="name" /></p>')

    class FilePathLike:  # what Twisted's FilePath offers
        def __init__(self, path: str) -> None:
            self.path = path

    expected = b"<p>Hi <b>Ada &lt;Lovelace&gt;</b></p>"
    assert render(XMLFile(path)) == expected
    assert render(XMLFile(str(path))) == expected
    assert render(XMLFile(FilePathLike(str(path)))) == expected
    with open(path, "rb") as file:
        assert render(XMLFile(file)) == expected
    assert "page.xml" in repr(XMLFile(path))


def test_xml_file_is_read_when_first_used(tmp_path: Path) -> None:
    path = tmp_path / "later.xml"
    loader = XMLFile(path)  # not there yet
    path.write_text("<p>now</p>")
    assert render(loader) == b"<p>now</p>"


def test_xml_file_positions_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "page.xml"
    path.write_text(f'<div {NS}>\n <b t:render="name" /></div>')
    (root,) = XMLFile(path).load()
    assert isinstance(root, Tag)
    (bold,) = [child for child in root.children if isinstance(child, Tag)]
    assert (bold.filename, bold.lineNumber, bold.columnNumber) == (str(path), 2, 1)


def test_xml_string_takes_bytes_and_encodings() -> None:
    assert render(XMLString(f"<p {NS}>caf\u00e9</p>".encode())) == "<p>caf\u00e9</p>".encode()
    latin = '<?xml version="1.0" encoding="latin-1"?><p>caf\xe9</p>'.encode("latin-1")
    assert render(XMLFile(_BytesFile(latin))) == "<p>caf\u00e9</p>".encode()


class _BytesFile:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data


def test_xml_external_entities_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.dtd"
    secret.write_text('<!ENTITY leak "SECRET">')
    xml = f'<!DOCTYPE p SYSTEM "{secret.as_uri()}"><p>a&leak;b</p>'
    assert render(XMLString(xml)) == b"<p>ab</p>"


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (f"<p {NS}><t:slot /></p>", "needs a name"),
        (f"<p {NS}><t:bogus /></p>", "unknown template directive"),
        (f'<p {NS} t:rendr="x" />', "unknown template attribute"),
        (f'<t:attr {NS} name="x" />', "must be inside an element"),
        (f"<p {NS}><t:attr /></p>", "needs a name"),
    ],
)
def test_xml_directive_mistakes_are_clear_errors(xml: str, message: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=message):
        XMLString(xml)


def test_xml_malformed_is_an_error() -> None:
    with pytest.raises(Exception, match=r"mismatched|not well-formed"):
        XMLString("<p><b></p>")


# -- HTML5 ----------------------------------------------------------------------------------------


def test_html_void_elements_boolean_attributes_and_entities() -> None:
    html = (
        '<form><input type="checkbox" checked><br><img src="a.png" alt="&quot;x&quot;">'
        "<p>&nbsp;&copy; &amp; caf&eacute;</p></form>"
    )
    assert (
        render(HTMLString(html))
        == (
            '<form><input type="checkbox" checked="" /><br />'
            '<img src="a.png" alt="&quot;x&quot;" />'
            "<p>\u00a0\u00a9 &amp; caf\u00e9</p></form>"
        ).encode()
    )


def test_html_script_and_style_text_is_written_as_it_is() -> None:
    html = (
        "<head><style>div > p { content: '&amp;' }</style>"
        "<script>if (a < b && c > d) { x = '</p>' }</script></head>"
    )
    assert render(HTMLString(html)) == html.encode()


def test_html_directives() -> None:
    html = (
        "<div><b t:render='name'></b> <a><t:attr name='href' t:render='link'></t:attr>go</a>"
        "<ul><li t:render='items'><t:slot name='item'></li></ul>"
        "<img><t:attr name='title'>x</t:attr>"
        "<t:transparent t:render='name'></t:transparent><t:slot name='none' default='d'></div>"
    )
    assert render(HTMLString(html)) == (
        b'<div><b>Ada &lt;Lovelace&gt;</b> <a href="/people?a=1&amp;b=2">go</a>'
        b'<ul><li>0</li><li>1</li></ul><img title="x" />Ada &lt;Lovelace&gt;d</div>'
    )


def test_html_directives_in_title_and_textarea() -> None:
    html = "<title>x <t:slot name='s' default='d'></title><textarea t:render='name'></textarea>"
    assert render(HTMLString(html)) == (
        b"<title>x d</title><textarea>Ada &lt;Lovelace&gt;</textarea>"
    )


def test_html_prefix_from_a_namespace_declaration() -> None:
    html = (
        '<div xmlns:tpl="http://twistedmatrix.com/ns/twisted.web.template/0.1">'
        '<b tpl:render="name"></b></div>'
    )
    assert render(HTMLString(html)) == b"<div><b>Ada &lt;Lovelace&gt;</b></div>"


def test_html_end_tags_that_may_be_left_out() -> None:
    html = "<ul><li>one<li>two</ul><table><tr><td>a<td>b<tr><td>c</table><p>x<p>y<div>z</div>"
    assert render(HTMLString(html)) == (
        b"<ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>b</td></tr><tr><td>c</td>"
        b"</tr></table><p>x</p><p>y</p><div>z</div>"
    )


def test_html_self_closing_and_stray_end_tags() -> None:
    assert render(HTMLString("<div/><span></b>text</span></p>")) == (
        b"<div></div><span>text</span>"
    )


def test_html_doctype_and_comments() -> None:
    assert render(HTMLString("<!DOCTYPE html><!-- note --><p>x</p>")) == (b"<!-- note --><p>x</p>")


def test_html_whitespace_around_a_void_element_with_an_attribute() -> None:
    html = "<p><img>\n  <t:attr name='src'>u</t:attr>\n</p>"
    assert render(HTMLString(html)) == b'<p><img src="u" />\n</p>'


def test_html_positions() -> None:
    (root,) = HTMLString("<div>\n  <b t:render='name'></b></div>").load()
    assert isinstance(root, Tag)
    bold = root.children[1]
    assert (bold.lineNumber, bold.columnNumber) == (2, 2)


def test_html_file(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text("<p>Hi <b t:render='name'></b>&nbsp;</p>", encoding="utf-8")
    assert render(HTMLFile(path)) == "<p>Hi <b>Ada &lt;Lovelace&gt;</b>\u00a0</p>".encode()


@pytest.mark.parametrize(
    ("html", "message"),
    [
        ("<p><t:slot></p>", "needs a name"),
        ("<p><t:loop></p>", "unknown template directive"),
        ("<p t:rendr='x'></p>", "unknown template attribute"),
        ("<t:attr name='x'>", "must be inside an element"),
        ('<p a"b="1"></p>', "cannot be an element or attribute name"),
    ],
)
def test_html_mistakes_are_clear_errors(html: str, message: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=message):
        HTMLString(html)


def test_html_and_xml_make_the_same_page() -> None:
    body = (
        "<div><p t:render='name'></p><ul><li t:render='items'><t:slot name='item'/></li></ul></div>"
    )
    xml = body.replace("<div>", f"<div {NS}>", 1)
    assert render(HTMLString(body)) == render(XMLString(xml))


# -- TagLoader ------------------------------------------------------------------------------------


def test_tag_loader_gives_its_tag() -> None:
    tag = tags.p(tags.b(render="name"))
    loader = TagLoader(tag)
    assert loader.load() == [tag]
    assert render(loader) == b"<p><b>Ada &lt;Lovelace&gt;</b></p>"
