"""LiveElement, expose, LivePage, and the pages this process holds.

A `LivePage` renders as any Element does (``renderElement(request, page)``); while it
renders, every `LiveElement` in it joins the page's `Page` (found through a context
variable, which the walk's tasks inherit), gets an id and marks its root tag with
``data-hive-live``. When the walk reaches the page's end, the page's record goes to the
session store (hive.live._records) and the page waits here for its WebSocket.

A `Page` is held in this process while a connection is attached, and for
`DETACHED_TIMEOUT` seconds after it goes (a network drop, a reload of the browser
page...); its elements keep handling channel messages meanwhile, and what they would
have pushed is pushed when the page comes back. Past that, or when the connection lands
on another worker, the page is rebuilt from its record: each element by its class
(``fromState``), with its state and its channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

from hive import pubsub
from hive.iweb import IRequest, ITemplateLoader
from hive.live import _records as records
from hive.live import protocol
from hive.live._args import parameters_of
from hive.resource import isawaitable
from hive.session import Session, site_sessions
from hive.template import Element, Expose, Tag, renderer, tags
from hive.template._flatten import DONE, Walk

if TYPE_CHECKING:
    from hive.live._channel import LiveProtocol

__all__ = [
    "DETACHED_TIMEOUT",
    "LiveElement",
    "LiveError",
    "LivePage",
    "Page",
    "RemoteError",
    "expose",
]

log = logging.getLogger("hive.live")

_F = TypeVar("_F", bound=Callable[..., object])
_E = TypeVar("_E", bound="LiveElement")

#: Seconds a page without a connection is held in memory (a page never connected too).
DETACHED_TIMEOUT: Final = 60.0
#: The page's session (and record) is extended at most this often while it is in use.
TOUCH_INTERVAL: Final = 60.0

#: Every LiveElement class by "module.QualName": a record names one of these, nothing else.
_CLASSES: dict[str, type[LiveElement]] = {}
#: The pages of this process, by page id.
_PAGES: dict[str, Page] = {}
#: (request, page) while a page or a push renders: how an element finds its page.
_RENDERING: contextvars.ContextVar[tuple[object, Page] | None] = contextvars.ContextVar(
    "hive_live_rendering", default=None
)
#: The element being rendered once for every page (sharedRendering), if one is.
_SHARING: contextvars.ContextVar[LiveElement | None] = contextvars.ContextVar(
    "hive_live_sharing", default=None
)


class LiveError(Exception):
    """Raise it in an exposed method for an error the page is meant to see: its message
    goes to the page as it is. Other exceptions are logged, and the page is told only
    their class name (a message may hold what the page should not see)."""


class RemoteError(Exception):
    """The page's function raised (``name``: the JavaScript error's name)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


expose = Expose()
expose.__doc__ = """Decorate a LiveElement's method to let the page call it.

    @expose
    async def kick(self, name: str) -> bool: ...

In the page, ``hive.callRemote(node, "kick", "bob")`` is a Promise of the result. Only
exposed methods are callable; arguments are JSON, checked against the annotations
(hive.live._args lists the types), results are JSON.
"""


