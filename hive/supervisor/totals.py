"""Cumulative counters summed over workers: what the supervisor keeps of workers that are gone.

A worker sends cumulative `ipc.Stats`; when it exits, its last stats are folded into the
state's retired `Totals`, so a hive-wide counter (retired plus live) never goes backwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hive import _ipc as ipc

__all__ = ["Totals"]


def _zero_durations() -> list[int]:
    return [0] * (len(ipc.DURATION_BUCKETS) + 1)


@dataclass
class Totals:
    """Cumulative counters summed over workers."""

    requests: int = 0
    accepted: int = 0
    cpu_seconds: float = 0.0
    #: "METHOD STATUS" -> count, as in `ipc.Stats.responses`.
    responses: dict[str, int] = field(default_factory=dict)
    #: Per-bucket (not cumulative) counts of `ipc.DURATION_BUCKETS`, then +Inf.
    durations: list[int] = field(default_factory=_zero_durations)
    duration_sum: float = 0.0
    websocket_messages_in: int = 0
    websocket_messages_out: int = 0
    #: Close code (a str) -> WebSockets that ended with it.
    websocket_closes: dict[str, int] = field(default_factory=dict)
    #: HTTP logins by result, as in `ipc.Stats.logins`.
    logins: dict[str, int] = field(default_factory=dict)
    #: The bus: messages published, handed to subscribers, lost; slow subscribers dropped.
    pubsub_published: int = 0
    pubsub_delivered: int = 0
    pubsub_dropped: int = 0
    pubsub_slow: int = 0

    def add(self, stats: ipc.Stats) -> None:
        """Fold in one worker's cumulative stats (a worker that exited, or a live one)."""
        self.requests += stats.requests
        self.accepted += stats.accepted
        self.cpu_seconds += stats.cpu_seconds
        for key, count in stats.responses.items():
            self.responses[key] = self.responses.get(key, 0) + count
        self.durations = [a + b for a, b in zip(self.durations, stats.durations, strict=True)]
        self.duration_sum += stats.duration_sum
        self.websocket_messages_in += stats.websocket_messages_in
        self.websocket_messages_out += stats.websocket_messages_out
        for code, count in stats.websocket_closes.items():
            self.websocket_closes[code] = self.websocket_closes.get(code, 0) + count
        for key, count in stats.logins.items():
            self.logins[key] = self.logins.get(key, 0) + count
        self.pubsub_published += stats.pubsub_published
        self.pubsub_delivered += stats.pubsub_delivered
        self.pubsub_dropped += stats.pubsub_dropped
        self.pubsub_slow += stats.pubsub_slow

    def combined(self, live: Iterable[ipc.Stats]) -> Totals:
        """These totals plus the `live` workers' stats, as a new `Totals`."""
        out = Totals(
            self.requests,
            self.accepted,
            self.cpu_seconds,
            dict(self.responses),
            list(self.durations),
            self.duration_sum,
            self.websocket_messages_in,
            self.websocket_messages_out,
            dict(self.websocket_closes),
            dict(self.logins),
            self.pubsub_published,
            self.pubsub_delivered,
            self.pubsub_dropped,
            self.pubsub_slow,
        )
        for stats in live:
            out.add(stats)
        return out
