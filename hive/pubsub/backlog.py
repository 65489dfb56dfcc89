"""The bounded history of published messages, and the event ids that name them.

An id is ``"<epoch>-<sequence>"``, two decimal numbers, the shape of a Redis stream id:
the relay's epoch is the time (ms) it started and its sequence counts every message it
took, across channels, so an id is never given twice, and ids compare as pairs of
numbers: a later message has a greater id on every channel, even after hive restarted
(a greater epoch). That is what a client's ``Last-Event-ID`` is matched against.

`Backlog` is pure (the time is an argument): the supervisor's relay holds one for the
host, `hive.pubsub.LocalBus` one for its process.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Final, NamedTuple

__all__ = [
    "BACKLOG_AGE",
    "BACKLOG_BYTES",
    "BACKLOG_SIZE",
    "Backlog",
    "Entry",
    "parse_id",
]

#: Messages kept per channel for replay. Enough to bridge a reconnection (a reload, a
#: network blip) at tens of messages a second; Centrifugo and Mercure keep a per-channel
#: history of a size you choose, with none by default.
BACKLOG_SIZE: Final = 1000
#: Seconds a message is kept for replay (Centrifugo's history_ttl in its examples: 300).
BACKLOG_AGE: Final = 300.0
#: Bytes of message data kept for every channel together; the channels published least
#: recently lose their oldest messages first.
BACKLOG_BYTES: Final = 64 * 1024 * 1024


def parse_id(text: str | bytes | None) -> tuple[int, int] | None:
    """An id as a comparable pair, or None for anything that is not one."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not text:
        return None
    epoch, dash, sequence = text.partition("-")
    if not dash or not epoch.isdigit() or not sequence.isdigit():
        return None
    if len(epoch) > 20 or len(sequence) > 20:
        return None
    return int(epoch), int(sequence)


class Entry(NamedTuple):
    """One message of the backlog: its id, its data and when it was published."""

    id: str
    key: tuple[int, int]
    data: str | bytes
    at: float


@dataclass(slots=True)
class _Channel:
    entries: deque[Entry] = field(default_factory=deque)
    size: int = 0  # bytes of data held


class Backlog:
    """The last `size` messages of each channel, none older than `age` seconds, at most
    `max_bytes` of data in all; each message gets its id here."""

    def __init__(
        self,
        epoch: int,
        *,
        size: int = BACKLOG_SIZE,
        age: float = BACKLOG_AGE,
        max_bytes: int = BACKLOG_BYTES,
    ) -> None:
        self.epoch = epoch
        self.size = size
        self.age = age
        self.max_bytes = max_bytes
        self.sequence = 0
        #: Bytes of data held, all channels together.
        self.bytes = 0
        # Least recently published first.
        self._channels: OrderedDict[str, _Channel] = OrderedDict()

    def append(self, channel: str, data: str | bytes, now: float) -> Entry:
        """Keep a message just published on ``channel``; its entry names its id."""
        return self.extend(channel, [data], now)[0]

    def extend(self, channel: str, data: list[str | bytes], now: float) -> list[Entry]:
        """Keep messages just published on ``channel``, in order (one Publish batch)."""
        held = self._channels.get(channel)
        if held is None:
            held = self._channels[channel] = _Channel()
        else:
            self._channels.move_to_end(channel)
        epoch = self.epoch
        sequence = self.sequence
        entries = held.entries
        size = self.size
        added = 0
        out = []
        for item in data:  # the relay's busy loop: inlined
            sequence += 1
            entry = Entry(f"{epoch}-{sequence}", (epoch, sequence), item, now)
            if len(entries) >= size:
                added -= len(entries.popleft().data)
            entries.append(entry)
            out.append(entry)
            added += len(item)
        self.sequence = sequence
        held.size += added
        self.bytes += added
        self._trim_age(channel, held, now)
        while self.bytes > self.max_bytes:
            oldest, first = next(iter(self._channels.items()))
            self._pop(oldest, first)
        return out

    def after(self, channel: str, last: tuple[int, int] | None, now: float) -> list[Entry]:
        """The messages of ``channel`` published after the id ``last`` (None: all held)."""
        held = self._channels.get(channel)
        if held is None:
            return []
        self._trim_age(channel, held, now)
        entries = held.entries
        if last is None:
            return list(entries)
        out: list[Entry] = []
        for entry in reversed(entries):  # the newest are the likely ones
            if entry.key <= last:
                break
            out.append(entry)
        out.reverse()
        return out

    def expire(self, now: float) -> None:
        """Drop what is older than `age` (called now and then)."""
        for channel, held in list(self._channels.items()):
            self._trim_age(channel, held, now)

    def channels(self) -> int:
        return len(self._channels)

    def messages(self) -> int:
        return sum(len(held.entries) for held in self._channels.values())

    def _trim_age(self, channel: str, held: _Channel, now: float) -> None:
        oldest = now - self.age
        while held.entries and held.entries[0].at < oldest:
            self._pop(channel, held)

    def _pop(self, channel: str, held: _Channel) -> None:
        entry = held.entries.popleft()
        length = len(entry.data)
        held.size -= length
        self.bytes -= length
        if not held.entries:
            del self._channels[channel]
