"""The flattener: directives, iteration, awaitables, deep trees, errors, concurrency."""

from __future__ import annotations

import asyncio
import gc
import sys
import warnings
from collections.abc import Iterator
from typing import Any, cast

import pytest

from hive.error import (
    FlattenerError,
    MissingRenderMethod,
    MissingTemplateLoader,
    UnfilledSlot,
    UnsupportedType,
)
from hive.template import (
    CDATA,
    CharRef,
    Comment,
    Element,
    HTMLString,
    Tag,
    TagLoader,
    XMLString,
    flatten,
    flattenString,
    renderer,
    tags,
)

NS = 'xmlns:t="http://twistedmatrix.com/ns/twisted.web.template/0.1"'


def render(root: Any, **options: Any) -> bytes:
    result: bytes = asyncio.run(flattenString(None, root, **options))
    return result


def failure(root: Any) -> FlattenerError:
    with pytest.raises(FlattenerError) as caught:
        render(root)
    return caught.value


class Template(Element):
    """An element of an XML template and renderers given as keyword arguments."""

    def __init__(self, xml: str, **renderers: Any) -> None:
        super().__init__(XMLString(xml))
        self.renderers = renderers

    def lookupRenderMethod(self, name: str) -> Any:
        if name not in self.renderers:
            raise MissingRenderMethod(self, name)
        return self.renderers[name]


# -- directives -------------------------------------------------------------------------------


def test_render_gets_a_clone_without_the_directive() -> None:
    seen: list[Tag] = []

    def hello(request: Any, tag: Tag) -> Any:
        seen.append(tag)
        return tag("hi")

    element = Template(f'<p {NS} t:render="hello" class="x">: </p>', hello=hello)
    assert render(element) == b'<p class="x">: hi</p>'
    assert render(element) == b'<p class="x">: hi</p>'  # the template did not change
    assert seen[0].render is None and seen[0] is not seen[1]


def test_render_result_replaces_the_tag() -> None:
    element = Template(
        f'<div {NS}><p t:render="swap">gone</p></div>',
        swap=lambda request, tag: [tags.b("one"), "two"],
    )
    assert render(element) == b"<div><b>one</b>two</div>"


def test_renderers_get_the_request() -> None:
    requests: list[Any] = []
    request = object()

    def r(req: Any, tag: Tag) -> Tag:
        requests.append(req)
        return tag

    element = Template(f'<p {NS} t:render="r" />', r=r)
    assert asyncio.run(flattenString(request, element)) == b"<p></p>"
    assert requests == [request]


def test_slots_filled_by_an_enclosing_tag_and_defaults() -> None:
    element = Template(
        f'<div {NS} t:render="fill"><p><t:slot name="a" /></p>'
        f'<p t:render="inner"><t:slot name="a" /><t:slot name="b" /></p>'
        f'<t:slot name="c" default="C" /></div>',
        fill=lambda request, tag: tag.fillSlots(a="outer", b="outer b"),
        inner=lambda request, tag: tag.fillSlots(a="inner"),
    )
    assert render(element) == b"<div><p>outer</p><p>innerouter b</p>C</div>"


def test_slot_values_of_every_kind() -> None:
    element = Template(
        f'<ul {NS} t:render="fill"><li><t:slot name="tag" /></li><li><t:slot name="list" />'
        f'</li><li><t:slot name="bytes" /></li><li><t:slot name="gen" /></li></ul>',
        fill=lambda request, tag: tag.fillSlots(
            tag=tags.b("<b>"),
            list=["a", tags.i("b")],
            bytes=b"&bytes",
            gen=(x for x in "xy"),
        ),
    )
    assert render(element) == (
        b"<ul><li><b>&lt;b&gt;</b></li><li>a<i>b</i></li><li>&amp;bytes</li><li>xy</li></ul>"
    )


def test_an_unfilled_slot_is_an_error() -> None:
    error = failure(Template(f'<p {NS}><t:slot name="nope" /></p>'))
    assert isinstance(error._exception, UnfilledSlot)
    assert "nope" in str(error)


def test_t_attr_with_slots_and_renderers() -> None:
    element = Template(
        f'<a {NS} t:render="fill"><t:attr name="href">/u/<t:slot name="user" /></t:attr>'
        f'<t:attr name="title" t:render="title" />link</a>',
        fill=lambda request, tag: tag.fillSlots(user='a"b&c'),
        title=lambda request, tag: tag("T<", tags.b("x")),
    )
    assert render(element) == (
        b'<a href="/u/a&quot;b&amp;c" title="T&lt;&lt;b&gt;x&lt;/b&gt;">link</a>'
    )


