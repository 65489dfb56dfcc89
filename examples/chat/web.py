"""The chat server's control panel: live elements over the running ChatServer.

Four LiveElements on one LivePage, behind Basic authentication:

- ``Clients``: who is connected, with a kick button each (``data-hive-click``);
- ``Traffic``: the figures, pushed once a second;
- ``Log``: what was said, pushed as it is said;
- ``Broadcast``: a form whose submit calls an exposed method (``data-hive-submit``).

Operators log in with Basic authentication through hive.cred (a Portal whose realm gives
every operator the panel; Basic rather than Digest because browsers send the credentials
they hold with the panel's WebSocket handshake too). The chat server's events become
channel messages (``hive.live.publish``); each element
subscribes to its channels and is pushed again when one speaks.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, ClassVar

from zope.interface import implementer

from examples.chat.server import ChatServer, Event
from hive.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from hive.cred.portal import IRealm, Portal
from hive.guard import BasicCredentialFactory, HTTPAuthSessionWrapper
from hive.iweb import IRequest, IResource
from hive.live import LiveElement, LiveError, LivePage, LiveResource, expose, publish
from hive.resource import Resource
from hive.server import Site
from hive.static import Data
from hive.template import HTMLString, Tag, renderElement, renderer

__all__ = ["make_site"]

#: Published on by the chat's events and the ticker; the elements subscribe to them.
CLIENTS, LOG, TRAFFIC = "chat.clients", "chat.log", "chat.traffic"


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return str(count)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds // 60 % 60:02d}m"


class ChatElement(LiveElement):
    """An element of the panel: it reads the one ChatServer this process runs."""

    chat: ClassVar[ChatServer]


class Clients(ChatElement):
    jsClass = "Clients"
    loader = HTMLString("""
<section t:render="liveElement" class="card clients">
  <h2>Connected clients <span class="count" t:render="count"></span></h2>
  <table>
    <thead><tr><th>name</th><th>address</th><th>for</th><th>lines</th>
      <th>in</th><th>out</th><th></th></tr></thead>
    <tbody t:render="rows">
      <tr t:render="row"><t:attr name="data-hive-key"><t:slot name="name"></t:attr>
        <td class="name"><t:slot name="name"></td><td><t:slot name="peer"></td>
        <td><t:slot name="since"></td><td><t:slot name="lines"></td>
        <td><t:slot name="bytes_in"></td><td><t:slot name="bytes_out"></td>
        <td><button class="kick" data-hive-click="kick"><t:attr
          name="data-hive-args"><t:slot name="args"></t:attr>kick</button></td></tr>
    </tbody>
  </table>
</section>""")

    sharedRendering = True  # the same table for every page: rendered once a push

    def __init__(self) -> None:
        super().__init__()
        self.subscribe(CLIENTS)
        self.subscribe(LOG)  # the line counts
        self.subscribe(TRAFFIC)  # the durations

    @renderer
    def count(self, request: IRequest | None, tag: Tag) -> Tag:
        return tag(str(len(self.chat.clients)))

    @renderer
    def rows(self, request: IRequest | None, tag: Tag) -> Any:
        if not self.chat.clients:
            return Tag("tbody")(Tag("tr")(Tag("td", attributes={"colspan": "7"})("nobody yet")))
        return tag

    @renderer
    def row(self, request: IRequest | None, tag: Tag) -> Any:
        now = time.time()
        for name in sorted(self.chat.clients):
            client = self.chat.clients[name]
            yield tag.clone().fillSlots(
                name=client.name,
                peer=client.peer,
                since=_duration(now - client.since),
                lines=str(client.lines),
                bytes_in=_size(client.bytes_in),
                bytes_out=_size(client.bytes_out),
                args=f'["{client.name}"]',
            )

    @expose
    async def kick(self, name: str) -> bool:
        if not self.chat.kick(name):
            raise LiveError(f"{name} is not connected")
        # The page's own function: a flash on the row that is going, and a notice.
        await self.callRemote("kicked", name)
        return True


class Traffic(ChatElement):
    sharedRendering = True
    loader = HTMLString("""
