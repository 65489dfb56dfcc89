"""The flattener: a tree of tags, text, slots, renderables and awaitables, written as bytes.

One loop walks the tree with an explicit stack of frames, so no depth of nesting and no
number of already-finished awaitables can reach Python's recursion limit (Twisted's
recursive flattener could: its issue 10125).  A frame is one of

- a *program*: a compiled template tag's pre-escaped bytes and dynamic points
  (hive.template._compile), or the same built on the spot for a tag made in code;
- *content*: nodes written as element content (``&<>`` escaped);
- *attribute*: nodes written inside an attribute value (Twisted's rule: the text is
  not escaped by the node, every byte is escaped by the writer, once per level).

The walk is a generator.  It appends to a list of bytes and yields when the list passes
`CHUNK_SIZE` (`FLUSH`) or when it meets an awaitable that has not finished; the driver
(`Walk.finish`) writes what was gathered, waits for the client with ``request.drain()``,
awaits, and sends the result back in.  A finished future or an already-fired Deferred is
taken without yielding, and nothing is written in pieces smaller than a chunk unless the
walk has to wait (Twisted wrote every tag and string on its own: its issue 10348).

With ``concurrent=True``, before waiting the walk starts what follows in the frames it is
in (`_start_ahead`): coroutines and other awaitables become tasks, renderers of tags with
a render directive are called, awaitable slot values are scheduled; their results are
written later in document order.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from inspect import CO_ITERABLE_COROUTINE
from types import CoroutineType, GeneratorType
from typing import Any, Final, TypeVar

from hive._deferred import is_deferred, to_future
from hive.error import FlattenerError, UnfilledSlot, UnsupportedType
from hive.template._compile import InAttribute, compile_tag
from hive.template._element import Element
from hive.template._escape import (
    checked_name,
    escape_attribute,
    escape_attribute_times,
    escape_content,
    escaped_cdata,
    escaped_comment,
)
from hive.template._tags import (
    CDATA,
    CharRef,
    Comment,
    Compiled,
    Flattenable,
    RawText,
    Tag,
    lazy,
    slot,
    voidElements,
)

__all__ = ["CHUNK_SIZE", "Flattening", "flatten", "flattenString"]

T = TypeVar("T")

#: Bytes gathered before they are written: large enough that a chunked response's framing
#: is noise, small enough that a page streams to a slow client in bounded memory.
CHUNK_SIZE: Final = 64 * 1024

# Frame kinds.
_PROGRAM: Final = 0
_CONTENT: Final = 1
_ATTRIBUTE: Final = 2

#: A frame: (kind, iterator, attribute level, render factory, pushed slot data, origin).
#: The origin is what FlattenerError lists as the frame's root.
Frame = tuple[int, Iterator[Any], int, Any, bool, Any]


class _Signal:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: Yielded by the walk when a chunk's worth is gathered.
FLUSH: Final = _Signal("FLUSH")
#: What `Walk.step` returns when the walk is over.
DONE: Final = _Signal("DONE")

_new = object.__new__
_LIST_ITERATOR: Final[type] = type(iter([]))
_TUPLE_ITERATOR: Final[type] = type(iter(()))


class _Started:
    """A renderer called ahead of its turn (concurrent mode): its result, or its error."""

    __slots__ = ("error", "origin", "result", "slots")

    def __init__(
        self, slots: dict[str, Any] | None, result: Any, error: Exception | None, origin: Any
    ) -> None:
        self.slots = slots
        self.result = result
        self.error = error
        self.origin = origin


def walk(request: Any, root: Any, out: list[bytes], concurrent: bool) -> Generator[Any, Any, None]:
    """Flatten ``root`` into ``out``; yields `FLUSH`, or an awaitable whose result it wants."""
    append = out.append
    size = 0
    slots: list[dict[str, Any]] = []
    stack: list[Frame] = [(_CONTENT, iter((root,)), 0, None, False, root)]
    started: list[asyncio.Future[Any]] | None = [] if concurrent else None
    scanned: set[Iterator[Any]] = set()
    op = node = None
    try:
        while stack:
            kind, it, level, factory, _, _ = stack[-1]
            if kind == _PROGRAM:
                for op in it:
                    if type(op) is bytes:
                        if level:
                            op = escape_attribute_times(op, level)
                        append(op)
                        size += len(op)
                        continue
                    if type(op) is slot:
                        value = _slot_value(op, slots)
                        if type(value) is str:
                            text = (
                                value.replace("&", "&amp;")
                                .replace("<", "&lt;")
                                .replace(">", "&gt;")
                                .encode()
                            )
                            if level:
                                text = escape_attribute_times(text, level)
                            append(text)
                            size += len(text)
                            if size >= CHUNK_SIZE:
                                yield FLUSH
                                size = 0
                            continue
                        stack.append((_CONTENT, iter((value,)), level, factory, False, op))
                    elif type(op) is Compiled:  # a tag with a render directive
                        if factory is None:
                            raise _no_renderable(op.render)
                        clone = _new(Tag)  # lazy(op, None), inline: once a row in a table
                        clone._tagName = op.tagName
                        clone._attributes = clone._children = clone.render = None
                        clone.slotData = None
                        clone.filename = op.filename
                        clone.lineNumber = op.lineNumber
                        clone.columnNumber = op.columnNumber
                        clone._proto = op
                        result = factory.lookupRenderMethod(op.render)(request, clone)
                        if type(result) is Tag and result.render is None and not level:
                            # The usual answer, the tag with its slots filled: in one step.
                            proto = result._proto
                            if proto is None:
                                filler = None
                            elif proto.ops is None:
                                compile_tag(proto)
                                filler = proto.fill
                            else:
                                filler = proto.fill
                            if filler is not None:
                                filled = filler(result.slotData, slots)
                                if filled is not None:
                                    append(filled)
                                    size += len(filled)
                                    if size >= CHUNK_SIZE:
                                        yield FLUSH
                                        size = 0
                                    continue
                        stack.append((_CONTENT, iter((result,)), level, factory, False, clone))
                    elif type(op) is InAttribute:
                        stack.append((_ATTRIBUTE, iter((op.value,)), level + 1, factory, False, op))
                    elif type(op) is list:
                        stack.append((_CONTENT, iter(op), level, factory, False, op))
                    else:
                        stack.append((_CONTENT, iter((op,)), level, factory, False, op))
                    break
                else:
                    if stack.pop()[4]:
                        slots.pop()
                    continue
            else:
                content = kind == _CONTENT
                for node in it:
                    kind_of = type(node)
                    if kind_of is str:
                        if content:
                            text = (
                                node.replace("&", "&amp;")
                                .replace("<", "&lt;")
                                .replace(">", "&gt;")
                                .encode()
                            )
                        else:
                            text = node.encode()
                    elif kind_of is Tag:
                        own = node.slotData
                        render = node.render
                        if render is not None:
                            if factory is None:
                                raise _no_renderable(render)
                            if own:
                                slots.append(own)
                            clone = node.clone(False)
                            clone.render = None
                            result = factory.lookupRenderMethod(render)(request, clone)
                            stack.append((kind, iter((result,)), level, factory, bool(own), clone))
                            break
                        proto = node._proto
                        if proto is not None and (content or proto.tagName):
                            ops = proto.ops
                            if ops is None:
                                ops = compile_tag(proto)
                            filler = proto.fill
                            if filler is not None and not level:
                                filled = filler(own, slots)
                                if filled is not None:
                                    append(filled)
                                    size += len(filled)
                                    if size >= CHUNK_SIZE:
                                        yield FLUSH
                                        size = 0
                                    continue
                            if own:
                                slots.append(own)
                            stack.append((_PROGRAM, iter(ops), level, factory, bool(own), node))
                        else:
                            if own:
                                slots.append(own)
                            if proto is not None:
                                # Transparent, in an attribute: its text takes this escaping.
                                frame = (
                                    kind,
                                    iter(proto.children),
                                    level,
                                    factory,
                                    bool(own),
                                    node,
                                )
                            else:
                                frame = _tag_frame(node, kind, level, factory, bool(own))
                            stack.append(frame)
                        break
                    elif isinstance(node, Element):
                        stack.append(_renderable_frame(node, request, kind, level))
                        break
                    elif kind_of is list or kind_of is tuple:
                        stack.append((kind, iter(node), level, factory, False, node))
                        break
                    elif kind_of is Compiled:
                        if node.render is not None:
                            if factory is None:
                                raise _no_renderable(node.render)
                            clone = lazy(node, None)
                            result = factory.lookupRenderMethod(node.render)(request, clone)
                            stack.append((kind, iter((result,)), level, factory, False, clone))
                        elif content or node.tagName:
                            ops = node.ops
                            if ops is None:
                                ops = compile_tag(node)
                            stack.append((_PROGRAM, iter(ops), level, factory, False, node))
                        else:
                            stack.append((kind, iter(node.children), level, factory, False, node))
                        break
                    elif kind_of is slot:
                        value = _slot_value(node, slots)
                        stack.append((kind, iter((value,)), level, factory, False, node))
                        break
                    elif kind_of is bytes:
                        text = escape_content(node) if content else node
                    elif kind_of is RawText:
                        text = node.encode()
                    elif kind_of is CharRef:
                        text = b"&#%d;" % node.ordinal
                    elif kind_of is Comment:
                        text = b"<!--%s-->" % escaped_comment(node.data)
                    elif kind_of is CDATA:
                        text = b"<![CDATA[%s]]>" % escaped_cdata(node.data)
                    elif kind_of is _Started:
                        if node.error is not None:
                            raise node.error
                        own = node.slots
                        if own:
                            slots.append(own)
                        stack.append(
                            (kind, iter((node.result,)), level, factory, bool(own), node.origin)
                        )
                        break
                    elif kind_of is GeneratorType and not (
                        node.gi_code.co_flags & CO_ITERABLE_COROUTINE
                    ):
                        stack.append((kind, node, level, factory, False, node))
                        break
                    elif isinstance(node, str):  # str subclasses: StrEnum members, ...
                        text = _escape_str(str(node)) if content else str(node).encode()
                    elif isinstance(node, bytes):
                        text = escape_content(bytes(node)) if content else bytes(node)
                    elif hasattr(kind_of, "lookupRenderMethod") and hasattr(kind_of, "render"):
                        # Any other renderable: an object with render and lookupRenderMethod.
                        stack.append(_renderable_frame(node, request, kind, level))
                        break
                    else:
                        pending = _awaitable(node)
                        if pending is None:
                            raise UnsupportedType(node)
                        if type(pending) is _Ready:
                            value = pending.value
                        else:
                            if started is not None:
                                _start_ahead(stack, request, scanned, started)
                            value = yield pending
                            size = 0
                        stack.append((kind, iter((value,)), level, factory, False, node))
                        break
                    # Text of some kind, ready to write.
                    if level:
                        text = escape_attribute_times(text, level)
                    append(text)
                    size += len(text)
                    if size >= CHUNK_SIZE:
                        yield FLUSH
                        size = 0
                else:
                    if stack.pop()[4]:
                        slots.pop()
                    continue
            if size >= CHUNK_SIZE:
                yield FLUSH
                size = 0
    except Exception as exc:
        roots = [frame[5] for frame in stack]
        if stack:
            # What the innermost frame was at: a template tag names its file and line.
            current = op if stack[-1][0] == _PROGRAM else node
            if current is not None and current is not roots[-1] and type(current) is not bytes:
                roots.append(current)
        raise FlattenerError(exc, roots, traceback.extract_tb(exc.__traceback__)) from exc
    finally:
        _abandon(stack, started)


def _renderable_frame(node: Any, request: Any, kind: int, level: int) -> Frame:
    """The frame that writes an Element (or other renderable): its template, with its
    renderers; a template of one lazy tag goes straight to that tag's program."""
    result = node.render(request)
    if type(result) is not list:
        result = [result]
    if len(result) == 1 and type(result[0]) is Tag:
        only = result[0]
        proto = only._proto
        if (
            proto is not None
            and only.render is None
            and only.slotData is None
            and (kind == _CONTENT or proto.tagName)
        ):
            ops = proto.ops
            if ops is None:
                ops = compile_tag(proto)
            return (_PROGRAM, iter(ops), level, node, False, only)
    return (kind, iter(result), level, node, False, node)


