"""Live pages in memory: the real Site, LivePage, LiveResource and WebSocket over the harness.

The page is loaded with a GET, its WebSocket opened with the page's credentials and
driven with websockets' own client codec (tests.unit.test_websocket's helpers).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Protocol, Side

from hive import pubsub
from hive.iweb import IRequest
from hive.live import LiveElement, LivePage, LiveResource, _element
from hive.live._channel import SCRIPT_VERSION
from hive.live.client import _Page
from hive.resource import Resource
from hive.server import Site
from hive.template import HTMLString, Tag, renderElement, renderer
from tests.live_app import Counter, root
from tests.unit.harness import Harness, run, settle
from tests.unit.test_websocket import handshake_bytes


@pytest.fixture(autouse=True)
def no_pages() -> Iterator[None]:
    _element._PAGES.clear()
    # Each test has a loop of its own: hive.pubsub's process bus is made again on it.
    pubsub.set_bus(None)
    yield
    _element._PAGES.clear()


class PageClient:
    """One browser tab, without the browser: a page load and its WebSocket."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.cookie = ""
        self.page = self.token = ""
        self.elements: list[tuple[str, str | None]] = []
        self.html = ""
        self.harness: Harness | None = None
        self.codec = Protocol(Side.CLIENT)
        self._seen = 0
        #: Text frames received.
        self.frames = 0

    def load(self, path: str = "/") -> str:
        harness = Harness(self.site)
        headers = {"Cookie": self.cookie} if self.cookie else {}
        response = harness.get(path, headers)
        assert response.status == 200, response
        cookie = response.header("set-cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        self.html = response.body.decode()
        parsed = _Page()
        parsed.feed(self.html)
        self.page = parsed.script["data-page"]
        self.token = parsed.script["data-token"]
        self.elements = parsed.elements
        return self.html

    def open(
        self,
        token: str | None = None,
        origin: str = "http://example.com",
        cookie: str | None = None,
        hello: bool = True,
    ) -> bytes:
        """The handshake; with ``hello``, the hello too. The response head."""
        self.harness = harness = Harness(self.site)
        self.codec = Protocol(Side.CLIENT)
        credentials = f"hive-page.{self.page}.{self.token if token is None else token}"
        headers = {
            "Sec-WebSocket-Protocol": f"hive-live.1, {credentials}",
            "Origin": origin,
            "Cookie": self.cookie if cookie is None else cookie,
        }
        harness.send(handshake_bytes("/_live", **headers))
        data = bytes(harness.transport.data)
        head, _, rest = data.partition(b"\r\n\r\n")
        self._seen = len(data)
        if rest:
            self.codec.receive_data(rest)
        if hello and head.startswith(b"HTTP/1.1 101"):
            self.send({"t": "hello", "els": [list(pair) for pair in self.elements]})
        return head

    def send(self, message: dict[str, Any] | str) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        self.codec.send_text(text.encode())
        assert self.harness is not None
        for data in self.codec.data_to_send():
            self.harness.send(data)

    def received(self) -> list[Any]:
        """Messages (dicts) and a Close, in order, since the last call."""
        assert self.harness is not None
        data = bytes(self.harness.transport.data)
        fresh, self._seen = data[self._seen :], len(data)
        if fresh:
            self.codec.receive_data(fresh)
        out: list[Any] = []
        for frame in self.codec.events_received():
            if not isinstance(frame, Frame):
                continue
            if frame.opcode is Opcode.TEXT:
                data = json.loads(bytes(frame.data))
                out += data if isinstance(data, list) else [data]
                self.frames += 1
            elif frame.opcode is Opcode.CLOSE:
                out.append(Close.parse(bytes(frame.data)))
        return out

    def kinds(self) -> list[Any]:
        return [m.get("t") if isinstance(m, dict) else m.code for m in self.received()]


def live(test: Callable[[PageClient], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Run ``test`` on a loop with a fresh tab on a fresh Site of tests.live_app."""

    def runner() -> None:
        async def main() -> None:
            await test(PageClient(Site(root)))

        run(main())

    runner.__name__ = test.__name__
    return runner


def element_id(tab: PageClient) -> str:
    return tab.elements[0][0]


# -- rendering -------------------------------------------------------------------------------


@live
async def test_the_page_carries_its_script_and_marks_its_elements(tab: PageClient) -> None:
    html = tab.load()
    assert f'src="/_live/hive-live.js?v={SCRIPT_VERSION}"' in html
    marked = r"<section (?=[^>]*data-hive-live=\"1\")(?=[^>]*data-hive-class=\"Counter\")"
    assert re.search(marked, html)
    assert tab.elements == [("1", None)]
    store = tab.site.sessionStore
    assert store is not None
    assert store.get(f"hive.live.{tab.page}") is not None
    # The session id stays out of the page and of the record.
    uid = tab.cookie.split("=", 1)[1]
    assert uid not in html
    assert uid not in store.get(f"hive.live.{tab.page}").data  # type: ignore[union-attr]


def test_a_live_element_outside_a_live_page_is_a_clear_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from hive.resource import Resource
    from hive.template import renderElement

    class Bare(Resource):
        isLeaf = True

        def render_GET(self, request: Any) -> object:
            return renderElement(request, Counter())

    async def main() -> None:
        harness = Harness(Site(Bare()))
        assert harness.get("/").status == 500

    with caplog.at_level(logging.ERROR):
        run(main())
    assert "render it inside a LivePage" in caplog.text


def test_the_script_is_served_and_cached_under_its_version() -> None:
    async def main() -> None:
        harness = Harness(Site(root))
        versioned = harness.get(f"/_live/hive-live.js?v={SCRIPT_VERSION}")
        assert versioned.status == 200
        assert versioned.header("content-type") == "text/javascript; charset=utf-8"
        assert "immutable" in (versioned.header("cache-control") or "")
        assert b"hive-live.1" in versioned.body
        assert "no-cache" in (harness.get("/_live/hive-live.js").header("cache-control") or "")

    run(main())


# -- the handshake ----------------------------------------------------------------------------


@live
async def test_the_page_connects_with_its_credentials(tab: PageClient) -> None:
    tab.load()
    head = tab.open()
    assert head.startswith(b"HTTP/1.1 101")
    assert re.search(rb"\r\nsec-websocket-protocol: hive-live.1(\r\n|$)", head.lower())
    assert tab.token.encode() not in head
    await settle()
    assert tab.kinds() == ["ready"]


@live
async def test_a_wrong_token_is_refused(tab: PageClient) -> None:
    tab.load()
    assert tab.open(token="x" + tab.token[1:]).startswith(b"HTTP/1.1 403")


@live
async def test_no_credentials_are_refused(tab: PageClient) -> None:
    tab.load()
    harness = Harness(tab.site)
    harness.send(
        handshake_bytes(
            "/_live",
            Sec_WebSocket_Protocol="hive-live.1",
            Origin="http://example.com",
            Cookie=tab.cookie,
        )
    )
    assert bytes(harness.transport.data).startswith(b"HTTP/1.1 403")


@live
async def test_another_session_cannot_open_the_page(tab: PageClient) -> None:
    tab.load()
    other = PageClient(tab.site)
    other.load()
    assert other.cookie != tab.cookie
    assert tab.open(cookie=other.cookie).startswith(b"HTTP/1.1 403")
    assert tab.open(cookie="").startswith(b"HTTP/1.1 403")


@live
async def test_another_origin_is_refused(tab: PageClient) -> None:
    tab.load()
    assert tab.open(origin="http://evil.example").startswith(b"HTTP/1.1 403")


@live
async def test_a_page_whose_session_ended_is_refused_and_the_check_says_so(
    tab: PageClient,
) -> None:
    tab.load()
    check = json.dumps({"page": tab.page, "token": tab.token}).encode()

    def checked() -> Any:
        harness = Harness(tab.site)
        request = (
            b"POST /_live/check HTTP/1.1\r\nHost: example.com\r\nCookie: "
            + tab.cookie.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(check)
            + check
        )
        harness.send(request)
        return json.loads(harness.response("POST").body)

    assert checked() == {"live": True}
    store = tab.site.sessionStore
    assert store is not None
    store.delete(tab.cookie.split("=", 1)[1])
    assert tab.open().startswith(b"HTTP/1.1 403")
    assert checked() == {"live": False}


# -- calls ------------------------------------------------------------------------------------


@live
async def test_a_call_answers_and_pushes(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    tab.received()
    tab.send({"t": "call", "id": 1, "el": element_id(tab), "m": "add", "a": [2]})
    await settle()
    result, push = tab.received()
    assert result["t"] == "result" and result["id"] == 1 and result["v"]["count"] == 2
    assert push["t"] == "html" and push["el"] == "1" and push["part"] is None
    assert '<output data-hive-part="count">2</output>' in push["html"]
    assert push["html"].startswith("<section ") and 'data-hive-live="1"' in push["html"]


@live
async def test_calls_that_do_not_fit_get_errors_not_tracebacks(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    tab.received()
    el = element_id(tab)
    calls: list[dict[str, Any]] = [
        {"el": el, "m": "add", "a": ["2"]},
        {"el": el, "m": "add", "k": {"times": 2}},
        {"el": el, "m": "nope"},
        {"el": el, "m": "refresh"},  # a method, but not exposed
        {"el": el, "m": "getState"},
        {"el": "99", "m": "add"},
        {"el": el, "m": "rename", "a": [""]},
    ]
    for number, call in enumerate(calls, 1):
        tab.send({"t": "call", "id": number, **call})
    await settle()
    errors = {m["id"]: m["e"] for m in tab.received()}
    assert errors[1] == {
        "name": "TypeError",
        "message": "Counter.add(): 'by' must be an integer, got a string",
    }
    assert errors[2]["message"] == "Counter.add() has no parameter 'times'"
    assert errors[3] == {"name": "LookupError", "message": "Counter exposes no method 'nope'"}
    assert errors[4]["name"] == errors[5]["name"] == "LookupError"
    assert errors[6] == {"name": "LookupError", "message": "no element 99"}
    assert errors[7] == {"name": "LiveError", "message": "a label, please"}
    assert all("Traceback" not in e["message"] for e in errors.values())


@live
async def test_an_unexpected_error_is_logged_and_named_only(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    tab.received()
    page = _element._PAGES[tab.page]
    counter = page.elements["1"]

    def broken(by: int = 1) -> None:
        raise KeyError("the secret database password")

    counter.add = broken  # type: ignore[attr-defined]
    broken.exposedThrough = [_element.expose]  # type: ignore[attr-defined]
    tab.send({"t": "call", "id": 1, "el": "1", "m": "add"})
    await settle()
    (error,) = tab.received()
    assert error["e"]["name"] == "KeyError"
    assert "secret" not in error["e"]["message"]


@live
async def test_a_message_that_is_not_the_protocol_closes_with_1008(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    tab.received()
    tab.send("{not json")
    await settle()
    assert tab.kinds() == [1008]


@live
async def test_the_server_calls_the_page(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    tab.received()
    tab.send({"t": "call", "id": 1, "el": "1", "m": "ask", "a": ["six times seven?"]})
    await settle()
    (call,) = tab.received()
    assert call == {"t": "call", "id": 1, "el": "1", "m": "answer", "a": ["six times seven?"]}
    tab.send({"t": "result", "id": call["id"], "v": 42})
    await settle()
    assert tab.received() == [{"t": "result", "id": 1, "v": 42}]
    # The page's function raising reaches the method as RemoteError, and the page as an error.
    tab.send({"t": "call", "id": 2, "el": "1", "m": "ask", "a": ["?"]})
    await settle()
    (call,) = tab.received()
    tab.send({"t": "error", "id": call["id"], "e": {"name": "TypeError", "message": "no"}})
    await settle()
    (answer,) = tab.received()
    assert answer["id"] == 2 and answer["e"]["name"] == "RemoteError"


# -- pushes -----------------------------------------------------------------------------------


@live
async def test_refreshes_in_one_turn_make_one_push(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    tab.received()
    counter = _element._PAGES[tab.page].elements["1"]
    assert isinstance(counter, Counter)
    for _ in range(5):
        counter.count += 1
        counter.refresh()
    counter.refresh("title")  # inside the whole one
    await settle()
    (push,) = tab.received()
    assert '<output data-hive-part="count">5</output>' in push["html"]


@live
async def test_a_part_is_pushed_alone(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    tab.received()
    tab.send({"t": "call", "id": 1, "el": "1", "m": "rename", "a": ["visits"]})
    await settle()
    result, push = tab.received()
    assert result == {"t": "result", "id": 1, "v": None}
    assert push == {
        "t": "html",
        "el": "1",
        "part": "title",
        "html": '<h2 data-hive-part="title">visits</h2>',
    }


@live
async def test_a_channel_message_reaches_the_element(tab: PageClient) -> None:
    from hive.live import publish

    tab.load()
    tab.open()
    await settle()
    tab.received()
    publish("news", "extra")
    await settle()
    (push,) = tab.received()
    assert push["part"] == "title" and "extra" in push["html"]


@live
async def test_pushes_wait_while_the_client_does_not_read(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    tab.received()
    assert tab.harness is not None
    tab.harness.driven.pause_writing(0.0)
    counter = _element._PAGES[tab.page].elements["1"]
    assert isinstance(counter, Counter)
    for count in (1, 2, 3):
        counter.count = count
        counter.refresh()
        await settle()
    assert tab.received() == []
    tab.harness.driven.resume_writing()
    await settle()
    (push,) = tab.received()
    assert '<output data-hive-part="count">3</output>' in push["html"]


# -- reconnection -----------------------------------------------------------------------------


@live
async def test_a_reconnected_page_finds_its_element_and_what_it_missed(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    tab.received()
    first = tab.harness
    assert first is not None
    first.driven.connection_lost(None)
    counter = _element._PAGES[tab.page].elements["1"]
    assert isinstance(counter, Counter)
    counter.count = 9
    counter.refresh()  # while away: pushed when the page is back
    tab.open()
    await settle()
    ready, push = tab.received()
    assert ready == {"t": "ready"}
    assert '<output data-hive-part="count">9</output>' in push["html"]


@live
async def test_another_worker_rebuilds_the_page_from_the_session(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    tab.send({"t": "call", "id": 1, "el": "1", "m": "add", "a": [4]})
    tab.send({"t": "call", "id": 2, "el": "1", "m": "rename", "a": ["kept"]})
    await settle()
    tab.received()
    assert tab.harness is not None
    tab.harness.driven.connection_lost(None)
    _element._PAGES.clear()  # what another worker (or this one after a reload) holds
    tab.open()
    await settle()
    ready, push = tab.received()
    assert ready == {"t": "ready"}
    assert '<output data-hive-part="count">4</output>' in push["html"] and "kept" in push["html"]
    rebuilt = _element._PAGES[tab.page].elements["1"]
    assert isinstance(rebuilt, Counter) and rebuilt.count == 4
    tab.send({"t": "call", "id": 3, "el": "1", "m": "add"})
    await settle()
    assert tab.received()[0]["v"]["count"] == 5
    # Its channel came back with it.
    from hive.live import publish

    publish("news", "again")
    await settle()
    assert "again" in tab.received()[0]["html"]


@live
async def test_a_new_connection_takes_the_page_from_the_old(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    old = tab.harness
    old_codec = tab.codec
    tab.open()
    await settle()
    assert old is not None
    old_codec.receive_data(bytes(old.transport.data).partition(b"\r\n\r\n")[2])
    closes = [
        f for f in old_codec.events_received() if isinstance(f, Frame) and f.opcode is Opcode.CLOSE
    ]
    assert Close.parse(bytes(closes[0].data)).code == 4409


@live
async def test_a_page_stale_here_is_rebuilt_from_the_newer_record(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    assert tab.harness is not None
    tab.harness.driven.connection_lost(None)
    stale = _element._PAGES[tab.page]
    # Another worker took the page on and counted to 7 meanwhile.
    _element._PAGES.clear()
    tab.open()
    await settle()
    tab.send({"t": "call", "id": 1, "el": "1", "m": "add", "a": [7]})
    await settle()
    newer = _element._PAGES.pop(tab.page)
    assert tab.harness is not None
    tab.harness.driven.connection_lost(None)
    _element._PAGES[tab.page] = stale
    tab.received()
    tab.open()
    await settle()
    assert stale.dropped
    assert '<output data-hive-part="count">7</output>' in tab.received()[1]["html"]
    assert newer is not _element._PAGES[tab.page]


@live
async def test_elements_the_page_no_longer_has_are_let_go(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    page = _element._PAGES[tab.page]
    tab.send({"t": "gone", "els": ["1"]})
    await settle()
    assert page.elements == {}


@live
async def test_a_worker_that_lost_the_page_does_not_write_over_its_record(
    tab: PageClient,
) -> None:
    tab.load()
    tab.open()
    await settle()
    here = _element._PAGES.pop(tab.page)
    tab.open()  # the page's next connection lands on another worker
    await settle()
    tab.send({"t": "call", "id": 1, "el": "1", "m": "add", "a": [3]})
    await settle()
    counter = here.elements["1"]
    assert isinstance(counter, Counter)
    counter.count = 100  # a channel message on the worker that lost the page
    here.save()
    assert here.dropped
    store = tab.site.sessionStore
    assert store is not None
    record = store.get(f"hive.live.{tab.page}")
    assert record is not None and '"count":3' in record.data


@live
async def test_a_rebuilt_page_pushes_its_outermost_elements_whatever_else_the_page_lists(
    tab: PageClient,
) -> None:
    tab.load()
    _element._PAGES.clear()
    # A page that marks other nodes too: only elements the server knows are parents.
    tab.elements = [("elsewhere", None), ("1", "elsewhere")]
    tab.open()
    await settle()
    ready, push = tab.received()
    assert ready == {"t": "ready"} and push["el"] == "1" and push["part"] is None


@live
async def test_the_pushes_of_one_turn_go_in_one_frame(tab: PageClient) -> None:
    tab.load()
    tab.open()
    await settle()
    tab.received()
    counter = _element._PAGES[tab.page].elements["1"]
    assert isinstance(counter, Counter)
    counter.count = 8
    counter.label = "eight"
    counter.refresh("count")
    counter.refresh("title")
    frames = tab.frames
    await settle()
    pushes = tab.received()
    assert tab.frames == frames + 1
    assert [(p["part"], p["html"]) for p in pushes] == [
        ("count", '<output data-hive-part="count">8</output>'),
        ("title", '<h2 data-hive-part="title">eight</h2>'),
    ]


class Shown(LiveElement):
    """Shows what every page shows: rendered once a turn, for all of them."""

    sharedRendering = True
    renders = 0
    value = "a"
    loader = HTMLString('<p t:render="liveElement"><t:slot name="value"></t:slot></p>')

    @renderer
    def liveElement(self, request: IRequest | None, tag: Tag) -> Tag:
        Shown.renders += 1
        return super().liveElement(request, tag).fillSlots(value=Shown.value)


class ShownPage(LivePage):
    loader = HTMLString(
        '<html><head><t:transparent t:render="liveglue"></t:transparent></head>'
        '<body><i>x</i><div t:render="both"></div></body></html>'
    )

    @renderer
    def both(self, request: IRequest | None, tag: Tag) -> list[LiveElement]:
        return [Counter(), Shown()]


def test_a_shared_rendering_is_made_once_for_every_page() -> None:
    site_root = Resource()

    class Home(Resource):
        isLeaf = True

        def render_GET(self, request: Any) -> object:
            return renderElement(request, ShownPage())

    site_root.putChild(b"", Home())
    site_root.putChild(b"_live", LiveResource())

    async def main() -> None:
        site = Site(site_root)
        tabs = [PageClient(site) for _ in range(3)]
        for tab in tabs:
            tab.load()
            tab.open()
        await settle()
        for tab in tabs:
            assert tab.kinds() == ["ready"]
        Shown.renders = 0
        Shown.value = "b"
        elements = [e for p in _element._PAGES.values() for e in p.elements.values()]
        for element in elements:
            if isinstance(element, Shown):
                element.refresh()
        await settle()
        assert Shown.renders == 1
        for tab in tabs:
            (push,) = tab.received()
            shown_id = tab.elements[1][0]
            assert push["el"] == shown_id
            assert push["html"] == f'<p data-hive-live="{shown_id}">b</p>'

    run(main())
