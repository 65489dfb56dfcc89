"""Live web UIs: elements that live on in the browser after the page loads.

Nevow Athena's idea in today's shape: a `LivePage` holds `LiveElement`\\ s; the page's
script (``hive-live.js``, served by a `LiveResource`) keeps one WebSocket to the server,
over which

- the page calls an element's ``@expose`` methods: ``hive.callRemote(node, "kick",
  "bob")`` in JavaScript is a Promise of the result (arguments checked against the
  method's annotations), or ``data-hive-click="kick"`` / ``data-hive-submit`` in markup;
- the element calls the page: ``await self.callRemote("flash", name)`` runs the function
  ``flash`` of the element's widget (``hive.widget("Clients", {flash(name) {...}})``);
- the element pushes itself: ``self.refresh()`` (or ``self.refresh("part")``) renders it
  again and the page takes the new HTML in (a morph: focus and typing survive);
- channels: ``self.subscribe("chat.lines")`` refreshes the element on every message
  published with ``hive.live.publish`` (hive.pubsub's bus when it is there: every worker).

A live channel opens only from a page hive rendered: the page's id and a token bound to
its session travel in the WebSocket handshake, with the Origin checked. The page finds its
elements again after a drop or a ``hive reload``: the client reconnects by itself, with
back-off, and any worker takes the page on from its record in the session store
(``liveState`` attributes and channels), pushing what changed while it was away.

::

    class Counter(LiveElement):
        liveState = ("count",)
        loader = HTMLString('<p t:render="liveElement"><t:slot name="count"/>'
                            ' <button data-hive-click="add">+1</button></p>')
        count = 0

        @renderer
        def liveElement(self, request, tag):
            return super().liveElement(request, tag).fillSlots(count=str(self.count))

        @expose
        def add(self) -> int:
            self.count += 1
            self.refresh()
            return self.count

The protocol is written down in `hive.live.protocol`.
"""

from hive.live._channel import LiveResource
from hive.live._element import (
    DETACHED_TIMEOUT,
    LiveElement,
    LiveError,
    LivePage,
    RemoteError,
    expose,
)
from hive.pubsub import publish

__all__ = [
    "DETACHED_TIMEOUT",
    "LiveElement",
    "LiveError",
    "LivePage",
    "LiveResource",
    "RemoteError",
    "expose",
    "publish",
]
