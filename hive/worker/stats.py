"""A worker's counters, snapshot into an IPC Stats message once a second."""

from __future__ import annotations

import bisect
import time
from typing import TYPE_CHECKING

import psutil

from hive import _ipc as ipc

if TYPE_CHECKING:
    from hive.pubsub import Bus

__all__ = ["WorkerStats"]


class WorkerStats:
    """Counts requests as they start and finish; cumulative since the worker started."""

    __slots__ = (
        "_duration_sum",
        "_durations",
        "_logins",
        "_process",
        "_responses",
        "finished",
        "started",
        "websocket_closes",
        "websocket_messages_in",
        "websocket_messages_out",
        "websockets_opened",
    )

    def __init__(self) -> None:
        self.started = 0
        self.finished = 0
        # WebSockets (hive.worker.websocket counts into these, as WebSocketStats).
        self.websockets_opened = 0
        self.websocket_messages_in = 0
        self.websocket_messages_out = 0
        #: Close code -> WebSockets that ended with it.
        self.websocket_closes: dict[int, int] = {}
        self._responses: dict[tuple[bytes, int], int] = {}
        self._durations = [0] * (len(ipc.DURATION_BUCKETS) + 1)
        self._duration_sum = 0.0
        self._logins: dict[str, int] = {}
        self._process = psutil.Process()

    def request_started(self) -> None:
        self.started += 1

    def request_finished(self, method: bytes, code: int, started_at: float) -> None:
        """A response is over (sent, or abandoned by the client)."""
        self.finished += 1
        key = (method, code)
        self._responses[key] = self._responses.get(key, 0) + 1
        duration = time.time() - started_at
        self._duration_sum += duration
        self._durations[bisect.bisect_left(ipc.DURATION_BUCKETS, duration)] += 1

    def websocket_opened(self) -> None:
        self.websockets_opened += 1

    def websocket_closed(self, code: int) -> None:
        self.websocket_closes[code] = self.websocket_closes.get(code, 0) + 1

    def login(self, result: str) -> None:
        """An HTTP login (hive.guard) ended: "succeeded", "failed", "limited" or "busy"."""
        self._logins[result] = self._logins.get(result, 0) + 1

    def snapshot(
        self, *, accepted: int, active: int, idle: int, bus: Bus | None = None
    ) -> ipc.Stats:
        with self._process.oneshot():
            rss = self._process.memory_info().rss
            times = self._process.cpu_times()
        return ipc.Stats(
            requests=self.finished,
            in_flight=self.started - self.finished,
            connections_active=active,
            connections_idle=idle,
            accepted=accepted,
            rss=rss,
            cpu_seconds=times.user + times.system,
            responses={
                f"{method.decode('latin-1')} {code}": count
                for (method, code), count in self._responses.items()
            },
            durations=list(self._durations),
            duration_sum=self._duration_sum,
            websockets_open=self.websockets_opened - sum(self.websocket_closes.values()),
            websocket_messages_in=self.websocket_messages_in,
            websocket_messages_out=self.websocket_messages_out,
            websocket_closes={str(code): n for code, n in self.websocket_closes.items()},
            logins=dict(self._logins),
            pubsub_published=bus.published if bus is not None else 0,
            pubsub_delivered=bus.delivered if bus is not None else 0,
            pubsub_dropped=bus.dropped if bus is not None else 0,
            pubsub_subscribers=bus.subscribers() if bus is not None else 0,
            pubsub_slow=bus.slow if bus is not None else 0,
        )