class LiveElement(Element):
    """An Element that lives on in the browser: exposed methods, pushes, channels.

    Class attributes:

    - ``jsClass``: the name of the page's widget (``hive.widget(name, {...})`` in
      JavaScript) whose functions ``callRemote`` calls;
    - ``liveState``: the attributes (JSON values) saved to the session after every call
      and channel message, and set again when the element is rebuilt on another worker;
    - ``sharedRendering``: every element of the class renders the same HTML at a given
      moment (it shows the program's state, not its own, and holds no LiveElements): a
      push renders it once per turn of the loop for all the pages that show it.

    The root tag of the template may name the ``liveElement`` renderer (Athena's way);
    otherwise the template is wrapped in a ``<div>`` that carries the element's id.
    """

    jsClass: ClassVar[str | None] = None
    liveState: ClassVar[tuple[str, ...]] = ()
    sharedRendering: ClassVar[bool] = False

    page: Page | None
    liveId: str | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _CLASSES[f"{cls.__module__}.{cls.__qualname__}"] = cls
        for name in dir(cls):
            method = getattr(cls, name, None)
            if method is not None and expose in getattr(method, "exposedThrough", ()):
                # An annotation may name what is defined later: then checked at first call.
                with contextlib.suppress(NameError):
                    parameters_of(method, f"{cls.__name__}.{name}")

    def __init__(self, loader: ITemplateLoader | None = None) -> None:
        super().__init__(loader)
        self.page = None
        self.liveId = None
        self._channels: dict[str, str] = {}
        self._listeners: dict[str, pubsub.Subscription] = {}

    # -- rendering ---------------------------------------------------------------------------

    def render(self, request: IRequest | None) -> Any:
        sharing = _SHARING.get()
        if sharing is not None:
            if sharing is not self:
                raise RuntimeError(
                    f"{type(sharing).__name__} has sharedRendering: it holds no LiveElements"
                )
        else:
            current = _RENDERING.get()
            if current is None or current[0] is not request:
                raise RuntimeError(
                    f"{type(self).__name__} is a LiveElement: render it inside a LivePage"
                    " (renderElement(request, page)), where the page's script can reach it"
                )
            current[1].register(self)
        nodes = super().render(request)
        items = nodes if isinstance(nodes, list) else [nodes]
        roots = [n for n in items if not (isinstance(n, str) and not n.strip())]
        if len(roots) == 1 and isinstance(roots[0], Tag) and roots[0].render == "liveElement":
            return nodes
        return tags.div(*items, render="liveElement")

    @renderer
    def liveElement(self, request: IRequest | None, tag: Tag) -> Tag:
        """Marks the element's root tag: its id, and its widget's class for the page."""
        tag(**{"data-hive-live": self.liveId or ""})
        if self.jsClass:
            tag(**{"data-hive-class": self.jsClass})
        return tag

    # -- what an element does ----------------------------------------------------------------

    def refresh(self, part: str | None = None) -> asyncio.Future[None]:
        """Render the element again (or only its part ``part``, the tag with that
        ``data-hive-part``) and push the HTML to the page.

        Refreshes are gathered: any number in one turn of the loop make one push, and a
        page that is away or not reading gets the latest when it is back. The future is
        done once the push is written (or the page is gone).
        """
        page = self.page
        if page is None:
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return page.schedule(self, part)

    async def callRemote(self, name: str, *args: Any) -> Any:
        """Call the page's function ``name`` of this element's widget; its result.

        RemoteError if it raised; ConnectionError if the page is not connected."""
        page = self.page
        if page is None:
            raise ConnectionError(f"{type(self).__name__} is on no page")
        return await page.call_remote(self, name, list(args))

    def subscribe(self, channel: str, handler: Callable[[Any], object] | None = None) -> None:
        """Handle the messages of a pubsub ``channel`` with ``handler(message)``, one of
        this element's methods (may be async); without one, each message refreshes the
        element. Kept with the element's state: a rebuilt element is subscribed again."""
        if handler is None:
            name = ""
        else:
            name = getattr(handler, "__name__", "")
            if getattr(handler, "__self__", None) is not self or not name:
                raise TypeError("a channel's handler is a method of the element")
        self._channels[channel] = name
        if self.page is not None and channel not in self._listeners:
            self._listen(channel)

    def unsubscribe(self, channel: str) -> None:
        self._channels.pop(channel, None)
        listener = self._listeners.pop(channel, None)
        if listener is not None:
            listener.close()

    # -- hooks -------------------------------------------------------------------------------

    def connected(self) -> Any:
        """The page's WebSocket is attached (first, or again after a drop); may be async."""

    def disconnected(self) -> Any:
        """The page's WebSocket went away; it may come back. May be async."""

    def detached(self) -> Any:
        """The element left this process for good (the page closed, was replaced or moved
        to another worker): let go of what it holds. May be async."""

    # -- state -------------------------------------------------------------------------------

    def getState(self) -> dict[str, Any]:
        """What is saved of the element: its ``liveState`` attributes."""
        return {name: getattr(self, name) for name in self.liveState if hasattr(self, name)}

    @classmethod
    def fromState(cls: type[_E], state: dict[str, Any]) -> _E:
        """The element rebuilt on another worker: ``cls()`` with the saved attributes set.
        A class whose constructor needs arguments overrides this."""
        element = cls()
        for name, value in state.items():
            if name in cls.liveState:
                setattr(element, name, value)
        return element

    # -- inside ------------------------------------------------------------------------------

    def _listen(self, channel: str) -> None:
        def on_message(message: Any) -> None:
            page = self.page
            if page is not None:
                page.handle_message(self, channel, message)

        self._listeners[channel] = pubsub.listen(channel, on_message)

    def _stop_listening(self) -> None:
        listeners, self._listeners = self._listeners, {}
        for listener in listeners.values():
            listener.close()


