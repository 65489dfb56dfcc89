"""Twisted's Deferreds where hive awaits: in renders, templates, cred and XML-RPC.

hive never imports Twisted.  A Deferred is known by its methods (``addCallbacks`` and
``asFuture``) and awaited through ``Deferred.asFuture(loop)``: an asyncio future that
completes when the Deferred fires.  A Deferred that has already fired completes at once;
one fired later by Twisted's reactor needs that reactor running on the worker's loop
(Twisted's asyncio reactor: see the README, "Porting from Twisted Web").
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["is_deferred", "to_future"]


def is_deferred(value: object) -> bool:
    """Whether ``value`` is a Twisted Deferred (or quacks like one)."""
    kind = type(value)
    return hasattr(kind, "addCallbacks") and hasattr(kind, "asFuture")


def to_future(deferred: Any) -> asyncio.Future[Any]:
    """An asyncio future of ``deferred``'s result, on the running loop."""
    future: asyncio.Future[Any] = deferred.asFuture(asyncio.get_running_loop())
    return future
