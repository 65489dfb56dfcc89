"""Escaping is always on: data put into a page, wherever it goes, stays data.

Each payload is put in every place data can go; the page is read back with the standard
library's HTML parser, which must find only the page's own elements, and the payload,
unchanged, as text or attribute value.
"""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.error import FlattenerError
from hive.template import (
    Comment,
    Element,
    HTMLString,
    Tag,
    XMLString,
    flattenString,
    renderer,
    tags,
)

NS = 'xmlns:t="http://twistedmatrix.com/ns/twisted.web.template/0.1"'

PAYLOADS = [
    "<script>alert(1)</script>",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    '" onmouseover="alert(1)" x="',
    "' onmouseover='alert(1)' x='",
    "<svg/onload=alert(1)>",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    "</script><script>alert(1)</script>",
    "</style><script>alert(1)</script>",
    "--><script>alert(1)</script>",
    "--!><script>alert(1)</script>",
    "<!--<script>alert(1)</script>-->",
    "]]><script>alert(1)</script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "<iframe src=javascript:alert(1)>",
    "<a href='javascript:alert(1)'>x</a>",
    "<<SCRIPT>alert(1)//<</SCRIPT>",
    '<IMG """><SCRIPT>alert(1)</SCRIPT>">',
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "\x00<script>alert(1)</script>",
    "`><img src=x onerror=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "&",
    "&amp;",
    "<",
    "caf\u00e9 \u2603 <b>",
]


class Reader(HTMLParser):
    """What a browser's tokenizer would see: elements, attributes, text, comments."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.starts: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append(tag)
        self.attributes.extend(attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def read(page: bytes) -> Reader:
    reader = Reader()
    reader.feed(page.decode())
    reader.close()
    return reader


def render(root: Any) -> bytes:
    result: bytes = asyncio.run(flattenString(None, root))
    return result


class Filled(Element):
    """A template with the payload in a content slot and in attribute slots."""

    loader = XMLString(
        f'<div {NS} t:render="fill" title="static"><p><t:slot name="v" /></p>'
        f'<a><t:attr name="href">/x?q=<t:slot name="v" /></t:attr>link</a>'
        f'<b data-v="pre"><t:attr name="data-w"><t:slot name="v" /></t:attr></b></div>'
    )

    def __init__(self, value: str) -> None:
        super().__init__()
        self.value = value

    @renderer
    def fill(self, request: Any, tag: Tag) -> Any:
        return tag.fillSlots(v=self.value)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_in_text_and_attributes_made_in_code(payload: str) -> None:
    page = render(tags.div(tags.p(payload), tags.span(title=payload, **{"data-x": payload})))
    seen = read(page)
    assert seen.starts == ["div", "p", "span"]
    assert "".join(seen.text) == payload.replace("\x00", "\x00")
    assert seen.attributes == [("title", payload), ("data-x", payload)]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_in_template_slots(payload: str) -> None:
    seen = read(render(Filled(payload)))
    assert seen.starts == ["div", "p", "a", "b"]
    assert "".join(seen.text) == payload + "link"
    assert seen.attributes == [
        ("title", "static"),
        ("href", "/x?q=" + payload),
        ("data-v", "pre"),
        ("data-w", payload),
    ]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_in_a_comment_stays_in_the_comment(payload: str) -> None:
    page = render(tags.div(Comment(payload), tags.p("after")))
    seen = read(page)
    assert seen.starts == ["div", "p"] and len(seen.comments) == 1
    body = page[len(b"<div><!--") : page.index(b"--><p>")]
    # Nothing that ends a comment in HTML5 (html.parser does not know all of them).
    assert b"-->" not in body and b"--!>" not in body
    assert not body.startswith((b">", b"->"))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_in_a_script_element_cannot_end_it(payload: str) -> None:
    html = HTMLString("<script t:render='data'></script><style t:render='data'></style><p>x</p>")

    class Page(Element):
        loader = html

        @renderer
        def data(self, request: Any, tag: Tag) -> Any:
            return tag(payload)

    page = render(Page())
    seen = read(page)
    assert seen.starts == ["script", "style", "p"]
    assert page.count(b"</script") == 1 and page.count(b"</style") == 1


@given(st.text())
def test_any_text_round_trips(text: str) -> None:
    seen = read(render(tags.p(text, title=text)))
    assert seen.starts == ["p"]
    assert "".join(seen.text) == text
    assert seen.attributes == [("title", text)]


@given(st.text())
def test_any_text_in_slots_round_trips(text: str) -> None:
    seen = read(render(Filled(text)))
    assert seen.starts == ["div", "p", "a", "b"]
    assert "".join(seen.text) == text + "link"


@given(st.text())
def test_any_comment_stays_one_comment(text: str) -> None:
    page = render(tags.p(Comment(text), "after"))
    body = page[len(b"<p><!--") : page.rindex(b"-->after")]
    assert b"-->" not in body and b"--!>" not in body
    assert read(page).starts == ["p"]


def test_javascript_urls_are_the_applications_choice() -> None:
    """Attribute values are escaped, not judged: a javascript: URL from user data is
    written as such, and refusing it is the application's job (documented)."""
    assert render(tags.a("x", href="javascript:alert(1)")) == (
        b'<a href="javascript:alert(1)">x</a>'
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: tags.div(**{'onclick="alert(1)" x': "y"}),
        lambda: tags.div(**{"a>": "y"}),
        lambda: tags.div(**{"a b": "y"}),
        lambda: tags.div(**{"": "y"}),
        lambda: Tag("script><img src=x onerror=alert(1)"),
        lambda: Tag("p/"),
    ],
)
def test_names_that_would_carry_markup_are_refused(make: Any) -> None:
    with pytest.raises(FlattenerError, match="cannot be an element or attribute name"):
        render(make())


def test_static_template_text_is_escaped_as_twisted_does() -> None:
    element = Element(XMLString(f'<p {NS} title="a&amp;b&quot;">1 &lt; 2 &amp; 3 &gt; 2</p>'))
    assert render(element) == b'<p title="a&amp;b&quot;">1 &lt; 2 &amp; 3 &gt; 2</p>'
