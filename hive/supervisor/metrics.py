"""The supervisor's metrics, in the Prometheus text format or OpenMetrics.

Workers send cumulative `ipc.Stats`; the supervisor keeps the last one of each live worker
and folds a worker's last stats into `Totals` when it exits. A counter shown here is the
retired totals plus the live workers' stats, so a worker that exits or is replaced takes
nothing away: every hive-wide counter only goes up. Per-worker series carry the pid as a
label, so a replaced worker's series simply ends and a new one starts at zero.

`exposition` is pure (the clocks are arguments); `listen_queue` reads the kernel.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Metric
from prometheus_client.exposition import generate_latest as generate_text
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from hive import _ipc as ipc
from hive._compiled import build
from hive.supervisor.state import SupervisorState, WorkerState
from hive.supervisor.totals import Totals

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "LOGIN_RESULTS",
    "RELOAD_RESULTS",
    "RESTART_REASONS",
    "exposition",
    "listen_queue",
    "wants_openmetrics",
]

# The versions this module writes, spelled out: prometheus_client's own "latest" constants
# change with its releases (0.22 moved the text one to 1.0.0).
CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

#: Shown even when zero, so that rate() and alerts see the series from the start.
RESTART_REASONS = ("crash", "timeout", "max_requests", "max_memory", "reload")
RELOAD_RESULTS = ("success", "failure")
LOGIN_RESULTS = ("succeeded", "failed", "limited", "busy")


def wants_openmetrics(accept: str | None) -> bool:
    """Whether an Accept header prefers OpenMetrics 1.0 to the Prometheus text format.

    Prometheus names OpenMetrics with a higher q than text/plain; browsers and curl do not
    name it, and get text.
    """
    if not accept:
        return False
    openmetrics = 0.0
    text: dict[str, float] = {}  # q of "text/plain", "text/*", "*/*" where named
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        options = dict(p.partition("=")[::2] for p in params)
        options = {k.strip().lower(): v.strip().strip('"') for k, v in options.items()}
        try:
            q = float(options.get("q", "1"))
        except ValueError:
            continue
        if media == "application/openmetrics-text":
            # 0.0.1 is the draft that 1.0.0 kept compatible; 2.0 we cannot write.
            if options.get("version", "1.0.0") in ("1.0.0", "0.0.1"):
                openmetrics = max(openmetrics, q)
        elif media in ("text/plain", "text/*", "*/*"):
            text[media] = max(text.get(media, 0.0), q)
    # The most specific range that names text/plain sets its q (RFC 9110, 12.5.1).
    text_q = next((text[m] for m in ("text/plain", "text/*", "*/*") if m in text), 0.0)
    return openmetrics > 0 and openmetrics >= text_q


def exposition(
    state: SupervisorState,
    *,
    now: float,
    wall_now: float,
    openmetrics: bool = False,
    listen_queues: Sequence[tuple[str, int, int]] | None = None,
) -> tuple[bytes, str]:
    """The metrics of ``state`` as (body, content type).

    ``now`` is the monotonic clock that ``state`` uses and ``wall_now`` the Unix time at
    the same moment (for the workers' start times). ``listen_queues`` holds (listener,
    queued connections, backlog) per listening socket, from `listen_queue`.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(_families(state, now, wall_now, listen_queues))))
    if openmetrics:
        # prometheus_client leaves this one untyped.
        body: bytes = generate_openmetrics(registry)  # type: ignore[no-untyped-call]
        return body, CONTENT_TYPE_OPENMETRICS
    return generate_text(registry), CONTENT_TYPE_TEXT