def test_t_transparent_leaves_no_markup() -> None:
    element = Template(
        f'<p {NS}><t:transparent>a<b>b</b></t:transparent><t:transparent t:render="r" /></p>',
        r=lambda request, tag: tag("c"),
    )
    assert render(element) == b"<p>a<b>b</b>c</p>"


def test_tag_made_in_code_with_a_render_directive() -> None:
    class Page(Element):
        loader = TagLoader(tags.div(tags.span(render="name"), class_="c"))

        @renderer
        def name(self, request: Any, tag: Tag) -> Any:
            return tag("Ada")

    assert render(Page()) == b'<div class="c"><span>Ada</span></div>'


def test_a_render_directive_outside_an_element_is_an_error() -> None:
    error = failure(tags.div(tags.span(render="name")))
    assert isinstance(error._exception, ValueError)
    assert 'rendered by method "name"' in str(error._exception)


def test_missing_render_method_and_loader() -> None:
    class Page(Element):
        loader = XMLString(f'<p {NS} t:render="absent" />')

        def absent(self, request: Any, tag: Tag) -> Any:  # not exposed with @renderer
            return tag

    assert isinstance(failure(Page())._exception, MissingRenderMethod)
    assert isinstance(failure(Element())._exception, MissingTemplateLoader)


def test_elements_nest_with_their_own_renderers() -> None:
    class Inner(Element):
        loader = XMLString(f'<i {NS} t:render="who" />')

        @renderer
        def who(self, request: Any, tag: Tag) -> Any:
            return tag("inner")

    class Outer(Element):
        loader = XMLString(f'<b {NS}><t:transparent t:render="who" /></b>')

        @renderer
        def who(self, request: Any, tag: Tag) -> Any:
            return [Inner(), tag("outer")]

    assert render(Outer()) == b"<b><i>inner</i>outer</b>"


# -- iteration ----------------------------------------------------------------------------------


def test_renderers_return_lists_tuples_and_generators() -> None:
    element = Template(
        f'<ul {NS}><li t:render="gen"><t:slot name="n" /></li><li t:render="lst" /></ul>',
        gen=lambda request, tag: (tag.clone().fillSlots(n=str(n)) for n in range(3)),
        lst=lambda request, tag: (tag.clone()("a"), [tag.clone()("b")]),
    )
    assert render(element) == b"<ul><li>0</li><li>1</li><li>2</li><li>a</li><li>b</li></ul>"


def test_a_generator_is_read_as_it_is_written() -> None:
    produced: list[int] = []
    written: list[int] = []

    def rows() -> Iterator[str]:
        for n in range(3):
            produced.append(n)
            yield "x" * 70_000  # each more than a chunk: written before the next is made

    async def main() -> None:
        await flatten(None, rows(), lambda data: written.append(len(produced)))

    asyncio.run(main())
    assert written[:3] == [1, 2, 3]


def test_clones_are_independent_of_their_template() -> None:
    template = XMLString(f'<ul {NS}><li t:render="r"><b>x</b></li></ul>')

    def r(request: Any, tag: Tag) -> Any:
        first = tag.clone()
        first.children[0].children.append("1")
        first.attributes["class"] = "a"
        second = tag.clone()
        return [first, second, tag]

    element = Template("<x/>", r=r)
    element.loader = template
    assert (
        render(element)
        == b'<ul><li class="a"><b>x1</b></li><li><b>x</b></li><li><b>x</b></li></ul>'
    )
    assert (
        render(element)
        == b'<ul><li class="a"><b>x1</b></li><li><b>x</b></li><li><b>x</b></li></ul>'
    )


# -- what can be in a tree ----------------------------------------------------------------------


def test_markup_objects() -> None:
    assert render(tags.p(Comment(" c "), CDATA("<d>"), CharRef(0x263A))) == (
        b"<p><!-- c --><![CDATA[<d>]]>&#9786;</p>"
    )


def test_text_kinds() -> None:
    import enum

    class Colour(enum.StrEnum):
        RED = "<red>"

    class Data(bytes):
        pass

    assert render(["a&", b"b<", Colour.RED, Data(b">")]) == b"a&amp;b&lt;&lt;red&gt;&gt;"


