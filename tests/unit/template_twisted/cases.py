"""The programs of Twisted's templating how-to, and more trees, written once against a
template module: ``twisted.web.template`` when recording, ``hive.template`` when testing.

That the same code runs under both is the porting promise itself: only the module
changes.  ``record.py`` wrote Twisted 26.10's output for each into ``recorded/``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LISTINGS = HERE / "listings"
RECORDED = HERE / "recorded"

NS = 'xmlns:t="http://twistedmatrix.com/ns/twisted.web.template/0.1"'


def roots(t: Any, path: Callable[[str], Any]) -> dict[str, Callable[[], Any]]:
    """Name -> a function making the root to flatten.  ``path(name)`` is how the module's
    XMLFile wants a file of listings/ (a FilePath for Twisted)."""
    XMLFile, XMLString, TagLoader = t.XMLFile, t.XMLString, t.TagLoader
    renderer, tags, Tag = t.renderer, t.tags, t.Tag

    # -- the how-to's listings, as they are ------------------------------------------------

    class Element1(t.Element):  # element_1.py
        loader = XMLFile(path("template-1.xml"))

        @renderer
        def header(self, request: Any, tag: Any) -> Any:
            return tag("Header.")

        @renderer
        def footer(self, request: Any, tag: Any) -> Any:
            return tag("Footer.")

    class Element2(t.Element):  # element_2.py
        loader = XMLFile(path("template-1.xml"))

        @renderer
        def header(self, request: Any, tag: Any) -> Any:
            return tag(tags.b("Header."))

        @renderer
        def footer(self, request: Any, tag: Any) -> Any:
            return tag(tags.b("Footer."))

    class Element3(t.Element):  # element_3.py
        loader = XMLFile(path("template-1.xml"))

        @renderer
        def header(self, request: Any, tag: Any) -> Any:
            return tag(tags.p("Header."), id="header")

        @renderer
        def footer(self, request: Any, tag: Any) -> Any:
            return tag(tags.p("Footer."), id="footer")

    class Quoting(t.Element):  # quoting_element.py
        loader = XMLFile(path("template-1.xml"))

        @renderer
        def header(self, request: Any, tag: Any) -> Any:
            return tag("<<<Header>>>!")

        @renderer
        def footer(self, request: Any, tag: Any) -> Any:
            return tag('>>>"Footer!"<<<', id='<"fun">')

    class SlotsAttributes(t.Element):  # slots_attributes_1.py
        loader = XMLFile(path("slots-attributes-1.xml"))

        @renderer
        def person_profile(self, request: Any, tag: Any) -> Any:
            tag.fillSlots(person_name="Luke", profile_image_url="http://example.com/user.png")
            return tag

    class Widgets(t.Element):  # iteration-1.py
        loader = XMLFile(path("iteration-1.xml"))
        widgetData = ["gadget", "contraption", "gizmo", "doohickey"]  # noqa: RUF012 (as listed)

        @renderer
        def widgets(self, request: Any, tag: Any) -> Any:
            for widget in self.widgetData:
                yield tag.clone().fillSlots(widgetName=widget)

    class SubviewWidgets(t.Element):  # subviews-1.py
        loader = XMLFile(path("subviews-1.xml"))
        widgetData = ["gadget", "contraption", "gizmo", "doohickey"]  # noqa: RUF012 (as listed)

        @renderer
        def widgets(self, request: Any, tag: Any) -> Any:
            for widget in self.widgetData:
                yield Widget(TagLoader(tag), widget)

    class Widget(t.Element):
        def __init__(self, loader: Any, name: str) -> None:
            t.Element.__init__(self, loader)
            self._name = name

        @renderer
        def name(self, request: Any, tag: Any) -> Any:
            return tag(self._name)

    class Transparent(t.Element):  # transparent_element.py
        loader = XMLFile(path("transparent-1.xml"))

        @renderer
        def renderer1(self, request: Any, tag: Any) -> Any:
            return tag("hello")

        @renderer
        def renderer2(self, request: Any, tag: Any) -> Any:
            return tag("world")

    # -- more of the surface: quoting rules, directives, markup objects --------------------

    class AttributeRenderer(t.Element):
        loader = XMLString(
            f'<p {NS} t:render="root"><a class="x"><t:attr name="href" t:render="link" />go</a>'
            f'<a><t:attr name="title">x&amp;y <t:slot name="s" /></t:attr>'
            f'<t:attr name="data-n"><t:slot name="n" default="0" /></t:attr>z</a></p>'
        )

        @renderer
        def root(self, request: Any, tag: Any) -> Any:
            return tag.fillSlots(s='"q" <b>&')

        @renderer
        def link(self, request: Any, tag: Any) -> Any:
            return tag("http://example.com/?a=1&b=<2>")

    class Defaults(t.Element):
        loader = XMLString(
            f'<div {NS}><t:slot name="missing" default="fallback &amp; more" />'
            f'<span t:render="filled"><t:slot name="a" />/<t:slot name="b" default="B" />'
            f"</span></div>"
        )

        @renderer
        def filled(self, request: Any, tag: Any) -> Any:
            return tag.fillSlots(a=tags.em("A & a"))

    class Namespaces(t.Element):
        loader = XMLString(
            f'<html xmlns="http://www.w3.org/1999/xhtml" {NS} xml:lang="en">'
            '<body xmlns:svg="http://www.w3.org/2000/svg"><svg:svg width="10">'
            '<svg:rect t:render="rect" /></svg:svg><?php ignored ?>'
            "<!-- a comment --><![CDATA[ <raw> & ]]>"
            "<p>&amp; &lt; &#169; &#x263A;</p></body></html>"
        )

        @renderer
        def rect(self, request: Any, tag: Any) -> Any:
            return tag(height="5")

    class Nested(t.Element):
        loader = XMLString(
            f'<section {NS}><h1 t:render="title" /><t:transparent t:render="items" /></section>'
        )

        @renderer
        def title(self, request: Any, tag: Any) -> Any:
            return tag("Items", class_="big")

        @renderer
        def items(self, request: Any, tag: Any) -> Any:
            return [Item(TagLoader(tags.li(tags.span(render="label"))), n) for n in range(3)]

    class Item(t.Element):
        def __init__(self, loader: Any, n: int) -> None:
            super().__init__(loader)
            self.n = n

        @renderer
        def label(self, request: Any, tag: Any) -> Any:
            return tag("item %d" % self.n, title=str(self.n))

    class Cloning(t.Element):
        loader = XMLString(
            f'<ul {NS}><li t:render="rows" class="row"><b><t:slot name="k" /></b>'
            f'<i><t:slot name="v" /></i></li></ul>'
        )

        @renderer
        def rows(self, request: Any, tag: Any) -> Any:
            out = []
            for key, value in [("a", "1"), ("b<", "2&"), ("c", tags.u("3"))]:
                row = tag.clone()
                row.fillSlots(k=key, v=value)
                row(tags.small("!"), **{"data-key": key})
                out.append(row)
            return out

    class Coroutine(t.Element):
        loader = XMLString(f'<p {NS}><span t:render="later" /></p>')

        @renderer
        async def later(self, request: Any, tag: Any) -> Any:
            return tag("from a coroutine")

    def markup() -> Any:
        return tags.div(
            t.Comment("a --> b -"),
            t.CDATA("x ]]> y"),
            t.CharRef(8364),
            "caf\u00e9 & <tea>",
            b"bytes & <b>",
            [tags.i("in a list"), (tags.b("in a tuple"),)],
            (x for x in ["from a generator ", tags.s("struck")]),
            tags.img(src=tags.b("x<&", tags.i(title='"q"')), alt='a"b'),
            tags.a(href=tags.transparent("x&y", tags.b("<")), title=["1", "&", tags.br()]),
            tags.br(),
            tags.hr(),
            tags.p(),
            tags.br("not void: a child"),
            Tag("custom-element", attributes={"data-x": "1"}, children=["c"]),
            tags.transparent("naked ", tags.em("text")),
            class_="markup",
        )

    def render_in_stan() -> Any:
        class InStan(t.Element):
            loader = TagLoader(tags.div(tags.span(render="hello"), tags.p("static"), id="x"))

            @renderer
            def hello(self, request: Any, tag: Any) -> Any:
                return tag("hello", tags.b(" world"))

        return InStan()

    return {
        "element_1": Element1,
        "element_2": Element2,
        "element_3": Element3,
        "quoting": Quoting,
        "slots_attributes": SlotsAttributes,
        "iteration": Widgets,
        "subviews": SubviewWidgets,
        "transparent": Transparent,
        "attribute_renderer": AttributeRenderer,
        "defaults": Defaults,
        "namespaces": Namespaces,
        "nested_elements": Nested,
        "cloning": Cloning,
        "coroutine": Coroutine,
        "markup": markup,
        "render_in_stan": render_in_stan,
    }


#: The template of wait_for_it.py: output is written up to the wait, then the rest.
WAIT_FOR_IT = f"""
    <div {NS}>
    Before waiting ...
    <span t:render="wait"></span>
    ... after waiting.
    </div>
    """