def _slot_value(marker: slot, slots: list[dict[str, Any]]) -> Any:
    """What fills ``marker``: the innermost value given for it, else its default."""
    name = marker.name
    for data in reversed(slots):
        if name in data:
            return data[name]
    if marker.default is None:
        raise UnfilledSlot(name)
    return marker.default


def _escape_str(text: str) -> bytes:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode()


def _no_renderable(render: str | None) -> ValueError:
    return ValueError(
        f'Tag wants to be rendered by method "{render}" but is not contained in any IRenderable'
    )


def _tag_frame(tag: Tag, kind: int, level: int, factory: Any, pushed: bool) -> Frame:
    """The frame that writes a tag made in code: a program built for it on the spot."""
    name = tag._tagName
    children = tag._children
    assert children is not None and tag._attributes is not None
    if not name:
        return (kind, iter(children), level, factory, pushed, tag)
    if isinstance(name, str):
        encoded = checked_name(name.encode("ascii"))
    else:
        encoded, name = checked_name(name), name.decode("ascii")
    ops: list[Any] = [b"<" + encoded]
    for key, value in tag._attributes.items():
        key_bytes = checked_name(key.encode("ascii") if isinstance(key, str) else key)
        if type(value) is str:
            ops.append(b' %s="%s"' % (key_bytes, escape_attribute(value.encode())))
        else:
            ops.append(b' %s="' % key_bytes)
            ops.append(InAttribute(value))
            ops.append(b'"')
    if children or name not in voidElements:
        ops.append(b">")
        ops.append(children if type(children) is list else list(children))
        ops.append(b"</%s>" % encoded)
    else:
        ops.append(b" />")
    return (_PROGRAM, iter(ops), level, factory, pushed, tag)