class LivePage(Element):
    """A page that holds LiveElements: put ``t:render="liveglue"`` in its ``<head>`` (the
    script that keeps the page's elements alive), render it with ``renderElement``.

    ``liveURL``: where the `LiveResource` is mounted (relative URLs are taken from the
    page's own URL). A new LivePage per request: each rendering is one page.
    """

    liveURL: str = "/_live"

    def __init__(self, loader: ITemplateLoader | None = None) -> None:
        super().__init__(loader)
        self._page: Page | None = None

    def render(self, request: IRequest | None) -> Any:
        if request is None:
            raise RuntimeError("a LivePage is rendered for a request (renderElement)")
        page = self._page = Page.new(request)
        _RENDERING.set((request, page))
        return [super().render(request), _PageEnd(page)]

    @renderer
    def liveglue(self, request: IRequest | None, tag: Tag) -> Tag:
        """The script tag of the live client, with the page's id and token."""
        from hive.live._channel import SCRIPT_VERSION

        page = self._page
        if page is None:
            raise RuntimeError("liveglue renders inside a LivePage")
        base = self.liveURL.rstrip("/")
        return tags.script(
            src=f"{base}/hive-live.js?v={SCRIPT_VERSION}",
            defer="",
            **{"data-url": base, "data-page": page.id, "data-token": page.token},
        )


