"""The bus on one host: the supervisor relays what a worker publishes to the workers that
subscribed, and keeps the backlog that replays serve. Pure: `handle` returns what to send.

Every worker's channel to the supervisor is a stream, and the relay answers messages in
the order they come, so what one worker publishes reaches every worker in the order it
was published, and a worker sees the answer to its `Subscribe` (the replay) before any
message published after the relay took it. Ids come from one place, the relay's
`Backlog`, so a client gets the same ids whichever worker serves it; the relay lives as
long as the supervisor, so a reload keeps the ids and the backlog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from hive import _ipc as ipc
from hive.pubsub.backlog import Backlog, parse_id

__all__ = ["REPLAY_CHUNK", "Relay", "handle"]

#: Bytes of message data per `Subscribed` message (and per `Publish` batch, which becomes
#: one `Published`): well under `ipc.MAX_MESSAGE_SIZE` with one message of
#: `hive.pubsub.MAX_MESSAGE_SIZE` over it.
REPLAY_CHUNK: Final = 512 * 1024


@dataclass
class Relay:
    """Who wants which channel, the backlog, and the relay's counters."""

    backlog: Backlog
    #: Channel -> the pids of the workers that subscribed to it.
    interest: dict[str, set[int]] = field(default_factory=dict)
    #: Pid -> its channels, to forget a worker at once.
    channels_of: dict[int, set[str]] = field(default_factory=dict)
    #: Messages published through the relay, and copies sent to workers.
    published: int = 0
    relayed: int = 0

    @classmethod
    def new(cls, epoch: int) -> Relay:
        return cls(Backlog(epoch))

    def forget(self, pid: int) -> None:
        """A worker drains or is gone: it gets no more messages."""
        for channel in self.channels_of.pop(pid, ()):
            pids = self.interest.get(channel)
            if pids is not None:
                pids.discard(pid)
                if not pids:
                    del self.interest[channel]


def handle(
    relay: Relay,
    pid: int,
    message: ipc.Publish | ipc.Subscribe | ipc.Unsubscribe,
    now: float,
    *,
    serving: bool = True,
) -> list[tuple[int, ipc.Message]]:
    """Apply a bus message from worker ``pid``; return (pid, message) pairs to send.

    A worker that is not ``serving`` (draining) may still publish but subscribes no more.
    """
    if isinstance(message, ipc.Publish):
        channel, data = message.channel, message.data
        relay.published += len(data)
        ids = [entry.id for entry in relay.backlog.extend(channel, data, now)]
        pids = relay.interest.get(channel)
        if not pids or not ids:
            return []
        relay.relayed += len(pids) * len(ids)
        out = ipc.Published(channel, ids, data)
        return [(target, out) for target in pids]
    if isinstance(message, ipc.Subscribe):
        if serving:
            relay.interest.setdefault(message.channel, set()).add(pid)
            relay.channels_of.setdefault(pid, set()).add(message.channel)
        return [(pid, answer) for answer in _replay(relay, message, now)]
    pids = relay.interest.get(message.channel)
    if pids is not None:
        pids.discard(pid)
        if not pids:
            del relay.interest[message.channel]
    channels = relay.channels_of.get(pid)
    if channels is not None:
        channels.discard(message.channel)
        if not channels:
            del relay.channels_of[pid]
    return []


def _replay(relay: Relay, message: ipc.Subscribe, now: float) -> list[ipc.Subscribed]:
    """The `Subscribed` answers: what the backlog holds after ``message.after``."""
    if not message.after:
        return [ipc.Subscribed(message.token, [], [], False)]
    # An id of another shape (or none the relay gave) replays all that is held: the client
    # has seen something, so it may have missed anything since.
    entries = relay.backlog.after(message.channel, parse_id(message.after), now)
    answers: list[ipc.Subscribed] = []
    ids: list[str] = []
    data: list[str | bytes] = []
    size = 0
    for entry in entries:
        length = len(entry.data) if isinstance(entry.data, bytes) else len(entry.data.encode())
        if ids and size + length > REPLAY_CHUNK:
            answers.append(ipc.Subscribed(message.token, ids, data, True))
            ids, data, size = [], [], 0
        ids.append(entry.id)
        data.append(entry.data)
        size += length
    answers.append(ipc.Subscribed(message.token, ids, data, False))
    return answers