class _Families(Collector):
    """Hands the registry metric families built beforehand."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _families(
    state: SupervisorState,
    now: float,
    wall_now: float,
    listen_queues: Sequence[tuple[str, int, int]] | None,
) -> Iterator[Metric]:
    workers = sorted(state.workers.values(), key=lambda w: (w.slot, w.generation, w.pid))
    live = [w.stats for w in workers if w.stats is not None]
    totals = state.retired.combined(live)

    requests = CounterMetricFamily(
        "hive_http_requests",
        "Requests finished (answered, or abandoned by the client), by method and status code.",
        labels=["method", "code"],
    )
    for key, count in sorted(totals.responses.items()):
        method, _, code = key.rpartition(" ")
        requests.add_metric([method, code], count)
    yield requests

    # Cumulative from here on: the wire carries one count per bucket.
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip((*ipc.DURATION_BUCKETS, float("inf")), totals.durations, strict=True):
        running += count
        # The spelling of "le" that prometheus_client's own Histogram uses (untyped there).
        buckets.append((floatToGoString(bound), running))  # type: ignore[no-untyped-call]
    duration = HistogramMetricFamily(
        "hive_http_request_duration_seconds",
        "Time from a request's start to its response's end.",
        unit="seconds",
    )
    duration.add_metric([], buckets, totals.duration_sum)
    yield duration

    yield GaugeMetricFamily(
        "hive_http_requests_in_flight",
        "Requests being handled now.",
        value=sum(s.in_flight for s in live),
    )
    connections = GaugeMetricFamily(
        "hive_connections", "Open client connections, by state.", labels=["state"]
    )
    connections.add_metric(["active"], sum(s.connections_active for s in live))
    connections.add_metric(["idle"], sum(s.connections_idle for s in live))
    yield connections
    logins = CounterMetricFamily(
        "hive_logins",
        "HTTP logins through hive.guard, by result: succeeded, failed (wrong or unreadable"
        " credentials), limited (refused with 429 after too many failures), busy (503).",
        labels=["result"],
    )
    for result in _keys(LOGIN_RESULTS, totals.logins):
        logins.add_metric([result], totals.logins.get(result, 0))
    yield logins
    yield CounterMetricFamily(
        "hive_connections_accepted", "Client connections accepted.", value=totals.accepted
    )
    yield CounterMetricFamily(
        "hive_cpu_seconds",
        "CPU time (user and system) of all workers, past and present.",
        value=totals.cpu_seconds,
        unit="seconds",
    )

    yield GaugeMetricFamily(
        "hive_websockets", "Open WebSockets.", value=sum(s.websockets_open for s in live)
    )
    messages = CounterMetricFamily(
        "hive_websocket_messages",
        "WebSocket messages, received (in) and sent (out).",
        labels=["direction"],
    )
    messages.add_metric(["in"], totals.websocket_messages_in)
    messages.add_metric(["out"], totals.websocket_messages_out)
    yield messages
    closes = CounterMetricFamily(
        "hive_websocket_closes",
        "WebSockets ended, by close code (1006: the connection ended without a close frame).",
        labels=["code"],
    )
    for code, count in sorted(totals.websocket_closes.items()):
        closes.add_metric([code], count)
    yield closes

    by_state = GaugeMetricFamily("hive_workers", "Worker processes, by state.", labels=["state"])
    for worker_state in WorkerState:
        count = sum(w.state is worker_state for w in workers)
        by_state.add_metric([worker_state.value], count)
    yield by_state
    restarts = CounterMetricFamily(
        "hive_worker_restarts", "Workers replaced, by reason.", labels=["reason"]
    )
    for reason in _keys(RESTART_REASONS, state.restarts):
        restarts.add_metric([reason], state.restarts.get(reason, 0))
    yield restarts
    reloads = CounterMetricFamily("hive_reloads", "Reloads, by result.", labels=["result"])
    for result in _keys(RELOAD_RESULTS, state.reloads):
        reloads.add_metric([result], state.reloads.get(result, 0))
    yield reloads
    yield GaugeMetricFamily(
        "hive_generation", "The generation of workers being served.", value=state.generation
    )
    yield GaugeMetricFamily("hive_target_workers", "Workers wanted.", value=state.target)
    yield InfoMetricFamily(
        "hive_build", "Which build of hive runs: python, or mypyc.", value={"build": build()}
    )

    yield from _bus_families(state, totals, live)

    if listen_queues is not None:
        length = GaugeMetricFamily(
            "hive_listen_queue_length",
            "Connections waiting in a listening socket's accept queue.",
            labels=["listener"],
        )
        limit = GaugeMetricFamily(
            "hive_listen_queue_max",
            "The size of a listening socket's accept queue (its backlog).",
            labels=["listener"],
        )
        for listener, current, maximum in listen_queues:
            length.add_metric([listener], current)
            limit.add_metric([listener], maximum)
        yield length
        yield limit

    labels = ["slot", "pid", "generation"]
    worker_requests = CounterMetricFamily(
        "hive_worker_requests", "Requests a worker has finished.", labels=labels
    )
    memory = GaugeMetricFamily(
        "hive_worker_resident_memory_bytes",
        "A worker's resident memory.",
        labels=labels,
        unit="bytes",
    )
    cpu = CounterMetricFamily(
        "hive_worker_cpu_seconds",
        "A worker's CPU time (user and system).",
        labels=labels,
        unit="seconds",
    )
    start = GaugeMetricFamily(
        "hive_worker_start_time_seconds",
        "When a worker was started, in Unix time.",
        labels=labels,
        unit="seconds",
    )
    for worker in workers:
        values = [str(worker.slot), str(worker.pid), str(worker.generation)]
        start.add_metric(values, wall_now - (now - worker.started_at))
        # A worker that has not reported yet has no numbers; a 0 would be a lie for memory.
        if worker.stats is not None:
            worker_requests.add_metric(values, worker.stats.requests)
            memory.add_metric(values, worker.stats.rss)
            cpu.add_metric(values, worker.stats.cpu_seconds)
    yield worker_requests
    yield memory
    yield cpu
    yield start


def _bus_families(
    state: SupervisorState, totals: Totals, live: list[ipc.Stats]
) -> Iterator[Metric]:
    """hive.pubsub: the workers' counters, and the supervisor's relay and backlog."""
    yield CounterMetricFamily(
        "hive_pubsub_published",
        "Messages published (hive.pubsub.publish), by every worker.",
        value=totals.pubsub_published,
    )
    yield CounterMetricFamily(
        "hive_pubsub_delivered",
        "Messages handed to subscribers (one per subscriber).",
        value=totals.pubsub_delivered,
    )
    yield CounterMetricFamily(
        "hive_pubsub_dropped",
        "Messages lost: to a subscriber dropped for being slow, or an unreachable bus.",
        value=totals.pubsub_dropped,
    )
    yield CounterMetricFamily(
        "hive_pubsub_slow_subscribers",
        "Subscribers dropped because they fell their queue's length behind.",
        value=totals.pubsub_slow,
    )
    yield GaugeMetricFamily(
        "hive_pubsub_subscribers",
        "Subscribers now (an event stream, an iterator), in every worker.",
        value=sum(s.pubsub_subscribers for s in live),
    )
    relay = state.relay
    yield CounterMetricFamily(
        "hive_pubsub_relayed",
        "Copies of messages the supervisor sent to workers (the bus on this host).",
        value=relay.relayed,
    )
    yield GaugeMetricFamily(
        "hive_pubsub_backlog_messages",
        "Messages the supervisor's backlog holds for replay.",
        value=relay.backlog.messages(),
    )
    yield GaugeMetricFamily(
        "hive_pubsub_backlog_bytes",
        "Bytes of message data in the supervisor's backlog.",
        value=relay.backlog.bytes,
        unit="bytes",
    )


def _keys(known: Sequence[str], counted: dict[str, int]) -> list[str]:
    """The known keys in order, then any others the state counted (e.g. "scale")."""
    return [*known, *sorted(counted.keys() - set(known))]


# struct tcp_info (linux/tcp.h) starts with eight u8 fields (state, ca_state, retransmits,
# probes, backoff, options, the wscale nibbles, the delivery-rate/fastopen bits), then u32
# rto, ato, snd_mss, rcv_mss, unacked, sacked. For a LISTEN socket the kernel puts the
# accept queue's length in tcpi_unacked and its limit in tcpi_sacked.
_TCP_LISTEN = 10
_QUEUE_OFFSET = 24
_TCP_INFO_SIZE = 32


def listen_queue(sock: socket.socket) -> tuple[int, int] | None:
    """(connections waiting to be accepted, backlog) of a listening TCP socket.

    None for other sockets (unix sockets have no TCP_INFO) or off Linux.
    """
    option = getattr(socket, "TCP_INFO", None)
    if option is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, option, _TCP_INFO_SIZE)
    except OSError:
        return None
    if len(info) < _TCP_INFO_SIZE or info[0] != _TCP_LISTEN:
        return None
    current, maximum = struct.unpack_from("=II", info, _QUEUE_OFFSET)
    return current, maximum
