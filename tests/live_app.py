"""A site with live elements for the tests under ``hive run`` (tests.live_app:root).

``Counter`` keeps its count in ``liveState`` (so any worker can take the page on);
``/publish?channel=...`` publishes on a channel from whichever worker takes it.
"""

from __future__ import annotations

import os
from typing import Any

from hive.iweb import IRequest
from hive.live import LiveElement, LiveError, LivePage, LiveResource, expose, publish
from hive.resource import Resource
from hive.template import HTMLString, Tag, renderElement, renderer


class Counter(LiveElement):
    jsClass = "Counter"
    liveState = ("count", "label")
    loader = HTMLString(
        '<section t:render="liveElement" class="counter">'
        '<h2 data-hive-part="title" t:render="title"></h2>'
        '<output data-hive-part="count" t:render="shown"></output>'
        ' <button class="add" data-hive-click="add">+1</button>'
        ' <small class="pid" t:render="pid"></small></section>'
    )

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.label = "count"
        self.subscribe("news", self.news)

    @renderer
    def title(self, request: IRequest | None, tag: Tag) -> Tag:
        return tag(self.label)

    @renderer
    def shown(self, request: IRequest | None, tag: Tag) -> Tag:
        return tag(str(self.count))

    @renderer
    def pid(self, request: IRequest | None, tag: Tag) -> Tag:
        return tag(str(os.getpid()))

    @expose
    def add(self, by: int = 1) -> dict[str, int]:
        self.count += by
        self.refresh()
        return {"count": self.count, "pid": os.getpid()}

    @expose
    def rename(self, label: str) -> None:
        if not label:
            raise LiveError("a label, please")
        self.label = label
        self.refresh("title")

    @expose
    async def ask(self, question: str) -> Any:
        return await self.callRemote("answer", question)

    def news(self, message: Any) -> None:
        self.label = message.text
        self.refresh("title")


class Page(LivePage):
    loader = HTMLString(
        '<html><head><meta charset="utf-8"><title>live</title>'
        '<t:transparent t:render="liveglue"></t:transparent></head>'
        '<body><div t:render="counter"></div></body></html>'
    )

    @renderer
    def counter(self, request: IRequest | None, tag: Tag) -> Counter:
        return Counter()


class Home(Resource):
    isLeaf = True

    def render_GET(self, request: IRequest) -> object:
        return renderElement(request, Page())


class Publish(Resource):
    isLeaf = True

    def render_POST(self, request: IRequest) -> bytes:
        channel = request.args[b"channel"][0].decode()
        publish(channel, request.content.read().decode())
        return b"published by %d\n" % os.getpid()


root = Resource()
root.putChild(b"", Home())
root.putChild(b"_live", LiveResource())
root.putChild(b"publish", Publish())
