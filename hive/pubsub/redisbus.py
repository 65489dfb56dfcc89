"""The bus through Redis (``hive run --pubsub redis://host:port/db``): several hosts.

A publish runs one Lua script in Redis, atomically: XADD to the channel's stream (Redis
gives the id, ``<ms>-<seq>``, and the stream is the backlog, trimmed to `BACKLOG_SIZE`
messages and `BACKLOG_AGE` seconds), then PUBLISH of the id and the data. Every worker
of every host SUBSCRIBEs (one connection per worker) to the channels its subscribers
want; a replay is an XRANGE after the id asked for, made once the SUBSCRIBE is
confirmed, so a message is in the replay, in the live feed, or both (the subscriptions
drop what they had). Redis's pub/sub ignores the database number, so the names carry it:
``hive:pubsub:<db>:<channel>``.

One task per worker publishes, in order, as pipelines of what was queued; while Redis
cannot be reached, messages are dropped (counted) and the connections are tried again.
When the subscriber connection comes back, each channel's messages after the last one
seen are read back from its stream, so a blip loses nothing the backlog holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any, Final

from hive.pubsub import Bus
from hive.pubsub.backlog import BACKLOG_AGE, BACKLOG_SIZE, parse_id

__all__ = ["OUTBOX_LIMIT", "RedisBus"]

log = logging.getLogger("hive.pubsub")

#: Messages waiting to be published while Redis is slow or away; more are dropped.
OUTBOX_LIMIT: Final = 10_000
#: Seconds between two attempts to reach Redis again.
RETRY_DELAY: Final = 1.0

# KEYS[1]: the stream; ARGV: data, type ("s" text, "b" bytes), the pub/sub channel,
# the backlog's size and age (ms).
_PUBLISH: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[4], '*', 't', ARGV[2], 'd', ARGV[1])
redis.call('XTRIM', KEYS[1], 'MINID', now - tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[3], id .. ' ' .. ARGV[2] .. ARGV[1])
return id
"""