<section t:render="liveElement" class="card traffic">
  <h2>Traffic</h2>
  <dl t:render="figures">
    <div><dt>clients</dt><dd class="clients"><t:slot name="clients"></dd></div>
    <div><dt>connections</dt><dd><t:slot name="connections"></dd></div>
    <div><dt>lines</dt><dd class="lines"><t:slot name="lines"></dd></div>
    <div><dt>lines/s</dt><dd><t:slot name="rate"></dd></div>
    <div><dt>in</dt><dd><t:slot name="bytes_in"></dd></div>
    <div><dt>out</dt><dd><t:slot name="bytes_out"></dd></div>
    <div><dt>up</dt><dd><t:slot name="up"></dd></div>
  </dl>
</section>""")

    #: Line counts of the last ten seconds (one per tick), for the rate.
    samples: ClassVar[deque[tuple[float, int]]] = deque(maxlen=11)

    def __init__(self) -> None:
        super().__init__()
        self.subscribe(TRAFFIC)
        self.subscribe(CLIENTS)

    @renderer
    def figures(self, request: IRequest | None, tag: Tag) -> Tag:
        chat = self.chat
        samples = self.samples
        rate = 0.0
        if len(samples) > 1:
            (t0, n0), (t1, n1) = samples[0], samples[-1]
            rate = (n1 - n0) / max(t1 - t0, 1e-9)
        return tag.fillSlots(
            clients=str(len(chat.clients)),
            connections=str(chat.connections),
            lines=str(chat.lines),
            rate=f"{rate:.1f}",
            bytes_in=_size(chat.bytes_in),
            bytes_out=_size(chat.bytes_out),
            up=_duration(time.time() - chat.started),
        )


class Log(ChatElement):
    sharedRendering = True
    loader = HTMLString("""
<section t:render="liveElement" class="card log">
  <h2>What was said</h2>
  <ol t:render="events"><li t:render="event"><time><t:slot name="at"></time>
    <b><t:slot name="who"></b> <span><t:slot name="text"></span></li></ol>
</section>""")

    def __init__(self) -> None:
        super().__init__()
        self.subscribe(LOG)

    @renderer
    def events(self, request: IRequest | None, tag: Tag) -> Tag:
        return tag

    @renderer
    def event(self, request: IRequest | None, tag: Tag) -> Any:
        shown = {
            "said": "{text}",
            "joined": "joined",
            "left": "left",
            "renamed": "was {text}",
            "kicked": "was kicked",
            "broadcast": "{text}",
        }
        for event in reversed(list(self.chat.history)[-20:]):
            yield tag.clone().fillSlots(
                at=time.strftime("%H:%M:%S", time.localtime(event.at)),
                who=event.name,
                text=shown.get(event.kind, event.kind).format(text=event.text),
            )


class Broadcast(ChatElement):
    loader = HTMLString("""
<section t:render="liveElement" class="card broadcast">
  <h2>Say to everyone</h2>
  <form data-hive-submit="broadcast"><input name="text" autocomplete="off"
    placeholder="a line for every client"> <button>broadcast</button></form>
</section>""")

    @expose
    def broadcast(self, text: str) -> int:
        text = text.strip()
        if not text:
            raise LiveError("say something first")
        return self.chat.broadcast(text)


class Panel(LivePage):
    loader = HTMLString("""<!-- the chat's control panel -->
