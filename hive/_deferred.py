"""Twisted's Deferreds where hive awaits: in renders, templates, cred and XML-RPC.

hive never imports Twisted to serve.  A Deferred is known by its methods (``addCallbacks``
and ``asFuture``) and awaited through `to_future`: an asyncio future that completes when
the Deferred fires.  A Deferred that has already fired completes at once; one fired later
by Twisted's reactor needs that reactor running on the worker's loop, which
`hive._reactor` installs when the application imports it.

The other way round, `DeferredFuture` is an asyncio future that also takes Deferred
callbacks (``addCallback``, ``addErrback``...), for ``Request.notifyFinish``, and
`DeferredTask` a task that does, for ``xmlrpc.Proxy.callRemote``: Twisted code chains on
them, asyncio code awaits them.  Its Deferred side is Twisted's own Deferred, made
(``Deferred.fromFuture``) at the first Twisted-style call, so Twisted is imported only by
programs that use it.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

__all__ = ["DeferredFailed", "DeferredFuture", "DeferredTask", "is_deferred", "to_future"]

_T = TypeVar("_T")


def is_deferred(value: object) -> bool:
    """Whether ``value`` is a Twisted Deferred (or quacks like one)."""
    kind = type(value)
    return hasattr(kind, "addCallbacks") and hasattr(kind, "asFuture")


class DeferredFailed(Exception):
    """A Deferred failed with a value that is not an exception (``defer.fail(12)``)."""


def to_future(deferred: Any) -> asyncio.Future[Any]:
    """An asyncio future of ``deferred``'s result, on the running loop.

    As ``Deferred.asFuture``, which it replaces because a Failure whose value is not an
    exception would leave that future pending for ever: here it fails with
    `DeferredFailed`.  Cancelling the future cancels the Deferred.
    """
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def succeeded(result: object) -> None:
        if not future.cancelled():
            future.set_result(result)

    def failed(failure: Any) -> None:
        if future.cancelled():
            return
        value = failure.value
        if not isinstance(value, BaseException):
            value = DeferredFailed(f"the Deferred failed with {value!r}")
        future.set_exception(value)

    def cancelled(done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            deferred.cancel()

    deferred.addCallbacks(succeeded, failed)
    future.add_done_callback(cancelled)
    return future


class _Chains:
    """Twisted's Deferred methods on an asyncio future (the class this is mixed into).

    ``addCallback``, ``addErrback``, ``addBoth`` and ``addCallbacks`` go to one Twisted
    Deferred that fires when the future completes (errbacks get a ``Failure`` of its
    exception), and return that Deferred, so chains go on as in Twisted.  They need
    Twisted installed; awaiting and ``add_done_callback`` never do.
    """

    _deferred: Any = None

    def _as_deferred(self) -> Any:
        deferred = self._deferred
        if deferred is None:
            try:
                from twisted.internet.defer import Deferred
            except ImportError:
                raise RuntimeError(
                    "addCallback and addErrback need Twisted (pip install twisted); "
                    "without it, await the future or use add_done_callback"
                ) from None
            deferred = self._deferred = Deferred.fromFuture(self)  # type: ignore[arg-type]
        return deferred

    def addCallback(self, callback: Any, *args: Any, **kwargs: Any) -> Any:
        return self._as_deferred().addCallback(callback, *args, **kwargs)

    def addErrback(self, errback: Any, *args: Any, **kwargs: Any) -> Any:
        return self._as_deferred().addErrback(errback, *args, **kwargs)

    def addBoth(self, callback: Any, *args: Any, **kwargs: Any) -> Any:
        return self._as_deferred().addBoth(callback, *args, **kwargs)

    def addCallbacks(self, callback: Any, errback: Any = None, **kwargs: Any) -> Any:
        return self._as_deferred().addCallbacks(callback, errback, **kwargs)


class DeferredFuture(_Chains, asyncio.Future[_T]):
    """An asyncio future that also takes Twisted's Deferred callbacks (see `_Chains`)."""


class DeferredTask(_Chains, asyncio.Task[_T]):
    """An asyncio task that also takes Twisted's Deferred callbacks (see `_Chains`)."""