class _Ready:
    """An awaitable that had finished already: its value, taken without waiting."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _awaitable(node: Any) -> Awaitable[Any] | _Ready | None:
    """What to wait for if ``node`` is awaitable (a `_Ready` if it has finished), else None.

    A Twisted Deferred is awaited as hive awaits one everywhere (hive._deferred): as
    ``Deferred.asFuture(loop)``, which needs the Deferred to fire on the asyncio loop's
    thread (it does under Twisted's asyncio reactor) and consumes its result.
    """
    if isinstance(node, asyncio.Future):
        return _finished(node) if node.done() else node
    kind = type(node)
    if kind is CoroutineType or kind is GeneratorType:
        coroutine: Awaitable[Any] = node  # a generator here is generator-based coroutine
        return coroutine
    if is_deferred(node):
        try:
            future = to_future(node)
        except RuntimeError:
            raise RuntimeError(
                "a Deferred can be flattened only on a running asyncio loop"
                " (Twisted's asyncio reactor)"
            ) from None
        return _finished(future) if future.done() else future
    if hasattr(kind, "__await__"):
        awaitable: Awaitable[Any] = node
        return awaitable
    return None


def _finished(future: asyncio.Future[Any]) -> _Ready:
    if future.cancelled():
        raise RuntimeError(f"{future!r} in the tree was cancelled")
    return _Ready(future.result())


def _start_ahead(
    stack: list[Frame], request: Any, scanned: set[Iterator[Any]], started: list[Any]
) -> None:
    """Concurrent mode: start what follows in every frame whose rest can be read ahead.

    A frame over a generator is left alone (reading it ahead would defeat streaming);
    each frame is read ahead once.
    """
    loop = asyncio.get_running_loop()
    for index, (kind, it, level, factory, pushed, origin) in enumerate(stack):
        if it in scanned or type(it) not in (_LIST_ITERATOR, _TUPLE_ITERATOR):
            continue
        rest = [_start(item, request, factory, loop, started) for item in it]
        fresh = iter(rest)
        scanned.add(fresh)
        stack[index] = (kind, fresh, level, factory, pushed, origin)


def _start(
    item: Any, request: Any, factory: Any, loop: asyncio.AbstractEventLoop, started: list[Any]
) -> Any:
    """``item``, or what replaces it once started: a task, a future, a `_Started`."""
    kind = type(item)
    if kind is bytes or kind is str:
        return item
    if (kind is Tag or kind is Compiled) and item.render is not None:
        return _render_ahead(item, request, factory, loop, started) if factory else item
    if kind is Tag:
        data = item.slotData
        if data:
            for key, value in data.items():
                data[key] = _schedule(value, loop, started)
        return item
    return _schedule(item, loop, started)


def _schedule(value: Any, loop: asyncio.AbstractEventLoop, started: list[Any]) -> Any:
    """An awaitable ``value`` set running (a task, or a Deferred's future); else ``value``."""
    if isinstance(value, asyncio.Future):
        return value
    pending = _awaitable(value) if _is_awaitable(value) else None
    if pending is None:
        return value
    if isinstance(pending, _Ready):
        return pending.value
    future = asyncio.ensure_future(pending, loop=loop)
    started.append(future)
    return future


def _is_awaitable(value: Any) -> bool:
    kind = type(value)
    if kind is GeneratorType:
        return bool(value.gi_code.co_flags & CO_ITERABLE_COROUTINE)
    return kind is CoroutineType or hasattr(kind, "__await__") or is_deferred(value)


def _render_ahead(
    item: Any, request: Any, factory: Any, loop: asyncio.AbstractEventLoop, started: list[Any]
) -> _Started:
    data = item.slotData if type(item) is Tag else None
    try:
        if type(item) is Tag:
            clone = item.clone(False)
            clone.render = None
        else:
            clone = lazy(item, None)
        result = factory.lookupRenderMethod(item.render)(request, clone)
        result = _schedule(result, loop, started)
    except Exception as exc:
        return _Started(data, None, exc, item)
    return _Started(data, result, None, clone)


def _abandon(stack: list[Frame], started: list[Any] | None) -> None:
    """A walk that stops early: close what it will not reach, cancel what it started.

    Coroutines left in the rest of the tree are closed (they would warn that they were
    never awaited); so are the generators the walk was reading.
    """
    rest: list[Any] = []
    for frame in stack:
        it = frame[1]
        if type(it) is GeneratorType:
            it.close()
        elif type(it) is _LIST_ITERATOR or type(it) is _TUPLE_ITERATOR:
            rest.extend(it)
    stack.clear()
    seen: set[int] = set()
    while rest:
        item = rest.pop()
        kind = type(item)
        if kind is CoroutineType:
            item.close()
        elif kind is list or kind is tuple or kind is Tag or kind is _Started:
            if id(item) in seen:
                continue
            seen.add(id(item))
            if kind is Tag:
                if item._proto is None:
                    rest.extend(item._children)
                    rest.extend(item._attributes.values())
                if item.slotData:
                    rest.extend(item.slotData.values())
            elif kind is _Started:
                rest.append(item.result)
            else:
                rest.extend(item)
    for future in started or ():
        if not future.done():
            future.cancel()
        elif not future.cancelled():
            future.exception()  # retrieved: asyncio would otherwise log it as never seen


class Walk:
    """One flattening under way: the walk and the bytes it gathered but did not hand out."""

    __slots__ = ("_gen", "_out", "client_gone")

    def __init__(self, request: Any, root: Any, concurrent: bool) -> None:
        self._out: list[bytes] = []
        self._gen = walk(request, root, self._out, concurrent)
        #: Set when the request's client went away and the walk was stopped for it.
        self.client_gone = False

    def step(self, value: Any = None, error: BaseException | None = None) -> Any:
        """Run on until the walk needs something: `FLUSH`, an awaitable, or `DONE`."""
        try:
            if error is not None:
                return self._gen.throw(error)
            return self._gen.send(value)
        except StopIteration:
            return DONE

    def take(self) -> bytes:
        """What was gathered since the last call."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def close(self) -> None:
        self._gen.close()

    def run_sync(self, write: Callable[[bytes], object], drain: Any) -> Any:
        """Go as far as possible without waiting, writing what is gathered.

        Returns `DONE`, or the signal `finish` goes on from; either way what was gathered
        has been written (a walk writes what it has before it waits).
        """
        signal = self.step()
        while signal is FLUSH and drain is None:
            write(self.take())
            signal = self.step()
        data = self.take()
        if data:
            write(data)
        return signal

    async def finish(
        self,
        signal: Any,
        write: Callable[[bytes], object],
        drain: Callable[[], Awaitable[None]] | None,
        watch: asyncio.Future[None] | None = None,
    ) -> None:
        """Run the walk to its end from ``signal``, in the current task.

        After each chunk, ``drain()`` waits while the client is not reading.  ``watch``
        (``request.notifyFinish()``) failing means the client went away: the task is
        cancelled, whatever the walk waits for with it, and ConnectionError raised.
        """
        task = asyncio.current_task()

        def client_left(future: asyncio.Future[None]) -> None:
            if future.cancelled() or future.exception() is None:
                return  # the response was finished: nothing to stop
            if task is not None and not task.done():
                self.client_gone = True
                task.cancel()

        watching = watch is not None and task is not None
        if watching:
            assert watch is not None
            watch.add_done_callback(client_left)
        try:
            while signal is not DONE:
                if signal is FLUSH:
                    if drain is not None:
                        await drain()
                    signal = self.step()
                else:
                    try:
                        value = await signal
                    except asyncio.CancelledError:
                        if self.client_gone or task is None or task.cancelling():
                            raise
                        # What the tree held was cancelled by someone else: an error in it.
                        signal = self.step(error=RuntimeError(f"{signal!r} was cancelled"))
                    except Exception as exc:
                        signal = self.step(error=exc)
                    else:
                        signal = self.step(value)
                data = self.take()
                if data:
                    write(data)
        except asyncio.CancelledError:
            if not self.client_gone:
                raise
            assert task is not None
            task.uncancel()
            raise ConnectionError("the client went away during rendering") from None
        finally:
            if watching:
                assert watch is not None
                watch.remove_done_callback(client_left)
                # Not left for the request to fail later with nobody to read it.
                watch.cancel()
            self._gen.close()


def _drain_for(request: Any, write: Callable[[bytes], object]) -> Any:
    """``request.drain`` when ``write`` writes to ``request``: backpressure for the walk."""
    if request is not None and getattr(write, "__self__", None) is request:
        return getattr(request, "drain", None)
    return None


def _watch_for(request: Any) -> asyncio.Future[None] | None:
    notify = getattr(request, "notifyFinish", None) if request is not None else None
    if notify is None:
        return None
    future = notify()
    return future if isinstance(future, asyncio.Future) and not future.done() else None


class Flattening(Coroutine[Any, Any, T]):
    """What `flatten` and `flattenString` return: await it (or ``asyncio.run`` it).

    Called while an asyncio loop runs, flattening starts at once, as Twisted's does:
    whatever can be written without waiting is written before the call returns, and the
    rest goes on in a task of its own whether or not anyone awaits it (as a Deferred's
    chain would).  Outside a loop nothing happens until it is awaited.
    """

    __slots__ = ("_future", "_iterator", "_lazy")

    def __init__(
        self,
        request: Any,
        root: Flattenable,
        write: Callable[[bytes], object],
        concurrent: bool,
        result: Callable[[], T],
    ) -> None:
        self._iterator: Any = None
        self._lazy: Callable[[], Coroutine[Any, Any, T]] | None = None
        self._future: asyncio.Future[T] | None = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._lazy = lambda: _flatten_lazily(request, root, write, concurrent, result)
            return
        drain = _drain_for(request, write)
        walk = Walk(request, root, concurrent)
        future: asyncio.Future[T]
        try:
            signal = walk.run_sync(write, drain)
        except Exception as exc:
            future = loop.create_future()
            future.set_exception(exc)
        else:
            if signal is DONE:
                future = loop.create_future()
                future.set_result(result())
            else:
                future = loop.create_task(
                    _flatten_rest(walk, signal, request, write, drain, result)
                )
        self._future = future

    def _await_iterator(self) -> Any:
        if self._future is not None:
            return self._future.__await__()
        assert self._lazy is not None
        coroutine, self._lazy = self._lazy(), None
        return coroutine.__await__()

    def __await__(self) -> Generator[Any, None, T]:
        iterator: Generator[Any, None, T] = self._await_iterator()
        return iterator

    def send(self, value: Any) -> Any:
        if self._iterator is None:
            self._iterator = self._await_iterator()
        return self._iterator.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if self._iterator is None:
            self._iterator = self._await_iterator()
        if val is None:
            return self._iterator.throw(typ)
        return self._iterator.throw(typ, val, tb)

    def close(self) -> None:
        if self._iterator is not None:
            self._iterator.close()


async def _flatten_rest(
    walk: Walk,
    signal: Any,
    request: Any,
    write: Callable[[bytes], object],
    drain: Any,
    result: Callable[[], T],
) -> T:
    await walk.finish(signal, write, drain, _watch_for(request))
    return result()


async def _flatten_lazily(
    request: Any,
    root: Any,
    write: Callable[[bytes], object],
    concurrent: bool,
    result: Callable[[], T],
) -> T:
    drain = _drain_for(request, write)
    walk = Walk(request, root, concurrent)
    signal = walk.run_sync(write, drain)
    if signal is not DONE:
        # In the awaiting task, which is not ours to cancel: no watch for the client.
        await walk.finish(signal, write, drain)
    return result()


def flatten(
    request: Any, root: Flattenable, write: Callable[[bytes], object], *, concurrent: bool = False
) -> Flattening[None]:
    """Write ``root`` as bytes with ``write``, as it becomes ready; await the result.

    ``request`` is passed to renderers.  When ``write`` is ``request.write``, each chunk
    is followed by ``await request.drain()`` (a client that reads nothing holds the
    rendering, not the server's memory) and rendering stops with ConnectionError when
    the client goes away.  ``concurrent=True`` starts the renderers and awaitables that
    follow a wait before waiting (see hive.template).  Errors are FlattenerError.
    """
    return Flattening(request, root, write, concurrent, _none)


def flattenString(
    request: Any, root: Flattenable, *, concurrent: bool = False
) -> Flattening[bytes]:
    """``root`` as one bytes string (UTF-8); await the result."""
    chunks: list[bytes] = []
    return Flattening(request, root, chunks.append, concurrent, lambda: b"".join(chunks))


def _none() -> None:
    return None