<html lang="en"><head><meta charset="utf-8"><title>chat control panel</title>
<link rel="stylesheet" href="style.css">
<t:transparent t:render="liveglue"></t:transparent>
<script src="panel.js" defer></script>
</head><body>
<header><h1>chat control panel</h1><span class="state">live</span>
<span class="notice" id="notice"></span></header>
<main><div t:render="traffic"></div><div t:render="clients"></div>
<div t:render="broadcast"></div><div t:render="log"></div></main>
</body></html>""")

    liveURL = "_live"

    @renderer
    def traffic(self, request: IRequest | None, tag: Tag) -> Traffic:
        return Traffic()

    @renderer
    def clients(self, request: IRequest | None, tag: Tag) -> Clients:
        return Clients()

    @renderer
    def broadcast(self, request: IRequest | None, tag: Tag) -> Broadcast:
        return Broadcast()

    @renderer
    def log(self, request: IRequest | None, tag: Tag) -> Log:
        return Log()


class PanelPage(Resource):
    isLeaf = True

    def render_GET(self, request: IRequest) -> object:
        return renderElement(request, Panel(), doctype=b"<!DOCTYPE html>")


STYLE = b"""
body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #222; }
header { display: flex; align-items: baseline; gap: 1em; padding: .8em 1.5em;
  background: #1f2d3d; color: #fff; }
header h1 { font-size: 1.2em; margin: 0; }
.state { font-size: .8em; padding: .1em .6em; border-radius: 1em; background: #888; }
html[data-hive-state=connected] .state { background: #2e8b57; }
html[data-hive-state=connected] .state::after { content: ": connected"; }
html[data-hive-state=offline] .state { background: #c0392b; }
html[data-hive-state=offline] .state::after { content: ": reconnecting"; }
main { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; padding: 1em 1.5em; }
.card { background: #fff; border-radius: 6px; padding: .6em 1em 1em;
  box-shadow: 0 1px 3px #0002; }
.card h2 { font-size: 1em; margin: .3em 0 .6em; color: #1f2d3d; }
.clients, .traffic { grid-column: span 2; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid #eee; }
th { font-weight: 600; color: #666; font-size: .85em; }
dl { display: grid; grid-template-columns: repeat(7, 1fr); gap: .5em; margin: 0; }
dl div { background: #f4f5f7; border-radius: 4px; padding: .4em .6em; }
dt { font-size: .8em; color: #666; } dd { margin: 0; font-size: 1.3em; font-weight: 600; }
ol { list-style: none; padding: 0; margin: 0; max-height: 20em; overflow: auto; }
li { padding: .15em 0; border-bottom: 1px solid #f0f0f0; }
time { color: #999; font-size: .85em; margin-right: .5em; }
button { cursor: pointer; } button.kick { color: #c0392b; }
[data-hive-busy] { opacity: .5; }
.notice { color: #9fe0b5; font-size: .9em; }
tr.flash { background: #fdd; transition: background .5s; }
input[name=text] { width: 70%; padding: .3em; }
"""

SCRIPT = b"""
hive.widget("Clients", {
  kicked(name) {
    for (const cell of this.node.querySelectorAll("td.name")) {
      if (cell.textContent === name) cell.parentElement.classList.add("flash");
    }
    document.getElementById("notice").textContent = name + " was kicked";
    return true;
  },
});
"""


def make_site(
    chat: ChatServer, user: str, password: str, ticker: bool = True
) -> tuple[Site, asyncio.Task[None] | None]:
    """The panel's Site over ``chat`` (guarded by ``user`` / ``password``), and the task
    that publishes the traffic figures once a second."""
    ChatElement.chat = chat

    def on_event(event: Event) -> None:
        if event.kind in ("joined", "left", "renamed", "kicked"):
            publish(CLIENTS, event.kind)
        publish(LOG, event.kind)

    chat.on_event = on_event
    panel = Resource()
    panel.putChild(b"", PanelPage())
    panel.putChild(b"_live", LiveResource())
    panel.putChild(b"style.css", Data(STYLE, "text/css; charset=utf-8"))
    panel.putChild(b"panel.js", Data(SCRIPT, "text/javascript; charset=utf-8"))
    checker = InMemoryUsernamePasswordDatabaseDontUse(**{user: password})
    portal = Portal(_Operators(panel), [checker])
    guarded = HTTPAuthSessionWrapper(portal, [BasicCredentialFactory("chat control panel")])
    task = asyncio.get_running_loop().create_task(_tick(chat)) if ticker else None
    return Site(guarded), task


@implementer(IRealm)
class _Operators:
    """Every operator who logs in gets the panel (hive.cred's realm)."""

    def __init__(self, panel: Resource) -> None:
        self.panel = panel

    def requestAvatar(self, avatarId: bytes, mind: object, *interfaces: Any) -> Any:
        if IResource in interfaces:
            return IResource, self.panel, lambda: None
        raise NotImplementedError()


async def _tick(chat: ChatServer) -> None:
    while True:
        Traffic.samples.append((time.monotonic(), chat.lines))
        publish(TRAFFIC, "tick")
        await asyncio.sleep(1.0)