class _PageEnd:
    """The last node of a LivePage: every element has joined; the record is saved."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def render(self, request: Any) -> str:
        self.page.rendered()
        return ""

    def lookupRenderMethod(self, name: str) -> Any:
        raise KeyError(name)


class _Part:
    """A part of an element (its tag with ``data-hive-part``) as a renderable."""

    def __init__(self, element: LiveElement, tag: Tag) -> None:
        self.element = element
        self.tag = tag

    def render(self, request: Any) -> Tag:
        return self.tag

    def lookupRenderMethod(self, name: str) -> Any:
        return self.element.lookupRenderMethod(name)


def _find_part(nodes: Any, name: str) -> Tag | None:
    stack = list(nodes) if isinstance(nodes, list) else [nodes]
    while stack:
        node = stack.pop(0)
        if isinstance(node, Tag):
            if node.attributes.get("data-hive-part") == name:
                return node
            stack[:0] = node.children
        elif isinstance(node, list | tuple):
            stack[:0] = list(node)
    return None


class Page:
    """One rendering of a LivePage, as this process holds it."""

    def __init__(
        self,
        page_id: str,
        token: str,
        session_uid: bytes,
        session_timeout: float,
        site: Any,
    ) -> None:
        self.id = page_id
        self.token = token
        self.session_uid = session_uid
        self.session_timeout = session_timeout
        self.site = site
        self.sessions = site_sessions(site)
        self.loop = asyncio.get_running_loop()
        self.elements: dict[str, LiveElement] = {}
        self.next_id = 1
        #: The connection that wrote the record last; another one means the page moved.
        self.owner = ""
        self.connection: LiveProtocol | None = None
        self.paused = False
        self.stored = False
        self.dropped = False
        self._saved = ""  # the record's elements as last written
        self._dirty: dict[str, set[str] | None] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._flush_handle: asyncio.Handle | None = None
        self._batch: list[str] | None = None
        self._sent: dict[tuple[str, str | None], int] = {}
        self._pushes = 0
        self._calls = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._touched = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._hold()

    @classmethod
    def new(cls, request: IRequest) -> Page:
        session: Session = request.getSession()
        page = cls(
            secrets.token_urlsafe(16),
            records.new_token(),
            session.uid,
            session.sessionTimeout,
            request.site,
        )
        _PAGES[page.id] = page
        return page

    @classmethod
    def rebuild(
        cls, page_id: str, record: records.PageRecord, session: Session, site: Any
    ) -> Page | None:
        """The page made again from its record; None if an element cannot be."""
        page = cls(page_id, record.token, session.uid, session.sessionTimeout, site)
        page.next_id = record.next_id
        page.stored = True
        for element_id, saved in record.elements.items():
            element_class = _CLASSES.get(saved.cls)
            if element_class is None:
                log.warning("cannot rebuild live page: no LiveElement class %s here", saved.cls)
                page.drop()
                return None
            try:
                element = element_class.fromState(dict(saved.state))
            except Exception:
                log.exception(
                    "cannot rebuild %s from its state (a constructor that takes arguments"
                    " needs a fromState classmethod)",
                    saved.cls,
                )
                page.drop()
                return None
            element._channels = dict(saved.channels)
            element.liveId = element_id
            page._adopt(element)
        page._saved = page._elements_text()
        _PAGES[page_id] = page
        return page

    # -- elements ----------------------------------------------------------------------------

    def register(self, element: LiveElement) -> None:
        """``element`` renders on this page: give it an id, start its channels."""
        if element.page is self and element.liveId in self.elements:
            return
        if element.page is not None and element.page is not self:
            element.page.unregister(element)
        element.liveId = str(self.next_id)
        self.next_id += 1
        self._adopt(element)

    def _adopt(self, element: LiveElement) -> None:
        assert element.liveId is not None
        element.page = self
        self.elements[element.liveId] = element
        for channel in element._channels:
            if channel not in element._listeners:
                element._listen(channel)

    def unregister(self, element: LiveElement) -> None:
        if element.liveId is not None and self.elements.get(element.liveId) is element:
            del self.elements[element.liveId]
        element._stop_listening()
        element.page = None
        _hook(element, element.detached, "detached")

    # -- the record --------------------------------------------------------------------------

    def _elements_text(self) -> str:
        return self.record().dumps()

    def record(self) -> records.PageRecord:
        saved: dict[str, records.ElementRecord] = {}
        for element_id, element in self.elements.items():
            key = f"{type(element).__module__}.{type(element).__qualname__}"
            saved[element_id] = records.ElementRecord(
                key, element.getState(), dict(element._channels)
            )
        return records.PageRecord(
            self.token,
            records.session_hash(self.session_uid),
            self.owner,
            self.next_id,
            saved,
        )

    def _expires_at(self) -> float:
        return self.sessions.clock() + self.session_timeout

    def rendered(self) -> None:
        """The page's walk reached its end: store the record for any worker to find."""
        _RENDERING.set(None)
        self.save(create=True)

    def save(self, create: bool = False) -> None:
        """Write the record if it changed; a page another connection took is dropped."""
        try:
            text = self._elements_text()
        except (TypeError, ValueError) as exc:
            log.error("live element state is not JSON, not saved: %s", exc)
            return
        if text == self._saved and not create:
            return
        store = self.sessions.store
        if self.stored and not create:
            found = records.load(store, self.id, self.sessions.clock())
            if found is None or found.owner != self.owner:
                log.info("live page %s moved to another connection; dropped here", self.id)
                self.drop(protocol.CLOSE_MOVED)
                return
        if records.save(store, self.id, self.record(), self._expires_at(), create=create):
            self.stored = True
            self._saved = text

    def take_over(self, owner: str) -> None:
        """A new connection holds the page: say so in the record (whoever held it)."""
        self.owner = owner
        record = self.record()
        store = self.sessions.store
        if records.save(store, self.id, record, self._expires_at(), create=not self.stored):
            self.stored = True
            self._saved = record.dumps()

    def touch(self) -> bool:
        """Extend the session and the record (at most every TOUCH_INTERVAL); False if the
        session has ended."""
        now = time.monotonic()
        if now - self._touched < TOUCH_INTERVAL:
            return True
        self._touched = now
        try:
            session = self.site.getSession(self.session_uid)
        except KeyError:
            return False
        session.save()
        self.sessions.store.touch(records.key_of(self.id), self._expires_at())
        return True

    # -- the connection ----------------------------------------------------------------------

    def attach(self, connection: LiveProtocol) -> None:
        old = self.connection
        if old is not None and old is not connection:
            old.close(protocol.CLOSE_MOVED, "the page connected again")
        self.connection = connection
        self.paused = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for element in list(self.elements.values()):
            _hook(element, element.connected, "connected")
        self._schedule_flush()

    def detach(self, connection: LiveProtocol) -> None:
        if self.connection is not connection:
            return
        self.connection = None
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the page's connection closed"))
        for element in list(self.elements.values()):
            _hook(element, element.disconnected, "disconnected")
        self._hold()

    def _hold(self) -> None:
        """Keep the page DETACHED_TIMEOUT seconds for its connection to come (back)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(DETACHED_TIMEOUT, self._expired)

    def _expired(self) -> None:
        self._timer = None
        if self.connection is None:
            self.drop()

    def drop(self, code: int | None = None) -> None:
        """Forget the page here: its elements are detached (the record stays)."""
        if self.dropped:
            return
        self.dropped = True
        if _PAGES.get(self.id) is self:
            del _PAGES[self.id]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.close(code or protocol.CLOSE_MOVED, "the page moved")
        for element in list(self.elements.values()):
            self.unregister(element)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def forget(self, element_ids: tuple[str, ...]) -> None:
        """The page says these elements left it."""
        for element_id in element_ids:
            element = self.elements.get(element_id)
            if element is not None:
                self.unregister(element)
        self.save()

    # -- pushes ------------------------------------------------------------------------------

    def schedule(self, element: LiveElement, part: str | None) -> asyncio.Future[None]:
        waiter = self.loop.create_future()
        if self.dropped or element.liveId is None:
            waiter.set_result(None)
            return waiter
        key = element.liveId
        if key in self._dirty:
            parts = self._dirty[key]
            if parts is not None:
                if part is None:
                    self._dirty[key] = None
                else:
                    parts.add(part)
        else:
            self._dirty[key] = None if part is None else {part}
        self._waiters.append(waiter)
        self._schedule_flush()
        return waiter

    def refresh_all(self, element_ids: list[str]) -> None:
        for element_id in element_ids:
            element = self.elements.get(element_id)
            if element is not None:
                self.schedule(element, None)

    def _schedule_flush(self) -> None:
        if self._flush_handle is None and self._dirty and self.connection is not None:
            self._flush_handle = self.loop.call_soon(self.flush)

    def resume(self) -> None:
        self.paused = False
        self._schedule_flush()

    def flush(self) -> None:
        """Render what is dirty and push it (unless the client is not reading)."""
        self._flush_handle = None
        connection = self.connection
        if connection is None or self.paused or not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        waiters, self._waiters = self._waiters, []
        pending: list[asyncio.Future[None]] = []
        # What renders at once goes out together: one message, one write.
        batch: list[str] = []
        self._batch = batch
        try:
            for element_id, parts in dirty.items():
                element = self.elements.get(element_id)
                if element is None:
                    continue
                for part in [None] if parts is None else sorted(parts):
                    later = self._push(connection, element, part)
                    if later is not None:
                        pending.append(later)
        finally:
            self._batch = None
        if len(batch) == 1:
            connection.send(batch[0])
        elif batch:
            connection.send("[" + ",".join(batch) + "]")
        if pending:
            gathered = asyncio.gather(*pending, return_exceptions=True)
            gathered.add_done_callback(lambda _: _release(waiters))
        else:
            _release(waiters)

    def _push(
        self, connection: LiveProtocol, element: LiveElement, part: str | None
    ) -> asyncio.Future[None] | None:
        assert element.liveId is not None
        self._pushes += 1
        number = self._pushes
        if type(element).sharedRendering:
            shared = _shared_render(element, part)
            if shared is not None:
                self._send_text(connection, element, part, number, shared)
                return None
        if part is None:
            root: Any = element
        else:
            found = _find_part(element.loader.load() if element.loader else [], part)
            if found is None:
                log.error("%s has no part %r (a tag with data-hive-part)", element, part)
                return None
            root = _Part(element, found)
        chunks: list[bytes] = []
        token = _RENDERING.set((None, self))
        try:
            walk = Walk(None, root, False)
            signal = walk.run_sync(chunks.append, None)
            if signal is DONE:
                self._send_html(connection, element, part, number, chunks)
                return None
            task = self.loop.create_task(self._finish(walk, signal, chunks, element, part, number))
        except Exception:
            log.exception("cannot render %s for a push", element)
            return None
        finally:
            _RENDERING.reset(token)
        return task

    async def _finish(
        self,
        walk: Walk,
        signal: Any,
        chunks: list[bytes],
        element: LiveElement,
        part: str | None,
        number: int,
    ) -> None:
        try:
            await walk.finish(signal, chunks.append, None)
        except Exception:
            log.exception("cannot render %s for a push", element)
            return
        connection = self.connection
        if connection is not None:
            self._send_html(connection, element, part, number, chunks)

    def _send_html(
        self,
        connection: LiveProtocol,
        element: LiveElement,
        part: str | None,
        number: int,
        chunks: list[bytes],
    ) -> None:
        assert element.liveId is not None
        text = protocol.html(element.liveId, part, b"".join(chunks).decode("utf-8"))
        self._send_text(connection, element, part, number, text)

    def _send_text(
        self,
        connection: LiveProtocol,
        element: LiveElement,
        part: str | None,
        number: int,
        text: str,
    ) -> None:
        assert element.liveId is not None
        key = (element.liveId, part)
        if self._sent.get(key, 0) > number:
            return  # a later rendering went out first (this one waited longer)
        self._sent[key] = number
        if self._batch is not None:
            self._batch.append(text)
        else:
            connection.send(text)

    # -- calls and messages ------------------------------------------------------------------

    def call_remote(self, element: LiveElement, name: str, args: list[Any]) -> Awaitable[Any]:
        connection = self.connection
        future: asyncio.Future[Any] = self.loop.create_future()
        if connection is None:
            future.set_exception(ConnectionError("the page is not connected"))
            return future
        assert element.liveId is not None
        self._calls += 1
        text = protocol.call(self._calls, element.liveId, name, args)
        self._pending[self._calls] = future
        connection.send(text)
        return future

    def answered(self, call_id: int, value: Any = None, error: RemoteError | None = None) -> None:
        future = self._pending.pop(call_id, None)
        if future is None or future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def handle_message(self, element: LiveElement, channel: str, message: Any) -> None:
        """A channel's message for ``element``: its handler, or a refresh."""
        name = element._channels.get(channel)
        if name is None:
            return
        if not name:
            element.refresh()
            return
        handler = getattr(element, name, None)
        if handler is None:
            log.error("%s has no method %s for channel %r", element, name, channel)
            return
        try:
            result = handler(message)
        except Exception:
            log.exception("error in %s.%s for channel %r", type(element).__name__, name, channel)
            return
        if isawaitable(result):
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda done: self._handled(done, element, name))
        else:
            self.save()

    def _handled(self, task: asyncio.Future[Any], element: LiveElement, name: str) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("error in %s.%s", type(element).__name__, name, exc_info=task.exception())
        if not self.dropped:
            self.save()