@pytest.mark.parametrize("value", [1, 1.5, None, object(), {"a": 1}])
def test_unsupported_types_are_errors(value: Any) -> None:
    error = failure(tags.p(value))
    assert isinstance(error._exception, UnsupportedType)


def test_non_ascii_text_is_utf8() -> None:
    assert render(tags.p("caf\u00e9 \u2603", title="\u00e9")) == (
        '<p title="\u00e9">caf\u00e9 \u2603</p>'.encode()
    )


# -- awaitables ---------------------------------------------------------------------------------


def test_awaitables_anywhere() -> None:
    async def coroutine() -> Any:
        await asyncio.sleep(0)
        return tags.b("coroutine")

    class Custom:
        def __await__(self) -> Any:
            yield from asyncio.sleep(0).__await__()
            return "custom"

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        loop.call_soon(future.set_result, "future")
        done = loop.create_future()
        done.set_result(tags.i("done"))
        task = loop.create_task(coroutine())
        root = tags.div(coroutine(), " ", future, " ", done, " ", task, " ", Custom(),
                        title=coroutine())  # fmt: skip
        return await flattenString(None, root)

    assert asyncio.run(main()) == (
        b'<div title="&lt;b&gt;coroutine&lt;/b&gt;"><b>coroutine</b> future <i>done</i>'
        b" <b>coroutine</b> custom</div>"
    )


def test_async_renderers() -> None:
    class Page(Element):
        loader = XMLString(f'<p {NS}><b t:render="later" />, <i t:render="gen" /></p>')

        @renderer
        async def later(self, request: Any, tag: Tag) -> Any:
            await asyncio.sleep(0)
            return tag("later")

        @renderer
        def gen(self, request: Any, tag: Tag) -> Any:
            async def one(n: int) -> Any:
                return tag.clone()(str(n))

            return [one(n) for n in range(2)]

    assert render(Page()) == b"<p><b>later</b>, <i>0</i><i>1</i></p>"


def test_ten_thousand_finished_futures() -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        futures = []
        for n in range(10_000):
            future = loop.create_future()
            future.set_result(str(n % 10))
            futures.append(future)
        return await flattenString(None, tags.p(futures))

    result = asyncio.run(main())
    assert result == b"<p>" + b"0123456789" * 1000 + b"</p>"


def test_ten_thousand_coroutines_that_do_not_wait_and_nested_futures() -> None:
    async def value(n: int) -> str:
        return str(n % 10)

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        # A future whose value is a future whose value is ... ten thousand deep.
        inner: Any = "end"
        for _ in range(10_000):
            outer = loop.create_future()
            outer.set_result(inner)
            inner = outer
        return await flattenString(None, [[value(n) for n in range(10_000)], inner])

    assert asyncio.run(main()) == b"0123456789" * 1000 + b"end"


def test_awaitable_failures_are_flattener_errors() -> None:
    async def broken() -> Any:
        await asyncio.sleep(0)
        raise KeyError("inside")

    error = failure(tags.p("a", broken()))
    assert isinstance(error._exception, KeyError)
    assert error.__cause__ is error._exception


def test_a_cancelled_future_in_the_tree_is_an_error() -> None:
    async def main() -> None:
        future = asyncio.get_running_loop().create_future()
        future.cancel()
        with pytest.raises(FlattenerError, match="cancelled"):
            await flattenString(None, tags.p(future))

    asyncio.run(main())


def test_deferreds_are_awaited() -> None:
    defer = pytest.importorskip("twisted.internet.defer")

    async def main() -> bytes:
        fired = defer.succeed(tags.b("fired"))
        later: Any = defer.Deferred()
        asyncio.get_running_loop().call_soon(later.callback, "later")
        many = [defer.succeed(str(n % 10)) for n in range(10_000)]
        return await flattenString(None, [fired, later, many])

    assert asyncio.run(main()) == b"<b>fired</b>later" + b"0123456789" * 1000


def test_a_failed_deferred_is_a_flattener_error() -> None:
    defer = pytest.importorskip("twisted.internet.defer")

    async def main() -> None:
        with pytest.raises(FlattenerError) as caught:
            await flattenString(None, defer.fail(KeyError("d")))
        assert isinstance(caught.value._exception, KeyError)

    asyncio.run(main())


def test_flatten_writes_what_it_has_before_it_waits() -> None:
    async def main() -> None:
        written: list[bytes] = []
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        done = flatten(None, tags.p("before ", future, " after"), written.append)
        assert written == [b"<p>before "]  # during the call, as Twisted's flatten
        future.set_result("during")
        await done
        assert written == [b"<p>before ", b"during after</p>"]

    asyncio.run(main())


