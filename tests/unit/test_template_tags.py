"""Tag, slot, the markup objects and ``tags``: Twisted's API, and lazy template tags."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hive.template import (
    CDATA,
    VALID_HTML_TAG_NAMES,
    CharRef,
    Comment,
    Tag,
    XMLString,
    flattenString,
    slot,
    tags,
)

NS = 'xmlns:t="http://twistedmatrix.com/ns/twisted.web.template/0.1"'


def render(root: Any) -> bytes:
    result: bytes = asyncio.run(flattenString(None, root))
    return result


def test_calling_a_tag_adds_children_and_attributes() -> None:
    tag = tags.div("a", class_="c", data_x="1")
    assert tag(tags.b("b"), id="i") is tag
    assert tag.tagName == "div"
    assert tag.attributes == {"class": "c", "data_x": "1", "id": "i"}
    assert tag.children[0] == "a" and tag.children[1].tagName == "b"


def test_render_keyword_sets_the_directive() -> None:
    tag = tags.p(render="name")
    assert tag.render == "name" and tag.attributes == {}
    with pytest.raises(TypeError):
        tags.p(render=1)  # type: ignore[arg-type]


def test_tags_factory() -> None:
    assert tags.transparent.tagName == ""
    assert tags.del_.tagName == "del"
    assert tags.main.tagName == "main" and tags.template.tagName == "template"
    assert {"div", "main", "picture", "dialog", "wbr"} <= VALID_HTML_TAG_NAMES
    with pytest.raises(AttributeError):
        tags.notatag  # noqa: B018


def test_fill_slots_returns_the_tag_and_merges() -> None:
    tag = tags.p()
    assert tag.fillSlots(a="1") is tag
    tag.fillSlots(b="2", a="3")
    assert tag.slotData == {"a": "3", "b": "2"}


def test_clone_deep_and_shallow() -> None:
    inner = tags.b("x")
    original = tags.p(inner, [tags.i("y")], title=tags.span("t"))
    original.fillSlots(s=tags.u("s"))
    deep = original.clone()
    assert deep.children[0] is not inner and deep.children[0].children == ["x"]
    assert isinstance(deep.children[1], list) and deep.children[1][0] is not original.children[1][0]
    assert deep.attributes["title"] is not original.attributes["title"]
    assert deep.slotData is not None and original.slotData is not None
    assert deep.slotData["s"] is not original.slotData["s"]
    shallow = original.clone(deep=False)
    assert shallow.children[0] is inner
    assert shallow.attributes["title"] is not original.attributes["title"]
    deep.children[0]("more")
    assert inner.children == ["x"]
    page = b'<p title="&lt;span&gt;t&lt;/span&gt;"><b>x</b><i>y</i></p>'
    assert render(original) == render(original.clone()) == page


def test_clear() -> None:
    tag = tags.p("a", "b")
    assert tag.clear() is tag and tag.children == []


def test_repr() -> None:
    assert repr(tags.p("a", class_="c")) == "Tag('p', attributes={'class': 'c'}, children=['a'])"
    assert repr(tags.br()) == "Tag('br')"
    assert repr(Comment("c")) == "Comment('c')"
    assert repr(CDATA("d")) == "CDATA('d')"
    assert repr(CharRef(65)) == "CharRef(65)"
    assert repr(slot("s")).startswith("slot(name='s'")


def test_slot_attributes() -> None:
    marker = slot("name", default="d", filename="f.xml", lineNumber=3, columnNumber=4)
    assert (marker.name, marker.default, marker.children) == ("name", "d", [])
    assert (marker.filename, marker.lineNumber, marker.columnNumber) == ("f.xml", 3, 4)


def test_tags_compare_by_identity() -> None:
    assert tags.p("a") != tags.p("a")
    assert len({tags.p(), tags.p()}) == 2


# -- lazy tags from loaders -----------------------------------------------------------------------


def loaded(xml: str) -> Tag:
    (root,) = XMLString(xml).load()
    assert isinstance(root, Tag)
    return root


def test_a_loaded_tag_looks_like_any_tag() -> None:
    tag = loaded(f'<ul {NS} class="c"><li t:render="r">x<b>y</b></li></ul>')
    assert tag.tagName == "ul" and tag.attributes == {"class": "c"}
    item = tag.children[0]
    assert isinstance(item, Tag) and item.render == "r"
    assert item.children[0] == "x" and item.children[1].tagName == "b"
    assert item.lineNumber == 1


def test_changing_a_clone_leaves_the_template_alone() -> None:
    template = loaded(f"<p {NS}><b>bold</b></p>")
    before = render(template)
    clone = template.clone()
    clone.children[0]("!")
    clone.attributes["id"] = "x"
    clone.tagName = "div"
    assert render(clone) == b'<div id="x"><b>bold!</b></div>'
    assert render(template) == before == b"<p><b>bold</b></p>"
    second = template.clone()
    assert render(second) == before


def test_changing_a_loaded_tag_is_seen_by_the_next_render() -> None:
    """As in Twisted, load() gives the same nodes each time: changing them changes the page."""
    loader = XMLString(f"<p {NS}>text</p>")
    (root,) = loader.load()
    assert isinstance(root, Tag)
    root.children.append(" more")
    assert render(loader.load()) == b"<p>text more</p>"


def test_clone_of_a_loaded_tag_copies_its_slot_values() -> None:
    template = loaded(f'<p {NS}><t:slot name="a" /></p>')
    template.fillSlots(a=[tags.b("one")])
    clone = template.clone()
    assert clone.slotData is not None and template.slotData is not None
    assert clone.slotData["a"] is not template.slotData["a"]
    clone.slotData["a"][0]("!")
    assert render(template) == b"<p><b>one</b></p>"
    assert render(clone) == b"<p><b>one!</b></p>"