#: The marker a shared rendering has for the element's id, replaced for each page: a
#: Unicode noncharacter, which no text has, and which JSON and the escaping leave alone.
_SHARED_ID: Final = "\ufdd0live\ufdd0"
#: Shared renderings of this turn of the loop: (class, part) -> (message text, "el" JSON).
_SHARED: dict[tuple[type[LiveElement], str | None], str | None] = {}


def _shared_render(element: LiveElement, part: str | None) -> str | None:
    """The html message for ``element`` from the turn's one rendering of its class (which
    renders the same for every page); None if it cannot be made at once (it awaits)."""
    key = (type(element), part)
    if key in _SHARED:
        template = _SHARED[key]
    else:
        if not _SHARED:
            asyncio.get_running_loop().call_soon(_SHARED.clear)
        template = _SHARED[key] = _render_shared(element, part)
    if template is None:
        return None
    assert element.liveId is not None
    return template.replace(_SHARED_ID, element.liveId)


def _render_shared(element: LiveElement, part: str | None) -> str | None:
    own = element.liveId
    element.liveId = _SHARED_ID
    # No page while it renders: a LiveElement inside one would join only the first page.
    token = _RENDERING.set(None)
    sharing = _SHARING.set(element)
    try:
        if part is None:
            root: Any = element
        else:
            found = _find_part(element.loader.load() if element.loader else [], part)
            if found is None:
                return None
            root = _Part(element, found)
        walk = Walk(None, root, False)
        chunks: list[bytes] = []
        if walk.run_sync(chunks.append, None) is not DONE:
            walk.close()
            return None
    except Exception:
        log.exception("cannot render %s for a push", element)
        return None
    finally:
        element.liveId = own
        _RENDERING.reset(token)
        _SHARING.reset(sharing)
    markup = b"".join(chunks).decode("utf-8")
    return protocol.html(_SHARED_ID, part, markup)


def _release(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


_HOOK_TASKS: set[asyncio.Future[Any]] = set()


def _hook(element: LiveElement, hook: Callable[[], Any], name: str) -> None:
    """Call one of an element's hooks; an async one runs as a task; errors are logged."""
    try:
        result = hook()
    except Exception:
        log.exception("error in %s.%s", type(element).__name__, name)
        return
    if isawaitable(result):
        task = asyncio.ensure_future(result)
        _HOOK_TASKS.add(task)

        def done(finished: asyncio.Future[Any]) -> None:
            _HOOK_TASKS.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                error = finished.exception()
                log.error("error in %s.%s", type(element).__name__, name, exc_info=error)

        task.add_done_callback(done)


def page_of(page_id: str) -> Page | None:
    return _PAGES.get(page_id)


def _exposed(element: LiveElement, name: str) -> Callable[..., Any] | None:
    method: Callable[..., Any] | None = expose.get(element, name, None)
    return method
