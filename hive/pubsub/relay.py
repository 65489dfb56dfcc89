"""The bus of a worker under ``hive run`` on one host: the supervisor's relay carries it.

Messages go over the worker's channel to the supervisor (hive/_ipc.py): `Publish`,
`Subscribe` (with the replay it asks for) and `Unsubscribe` out; `Published` and
`Subscribed` in. The relay (hive.supervisor.relay) gives the ids and holds the backlog,
so both outlive the worker: a reload keeps them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hive import _ipc as ipc
from hive.pubsub import Bus

__all__ = ["RelayBus"]


class RelayBus(Bus):
    """The worker's end of the supervisor's relay; ``send`` writes to the channel."""

    def __init__(
        self, send: Callable[[ipc.Message], object], loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(loop)
        self._send = send

    def received(self, message: ipc.Published | ipc.Subscribed) -> None:
        """A bus message from the supervisor."""
        if isinstance(message, ipc.Published):
            self._deliver(message.channel, message.id, message.data)
        else:
            self._replayed(message.token, message.ids, message.data, not message.more)

    def _send_publish(self, channel: str, data: str | bytes) -> None:
        self._send(ipc.Publish(channel, data))

    def _want(self, channel: str, token: int, after: str) -> None:
        self._send(ipc.Subscribe(channel, token, after))

    def _unwant(self, channel: str) -> None:
        self._send(ipc.Unsubscribe(channel))