def test_flattening_is_a_coroutine_to_asyncio() -> None:
    async def main() -> list[bytes]:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.get_running_loop().create_task(flattenString(None, tags.p(future)))
        asyncio.get_running_loop().call_soon(future.set_result, "x")
        waited = await asyncio.wait_for(flattenString(None, [future, "y"]), timeout=10)
        return [await task, waited]

    assert asyncio.run(main()) == [b"<p>x</p>", b"xy"]


def test_flatten_outside_a_loop_waits_to_be_awaited() -> None:
    written: list[bytes] = []
    pending = flatten(None, tags.p("x"), written.append)
    assert written == []
    asyncio.run(pending)  # a coroutine as far as asyncio.run is concerned
    assert written == [b"<p>x</p>"]


# -- deep trees ---------------------------------------------------------------------------------


def deep_tags(depth: int) -> Tag:
    root = tags.div()
    tag = root
    for _ in range(depth):
        child = tags.div()
        tag(child)
        tag = child
    tag("bottom")
    return root


def test_deep_trees_do_not_reach_the_recursion_limit() -> None:
    depth = 3 * sys.getrecursionlimit()
    assert render(deep_tags(depth)) == b"<div>" * (depth + 1) + b"bottom" + b"</div>" * (depth + 1)
    nested: Any = "x"
    for _ in range(depth):
        nested = [nested]
    assert render(nested) == b"x"


def test_deep_templates_load_and_render() -> None:
    depth = 3 * sys.getrecursionlimit()
    xml = f"<div {NS}>" + "<b>" * depth + '<t:slot name="s" default="!" />' + "</b>" * depth
    assert render(Template(xml + "</div>")) == (
        b"<div>" + b"<b>" * depth + b"!" + b"</b>" * depth + b"</div>"
    )
    html = "<div>" + "<i>" * depth + "<t:slot name='s' default='?'>" + "</i>" * depth + "</div>"
    element = Template("<x/>")
    element.loader = HTMLString(html)
    assert render(element) == b"<div>" + b"<i>" * depth + b"?" + b"</i>" * depth + b"</div>"


def test_deep_trees_clone_and_print() -> None:
    depth = 3 * sys.getrecursionlimit()
    tree = deep_tags(depth)
    clone = tree.clone()
    assert render(clone) == render(tree)
    assert repr(tree).startswith("Tag('div', children=[Tag('div'")
    assert len(repr(tree)) < 2000


def test_elements_nested_deeply() -> None:
    class Russian(Element):
        loader = TagLoader(tags.transparent(tags.i(render="inner")))

        def __init__(self, depth: int) -> None:
            super().__init__()
            self.depth = depth

        @renderer
        def inner(self, request: Any, tag: Tag) -> Any:
            return tag(Russian(self.depth - 1) if self.depth else "core")

    depth = 2 * sys.getrecursionlimit()
    assert render(Russian(depth)) == b"<i>" * (depth + 1) + b"core" + b"</i>" * (depth + 1)


def test_an_error_deep_down_has_a_bounded_message() -> None:
    tree = deep_tags(5000)
    bottom = tree
    while bottom.children and isinstance(bottom.children[0], Tag):
        bottom = bottom.children[0]
    bottom(cast(Any, object()))  # not flattenable
    error = failure(tree)
    assert isinstance(error._exception, UnsupportedType) and len(error._roots) > 5000
    text = str(error)
    assert "more ..." in text and len(text.splitlines()) < 60


# -- errors -------------------------------------------------------------------------------------


def test_the_error_names_the_template_position() -> None:
    def broken(request: Any, tag: Tag) -> Any:
        raise RuntimeError("broken renderer")

    error = failure(
        Template(f'<div {NS}>\n  <p>\n    <b t:render="broken" /></p></div>', broken=broken)
    )
    text = str(error)
    assert 'line 3, column 4, in "b"' in text
    assert "RuntimeError: broken renderer" in text
    assert isinstance(error._exception, RuntimeError)


def test_an_error_in_a_generator_is_a_flattener_error() -> None:
    def rows() -> Iterator[str]:
        yield "a"
        raise LookupError("in the generator")

    error = failure(tags.p(rows()))
    assert isinstance(error._exception, LookupError)


