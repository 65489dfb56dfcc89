"""The resource tree's one walk, and Twisted's interfaces as zope.interface Interfaces."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from zope.interface import Interface, implementer
from zope.interface.verify import verifyClass, verifyObject

from hive.iweb import IRequest, IResource
from hive.resource import (
    EncodingResourceWrapper,
    NoResource,
    Resource,
    fixed_descendant,
    getChildForRequest,
)
from hive.server import GzipEncoderFactory, Request, Site
from tests.unit.harness import Harness, run


class FakeWalk:
    """Only what the walk reads and writes of a request: its two path lists."""

    def __init__(self, path: bytes) -> None:
        self.prepath: list[bytes] = []
        self.postpath = path[1:].split(b"/")


class Leaf(Resource):
    isLeaf = True


class Dynamic(Resource):
    """Makes a child for any name: ``getChild`` may read the request."""

    def getChild(self, path: bytes, request: Any) -> Any:
        child = Resource()
        child.putChild(b"x", Leaf())
        return child


class AsyncDynamic(Resource):
    async def getChild(self, path: bytes, request: Any) -> Any:
        await asyncio.sleep(0)
        return self.children.get(b"fixed") or NoResource()


class Own(Resource):
    def getChildWithDefault(self, path: bytes, request: Any) -> Any:
        return super().getChildWithDefault(path, request)


def tree() -> Resource:
    root = Resource()
    a = Resource()
    root.putChild(b"a", a)
    a.putChild(b"b", Leaf())
    root.putChild(b"dyn", Dynamic())
    slow = AsyncDynamic()
    slow.putChild(b"fixed", a)
    root.putChild(b"slow", slow)
    own = Own()
    own.putChild(b"b", Leaf())
    root.putChild(b"own", own)
    return root


def test_walk_moves_segments_from_postpath_to_prepath_and_stops_at_a_leaf() -> None:
    request = FakeWalk(b"/a/b/c/d")
    found = getChildForRequest(tree(), request)  # type: ignore[arg-type]
    assert isinstance(found, Leaf)
    assert request.prepath == [b"a", b"b"]
    assert request.postpath == [b"c", b"d"]


def test_walk_through_getchild_and_a_missing_child() -> None:
    request = FakeWalk(b"/dyn/anything/x")
    assert isinstance(getChildForRequest(tree(), request), Leaf)  # type: ignore[arg-type]
    request = FakeWalk(b"/nope")
    assert isinstance(getChildForRequest(tree(), request), NoResource)  # type: ignore[arg-type]


def test_walk_through_an_async_getchild_returns_an_awaitable_that_goes_on() -> None:
    request = FakeWalk(b"/slow/whatever/b/rest")
    pending = getChildForRequest(tree(), request)  # type: ignore[arg-type]
    assert asyncio.iscoroutine(pending)
    found = run(pending)
    assert isinstance(found, Leaf)
    assert request.prepath == [b"slow", b"whatever", b"b"]
    assert request.postpath == [b"rest"]


def test_site_walk_is_the_same_walk() -> None:
    site = Site(tree())
    seen = {}

    class Probe(Leaf):
        def render_GET(self, request: Request) -> bytes:
            seen["prepath"] = list(request.prepath)
            seen["postpath"] = list(request.postpath)
            return b"ok"

    site.resource.children[b"a"].putChild(b"p", Probe())  # type: ignore[attr-defined]
    assert Harness(site).get("/a/p/q").status == 200
    assert seen == {"prepath": [b"a", b"p"], "postpath": [b"q"]}


@pytest.mark.parametrize(
    ("segments", "expect"),
    [
        ([b"a", b"b"], Leaf),
        ([b"a", b"b", b"beyond", b"the", b"leaf"], Leaf),
        ([b"a"], Resource),
        ([b"missing"], None),
        ([b"dyn", b"x"], None),  # no fixed child x: a getChild would make it
        ([b"slow", b"fixed"], Resource),  # fixed children come before getChild
        ([b"own", b"b"], None),  # its own getChildWithDefault may read the request
    ],
)
def test_fixed_descendant_follows_putchild_children_only(
    segments: list[bytes], expect: type | None
) -> None:
    found = fixed_descendant(tree(), segments)
    if expect is None:
        assert found is None
    else:
        assert type(found) is expect


# -- interfaces ------------------------------------------------------------------------------


def test_hive_classes_provide_twisteds_interfaces() -> None:
    assert verifyClass(IResource, Resource)
    assert verifyClass(IRequest, Request)
    assert IResource.providedBy(Resource())
    assert IResource.providedBy(EncodingResourceWrapper(Resource(), [GzipEncoderFactory()]))
    assert not IResource.providedBy(object())


def test_a_real_request_verifies_against_irequest() -> None:
    captured: list[Request] = []

    class Capture(Leaf):
        def render_GET(self, request: Request) -> bytes:
            captured.append(request)
            return b""

    Harness(Capture()).get("/")
    # verifyObject checks the methods and the Attribute()-declared attributes.
    assert verifyObject(IRequest, captured[0])


def test_implementer_and_adapters_work_on_hive_interfaces() -> None:
    """What Twisted programs do with interfaces: declare, ask, adapt."""

    class ICounter(Interface):
        pass

    @implementer(IResource)
    class Mine:
        isLeaf = True

        def getChildWithDefault(self, name: bytes, request: IRequest) -> Any:
            return self

        def putChild(self, path: bytes, child: IResource) -> None:
            pass

        def render(self, request: IRequest) -> bytes:
            return b"mine"

    assert IResource.providedBy(Mine())
    assert IResource.implementedBy(Mine)
    assert ICounter(Mine(), None) is None  # no adapter registered: the default
    root = Resource()
    root.putChild(b"mine", Mine())
    assert Harness(root).get("/mine").body == b"mine"