class RedisBus(Bus):
    """A worker's bus through the Redis at ``url``."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        import redis.asyncio as aioredis  # imported only where Redis is used

        self._errors: tuple[type[BaseException], ...] = (
            aioredis.RedisError,
            ConnectionError,
            OSError,
        )
        self._client: Any = aioredis.Redis.from_url(url)
        db = self._client.connection_pool.connection_kwargs.get("db", 0)
        self.prefix = f"hive:pubsub:{db}:"
        self._script: Any = self._client.register_script(_PUBLISH)
        self._pubsub: Any = self._client.pubsub()
        self._outbox: deque[tuple[str, str | bytes]] = deque()
        self._outbox_ready = asyncio.Event()
        self._commands: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._listening = asyncio.Event()
        #: Channels asked of Redis, and those it confirmed.
        self._wanted: set[str] = set()
        self._confirmed: set[str] = set()
        #: Replays asked for before the channel's SUBSCRIBE was confirmed.
        self._requests: dict[str, list[tuple[int, str]]] = {}
        #: Each channel's last id seen, to read back what a lost connection missed.
        self._last: dict[str, str] = {}
        #: Live messages held while a channel's missed ones are read back: they go after.
        self._held: dict[str, list[tuple[str, str | bytes]]] = {}
        self._tasks = [
            loop.create_task(self._publisher()),
            loop.create_task(self._commander()),
            loop.create_task(self._listener()),
        ]
        self._complained = 0.0

    async def aclose(self) -> None:
        self.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for closing in (self._pubsub.aclose(), self._client.aclose()):
            with contextlib.suppress(*self._errors):
                await closing

    # -- the backend ----------------------------------------------------------------------

    def _send_publish(self, channel: str, data: str | bytes) -> None:
        if len(self._outbox) >= OUTBOX_LIMIT:
            self.dropped += 1
            self._complain(f"more than {OUTBOX_LIMIT} messages wait for Redis; dropping")
            return
        self._outbox.append((channel, data))
        self._outbox_ready.set()

    def _want(self, channel: str, token: int, after: str) -> None:
        if channel in self._confirmed:
            self._loop_now().create_task(self._replay(channel, token, after))
            return
        self._requests.setdefault(channel, []).append((token, after))
        if channel not in self._wanted:
            self._wanted.add(channel)
            self._commands.put_nowait(("subscribe", channel))

    def _unwant(self, channel: str) -> None:
        self._wanted.discard(channel)
        self._confirmed.discard(channel)
        self._requests.pop(channel, None)
        self._last.pop(channel, None)
        self._held.pop(channel, None)
        self._commands.put_nowait(("unsubscribe", channel))

    # -- the tasks ------------------------------------------------------------------------

    async def _publisher(self) -> None:
        size, age = str(BACKLOG_SIZE), str(int(BACKLOG_AGE * 1000))
        prefix = self.prefix
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            batch = list(self._outbox)
            self._outbox.clear()
            if not batch:
                continue
            pipe = self._client.pipeline(transaction=False)
            for channel, data in batch:
                kind, payload = (
                    ("s", data.encode("utf-8")) if isinstance(data, str) else ("b", data)
                )
                name = prefix + channel
                await self._script(keys=[name], args=[payload, kind, name, size, age], client=pipe)
            try:
                await pipe.execute()
            except self._errors as exc:
                self.dropped += len(batch)
                self._complain(f"cannot publish to Redis: {exc}")
                await asyncio.sleep(RETRY_DELAY)

    async def _commander(self) -> None:
        """SUBSCRIBE and UNSUBSCRIBE in the order they were asked for."""
        while True:
            command, channel = await self._commands.get()
            name = self.prefix + channel
            while True:
                try:
                    if command == "subscribe":
                        if channel in self._wanted:
                            await self._pubsub.subscribe(name)
                            self._listening.set()
                    elif channel not in self._wanted:
                        await self._pubsub.unsubscribe(name)
                    break
                except self._errors as exc:
                    self._complain(f"cannot {command} in Redis: {exc}")
                    await asyncio.sleep(RETRY_DELAY)

    async def _listener(self) -> None:
        pubsub = self._pubsub
        prefix = self.prefix
        skip = len(prefix)
        while True:
            if not pubsub.subscribed:
                self._listening.clear()
                await self._listening.wait()
                continue
            try:
                response = await pubsub.parse_response(block=True)
                message = await pubsub.handle_message(response)
            except self._errors as exc:
                self._complain(f"lost the Redis subscription: {exc}")
                await asyncio.sleep(RETRY_DELAY)
                continue
            if not message:
                continue
            kind = message["type"]
            name = message["channel"]
            name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            if not name.startswith(prefix):
                continue
            channel = name[skip:]
            if kind == "message":
                self._received(channel, message["data"])
            elif kind == "subscribe":
                self._subscribed(channel)

    # -- what the listener saw ------------------------------------------------------------

    def _received(self, channel: str, payload: bytes) -> None:
        if channel not in self._wanted:
            return
        id_bytes, _, rest = payload.partition(b" ")
        id = id_bytes.decode("ascii", "replace")
        data: str | bytes = rest[1:].decode("utf-8", "replace") if rest[:1] == b"s" else rest[1:]
        held = self._held.get(channel)
        if held is not None:
            held.append((id, data))
            return
        self._last[channel] = id
        self._deliver(channel, id, data)

    def _subscribed(self, channel: str) -> None:
        if channel not in self._wanted:
            return
        loop = self._loop_now()
        if channel in self._confirmed:
            # Subscribed again after a lost connection: read back what it missed.
            last = self._last.get(channel)
            if last is not None and channel not in self._held:
                self._held[channel] = []
                loop.create_task(self._catch_up(channel, last))
            return
        self._confirmed.add(channel)
        for token, after in self._requests.pop(channel, []):
            loop.create_task(self._replay(channel, token, after))

    async def _replay(self, channel: str, token: int, after: str) -> None:
        if not after:
            self._replayed(token, [], [], True)
            return
        try:
            ids, data = await self._range(channel, after)
        except self._errors as exc:
            self._complain(f"cannot read the backlog from Redis: {exc}")
            ids, data = [], []
        self._replayed(token, ids, data, True)

    async def _catch_up(self, channel: str, last: str) -> None:
        """Deliver what ``channel`` missed after ``last``, then the live messages held
        meanwhile (the subscriptions drop those they had)."""
        try:
            ids, data = await self._range(channel, last)
        except self._errors as exc:
            self._complain(f"cannot read the backlog from Redis: {exc}")
            ids, data = [], []
        held = self._held.pop(channel, [])
        if channel not in self._wanted:
            return
        for id, item in [*zip(ids, data, strict=True), *held]:
            self._last[channel] = id
            self._deliver(channel, id, item)

    async def _range(self, channel: str, after: str) -> tuple[list[str], list[str | bytes]]:
        """The stream's messages after ``after`` (all it holds for an id of another shape)."""
        start = f"({after}" if parse_id(after) is not None else "-"
        entries = await self._client.xrange(self.prefix + channel, start, "+", count=BACKLOG_SIZE)
        ids: list[str] = []
        data: list[str | bytes] = []
        for raw_id, fields in entries:
            item = fields.get(b"d", b"")
            ids.append(raw_id.decode("ascii") if isinstance(raw_id, bytes) else str(raw_id))
            data.append(item.decode("utf-8", "replace") if fields.get(b"t") == b"s" else item)
        return ids, data

    def _complain(self, text: str) -> None:
        """Log a Redis trouble, at most every few seconds."""
        now = time.monotonic()
        if now - self._complained >= 5.0:
            self._complained = now
            log.error("%s", text)
