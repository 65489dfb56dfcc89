"""The bus of a worker under ``hive run`` on one host: the supervisor's relay carries it.

Messages go over the worker's channel to the supervisor (hive/_ipc.py): `Publish`,
`Subscribe` (with the replay it asks for) and `Unsubscribe` out; `Published` and
`Subscribed` in. The relay (hive.supervisor.relay) gives the ids and holds the backlog,
so both outlive the worker: a reload keeps them.

What is published in one turn of the loop on one channel goes as one `Publish`: a burst
costs the supervisor one message to decode and one per worker to send, not one each
(loadtests/relay.py measures it). The batch leaves at the end of the turn, or before
anything else the worker sends, so the order of everything it sends is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from hive import _ipc as ipc
from hive.pubsub import Bus
from hive.supervisor.relay import REPLAY_CHUNK

__all__ = ["RelayBus"]

#: Messages in one `Publish`, at most.
BATCH_LIMIT: Final = 1000


class RelayBus(Bus):
    """The worker's end of the supervisor's relay; ``send`` writes to the channel."""

    def __init__(
        self, send: Callable[[ipc.Message], object], loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(loop)
        self._send = send
        self._batch_channel = ""
        self._batch: list[str | bytes] = []
        self._batch_size = 0
        self._flush_due = False

    def received(self, message: ipc.Published | ipc.Subscribed) -> None:
        """A bus message from the supervisor."""
        if isinstance(message, ipc.Published):
            self._deliver_all(message.channel, message.ids, message.data)
        else:
            self._replayed(message.token, message.ids, message.data, not message.more)

    def _send_publish(self, channel: str, data: str | bytes) -> None:
        # A str's UTF-8 bytes are at most four per character: a bound, not a count.
        size = len(data) if isinstance(data, bytes) else 4 * len(data)
        batch = self._batch
        if batch and (
            channel != self._batch_channel
            or self._batch_size + size > REPLAY_CHUNK
            or len(batch) >= BATCH_LIMIT
        ):
            self._flush()
            batch = self._batch
        self._batch_channel = channel
        batch.append(data)
        self._batch_size += size
        if not self._flush_due:
            self._flush_due = True
            self._loop_now().call_soon(self._flush_soon)

    def _want(self, channel: str, token: int, after: str) -> None:
        self._flush()
        self._send(ipc.Subscribe(channel, token, after))

    def _unwant(self, channel: str) -> None:
        self._flush()
        self._send(ipc.Unsubscribe(channel))

    def _flush_soon(self) -> None:
        self._flush_due = False
        self._flush()

    def _flush(self) -> None:
        batch = self._batch
        if batch:
            self._batch = []
            self._batch_size = 0
            self._send(ipc.Publish(self._batch_channel, batch))