def test_an_error_leaves_no_coroutine_unawaited() -> None:
    async def fails() -> str:
        raise ValueError("first")

    async def never() -> str:
        return "never"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FlattenerError):
            render([fails(), never(), tags.p(never())])
        gc.collect()


def test_an_abandoned_generator_is_closed() -> None:
    closed: list[bool] = []

    def rows() -> Iterator[Any]:
        try:
            yield "a"
            yield object()
            yield "c"
        finally:
            closed.append(True)

    failure(tags.p([rows(), "d"]))
    assert closed == [True]


# -- concurrency --------------------------------------------------------------------------------


class Slow(Element):
    """Three renderers that each wait for their own future."""

    loader = XMLString(
        f'<div {NS}><p t:render="a" /><section><p t:render="b" /></section><p t:render="c" /></div>'
    )

    def __init__(self) -> None:
        super().__init__()
        self.called: list[str] = []
        self.futures: dict[str, asyncio.Future[str]] = {}

    def _wait(self, name: str, tag: Tag) -> Any:
        self.called.append(name)
        future = self.futures[name] = asyncio.get_running_loop().create_future()

        async def later() -> Any:
            return tag(await future)

        return later()

    @renderer
    def a(self, request: Any, tag: Tag) -> Any:
        return self._wait("a", tag)

    @renderer
    def b(self, request: Any, tag: Tag) -> Any:
        return self._wait("b", tag)

    @renderer
    def c(self, request: Any, tag: Tag) -> Any:
        return self._wait("c", tag)


@pytest.mark.parametrize("concurrent", [False, True])
def test_concurrent_starts_the_renderers_that_follow_a_wait(concurrent: bool) -> None:
    async def main() -> None:
        element = Slow()
        done = flattenString(None, element, concurrent=concurrent)
        await asyncio.sleep(0)
        assert element.called == (["a", "b", "c"] if concurrent else ["a"])
        for name in "cba":  # answered in reverse: the page keeps its order
            if name in element.futures:
                element.futures[name].set_result(name.upper())
            await asyncio.sleep(0)
        while (
            not all(element.futures[n].done() for n in "abc" if n in element.futures)
            or len(element.futures) < 3
        ):
            for future in element.futures.values():
                if not future.done():
                    future.set_result("late")
            await asyncio.sleep(0)
        page = await done
        expected = (
            b"<div><p>A</p><section><p>B</p></section><p>C</p></div>"
            if concurrent
            else b"<div><p>A</p><section><p>late</p></section><p>late</p></div>"
        )
        assert page == expected

    asyncio.run(main())


def test_concurrent_errors_come_in_document_order_and_the_rest_is_cancelled() -> None:
    async def main() -> None:
        element = Slow()
        done = flattenString(None, element, concurrent=True)
        await asyncio.sleep(0)
        element.futures["b"].set_exception(KeyError("b failed"))
        await asyncio.sleep(0)
        element.futures["a"].set_result("A")
        with pytest.raises(FlattenerError) as caught:
            await done
        assert isinstance(caught.value._exception, KeyError)
        await asyncio.sleep(0)
        assert element.futures["c"].cancelled()

    asyncio.run(main())


def test_concurrent_starts_awaitable_slot_values_and_list_items() -> None:
    started: list[str] = []

    async def fetch(name: str, gate: asyncio.Event) -> str:
        started.append(name)
        await gate.wait()
        return name

    async def main() -> bytes:
        gate = asyncio.Event()
        row = XMLString(f'<tr {NS}><td><t:slot name="x" /></td><td><t:slot name="y" /></td></tr>')
        (template,) = row.load()
        assert isinstance(template, Tag)
        tag = template.clone().fillSlots(x=fetch("x", gate), y=fetch("y", gate))
        root = [fetch("first", gate), tag, fetch("z", gate)]
        done = flattenString(None, root, concurrent=True)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert sorted(started) == ["first", "x", "y", "z"]
        gate.set()
        return await done

    assert asyncio.run(main()) == b"first<tr><td>x</td><td>y</td></tr>z"


def test_concurrent_does_not_read_generators_ahead() -> None:
    taken: list[int] = []

    def rows() -> Iterator[Any]:
        for n in range(3):
            taken.append(n)
            yield str(n)

    async def main() -> bytes:
        future = asyncio.get_running_loop().create_future()
        done = flattenString(None, [future, rows()], concurrent=True)
        await asyncio.sleep(0)
        assert taken == []
        future.set_result("f")
        return await done

    assert asyncio.run(main()) == b"f012"
