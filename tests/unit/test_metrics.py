"""The supervisor's metrics: states built by hand, rendered, parsed back."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from hive import _ipc as ipc
from hive._compiled import build
from hive.supervisor import state as sv
from hive.supervisor.metrics import (
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_TEXT,
    exposition,
    listen_queue,
    wants_openmetrics,
)
from hive.supervisor.totals import Totals

NOW = 1000.0  # monotonic
WALL_NOW = 1_700_000_000.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def stats(
    requests: int = 0,
    *,
    in_flight: int = 0,
    active: int = 0,
    idle: int = 0,
    accepted: int = 0,
    rss: int = 0,
    cpu: float = 0.0,
    responses: dict[str, int] | None = None,
    durations: list[int] | None = None,
    duration_sum: float = 0.0,
    logins: dict[str, int] | None = None,
) -> ipc.Stats:
    return ipc.Stats(
        requests,
        in_flight,
        active,
        idle,
        accepted,
        rss,
        cpu,
        responses or {},
        durations or [0] * (len(ipc.DURATION_BUCKETS) + 1),
        duration_sum,
        logins=logins or {},
    )


def durations(**at: int) -> list[int]:
    """Per-bucket counts, e.g. durations(b0=2, inf=1)."""
    out = [0] * (len(ipc.DURATION_BUCKETS) + 1)
    for key, count in at.items():
        out[-1 if key == "inf" else int(key[1:])] = count
    return out


def worker(
    pid: int,
    slot: int,
    *,
    generation: int = 1,
    state: sv.WorkerState = sv.WorkerState.READY,
    started_at: float = 900.0,
    stats: ipc.Stats | None = None,
) -> sv.Worker:
    return sv.Worker(
        pid, slot, generation, (slot,), 0, started_at=started_at, state=state, stats=stats
    )


def make_state(*workers: sv.Worker) -> sv.SupervisorState:
    state = sv.SupervisorState.new(sv.SupervisorConfig(workers=len(workers) or 1))
    state.phase = sv.Phase.RUNNING
    for w in workers:
        state.workers[w.pid] = w
    return state


def render(
    state: sv.SupervisorState, listen_queues: list[tuple[str, int, int]] | None = None
) -> tuple[Samples, dict[str, str]]:
    """The samples, keyed by name and labels, and the type of each family."""
    body, content_type = exposition(state, now=NOW, wall_now=WALL_NOW, listen_queues=listen_queues)
    assert content_type == CONTENT_TYPE_TEXT
    families = list(parse_text(body.decode()))
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in families
        for s in family.samples
    }
    return samples, {family.name: family.type for family in families}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def two_workers() -> sv.SupervisorState:
    a = stats(
        10,
        in_flight=2,
        active=3,
        idle=1,
        accepted=5,
        rss=50_000_000,
        cpu=1.5,
        responses={"GET 200": 8, "POST 500": 2},
        durations=durations(b0=6, b3=3, inf=1),
        duration_sum=12.25,
    )
    b = stats(
        4,
        in_flight=1,
        active=1,
        idle=2,
        accepted=2,
        rss=40_000_000,
        cpu=0.5,
        responses={"GET 200": 3, "GET 404": 1},
        durations=durations(b1=4),
        duration_sum=0.5,
    )
    state = make_state(worker(101, 0, stats=a, started_at=900.0), worker(102, 1, stats=b))
    state.retired.add(
        stats(
            7,
            accepted=9,
            cpu=3.0,
            responses={"GET 200": 6, "POST 500": 1},
            durations=durations(b0=7),
            duration_sum=0.0625,
        )
    )
    return state


# -- the numbers ----------------------------------------------------------------------------


def test_requests_by_method_and_code_sum_live_and_retired_workers() -> None:
    samples, types = render(two_workers())
    assert types["hive_http_requests"] == "counter"
    assert value(samples, "hive_http_requests_total", method="GET", code="200") == 8 + 3 + 6
    assert value(samples, "hive_http_requests_total", method="POST", code="500") == 2 + 1
    assert value(samples, "hive_http_requests_total", method="GET", code="404") == 1
    assert value(samples, "hive_connections_accepted_total") == 5 + 2 + 9
    assert value(samples, "hive_cpu_seconds_total") == 1.5 + 0.5 + 3.0


def test_gauges_come_from_live_workers() -> None:
    samples, types = render(two_workers())
    assert types["hive_http_requests_in_flight"] == "gauge"
    assert value(samples, "hive_http_requests_in_flight") == 3
    assert value(samples, "hive_connections", state="active") == 4
    assert value(samples, "hive_connections", state="idle") == 3
    assert value(samples, "hive_generation") == 1
    assert value(samples, "hive_target_workers") == 2
    assert value(samples, "hive_build_info", build=build()) == 1


def test_websockets_open_messages_and_closes_by_code() -> None:
    live = dataclasses.replace(
        stats(1),
        websockets_open=3,
        websocket_messages_in=40,
        websocket_messages_out=50,
        websocket_closes={"1000": 4, "1006": 1},
    )
    retired = dataclasses.replace(
        stats(1),
        websockets_open=2,  # a gauge: a worker that is gone has none open
        websocket_messages_in=7,
        websocket_messages_out=8,
        websocket_closes={"1000": 1, "1001": 2},
    )
    state = make_state(worker(101, 0, stats=live))
    state.retired.add(retired)
    samples, types = render(state)
    assert types["hive_websockets"] == "gauge"
    assert value(samples, "hive_websockets") == 3
    assert types["hive_websocket_messages"] == "counter"
    assert value(samples, "hive_websocket_messages_total", direction="in") == 47
    assert value(samples, "hive_websocket_messages_total", direction="out") == 58
    assert value(samples, "hive_websocket_closes_total", code="1000") == 5
    assert value(samples, "hive_websocket_closes_total", code="1001") == 2
    assert value(samples, "hive_websocket_closes_total", code="1006") == 1


def test_duration_histogram_is_cumulative_and_consistent() -> None:
    samples, types = render(two_workers())
    assert types["hive_http_request_duration_seconds"] == "histogram"
    name = "hive_http_request_duration_seconds"
    bounds = [*ipc.DURATION_BUCKETS, math.inf]
    buckets = [value(samples, f"{name}_bucket", le=_le(b)) for b in bounds]
    assert buckets == [13, 17, 17, 20, 20, 20, 20, 20, 20, 20, 20, 21]
    assert buckets == sorted(buckets)
    assert value(samples, f"{name}_count") == buckets[-1] == 10 + 4 + 7
    assert value(samples, f"{name}_sum") == 12.25 + 0.5 + 0.0625
    assert sum(1 for key in samples if key[0] == f"{name}_bucket") == len(bounds)


def _le(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(bound)


def test_workers_by_state_show_every_state() -> None:
    state = make_state(
        worker(101, 0),
        worker(102, 1, state=sv.WorkerState.STARTING),
        worker(103, 0, state=sv.WorkerState.DRAINING),
        worker(104, 1, state=sv.WorkerState.READY),
    )
    samples, _ = render(state)
    counts = {s.value: value(samples, "hive_workers", state=s.value) for s in sv.WorkerState}
    assert counts == {"starting": 1, "ready": 2, "draining": 1, "stopping": 0}


def test_restarts_and_reloads_show_zeros_and_unknown_reasons() -> None:
    state = make_state()
    state.restarts.update(crash=2, scale=1)
    state.reloads["success"] = 3
    samples, types = render(state)
    assert types["hive_worker_restarts"] == "counter"
    restarts = {
        dict(labels)["reason"]: v
        for (name, labels), v in samples.items()
        if name == "hive_worker_restarts_total"
    }
    assert restarts == {
        "crash": 2,
        "timeout": 0,
        "max_requests": 0,
        "max_memory": 0,
        "reload": 0,
        "scale": 1,
    }
    assert value(samples, "hive_reloads_total", result="success") == 3
    assert value(samples, "hive_reloads_total", result="failure") == 0


def test_per_worker_series() -> None:
    state = two_workers()
    state.workers[103] = worker(103, 0, generation=2, state=sv.WorkerState.STARTING, started_at=999)
    samples, types = render(state)
    assert types["hive_worker_requests"] == "counter"
    assert types["hive_worker_resident_memory_bytes"] == "gauge"
    first = {"slot": "0", "pid": "101", "generation": "1"}
    assert value(samples, "hive_worker_requests_total", **first) == 10
    assert value(samples, "hive_worker_resident_memory_bytes", **first) == 50_000_000
    assert value(samples, "hive_worker_cpu_seconds_total", **first) == 1.5
    assert value(samples, "hive_worker_start_time_seconds", **first) == WALL_NOW - 100
    # A worker that has not reported yet: its start time, and no made-up numbers.
    new = {"slot": "0", "pid": "103", "generation": "2"}
    assert value(samples, "hive_worker_start_time_seconds", **new) == WALL_NOW - 1
    assert ("hive_worker_resident_memory_bytes", frozenset(new.items())) not in samples
    assert ("hive_worker_requests_total", frozenset(new.items())) not in samples


def test_logins_by_result_sum_live_and_retired_workers() -> None:
    state = make_state(
        worker(101, 0, stats=stats(logins={"succeeded": 3, "failed": 2})),
        worker(102, 1, stats=stats(logins={"failed": 5, "limited": 1, "odd": 1})),
    )
    state.retired.add(stats(logins={"succeeded": 4}))
    samples, types = render(state)
    assert types["hive_logins"] == "counter"
    assert value(samples, "hive_logins_total", result="succeeded") == 7
    assert value(samples, "hive_logins_total", result="failed") == 7
    assert value(samples, "hive_logins_total", result="limited") == 1
    assert value(samples, "hive_logins_total", result="busy") == 0  # shown from the start
    assert value(samples, "hive_logins_total", result="odd") == 1


def test_a_worker_that_exits_takes_no_counter_backwards() -> None:
    state = two_workers()
    before, types = render(state)
    # What the supervisor does when a worker exits, then its replacement's first report.
    gone = state.workers.pop(101)
    assert gone.stats is not None
    state.retired.add(gone.stats)
    state.workers[105] = worker(105, 0, stats=stats(1, responses={"GET 200": 1}))
    after, _ = render(state)
    # Per-worker series end with their pid; every hive-wide counter must hold or grow.
    cumulative: set[str] = set()
    for family, kind in types.items():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        cumulative.update(family + suffix for suffix in suffixes.get(kind, []))
    checked = 0
    for (name, labels), was in before.items():
        if name in cumulative and "pid" not in dict(labels):
            assert after[(name, labels)] >= was, (name, labels)
            checked += 1
    assert checked >= 20
    assert value(after, "hive_http_requests_total", method="GET", code="200") == 17 + 1


def test_totals_combined_leaves_the_retired_totals_alone() -> None:
    retired = Totals()
    retired.add(stats(2, responses={"GET 200": 2}, durations=durations(b0=2), duration_sum=0.25))
    live = stats(3, accepted=1, responses={"GET 200": 3}, durations=durations(inf=3))
    combined = retired.combined([live, live])
    assert (combined.requests, combined.accepted) == (8, 2)
    assert combined.responses == {"GET 200": 8}
    assert combined.durations == durations(b0=2, inf=6)
    assert combined.duration_sum == 0.25
    assert (retired.requests, retired.responses) == (2, {"GET 200": 2})
    assert retired.durations == durations(b0=2)


# -- formats --------------------------------------------------------------------------------


def test_openmetrics_has_the_same_numbers() -> None:
    state = two_workers()
    body, content_type = exposition(state, now=NOW, wall_now=WALL_NOW, openmetrics=True)
    assert content_type == CONTENT_TYPE_OPENMETRICS
    assert body.endswith(b"# EOF\n")
    # The parser checks the format's rules too (histogram _count with _sum, ...).
    families = {f.name: f for f in parse_openmetrics(body.decode())}  # type: ignore[no-untyped-call]
    assert families["hive_http_requests"].type == "counter"
    assert families["hive_http_request_duration_seconds"].unit == "seconds"
    om = {
        (s.name, frozenset(s.labels.items())): s.value for f in families.values() for s in f.samples
    }
    text, _ = render(state)
    assert om == text


def test_listen_queues_only_when_given() -> None:
    samples, _ = render(make_state())
    assert not any(name.startswith("hive_listen_queue") for name, _ in samples)
    queues = [("http://127.0.0.1:8000", 3, 128), ("http://[::1]:8000", 0, 128)]
    samples, types = render(make_state(), listen_queues=queues)
    assert types["hive_listen_queue_length"] == "gauge"
    assert value(samples, "hive_listen_queue_length", listener="http://127.0.0.1:8000") == 3
    assert value(samples, "hive_listen_queue_max", listener="http://[::1]:8000") == 128


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        # What Prometheus 2.x and 3.x send.
        (
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
            "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            True,
        ),
        (
            "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,"
            "text/plain;version=1.0.0;escaping=underscores;q=0.4,*/*;q=0.1",
            True,
        ),
        ("application/openmetrics-text", True),
        (None, False),
        ("", False),
        ("*/*", False),
        ("text/plain", False),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("application/openmetrics-text;q=0,text/plain", False),
        ("application/openmetrics-text;q=0.2,text/plain;q=0.9", False),
        ("application/openmetrics-text;version=2.0.0", False),
        ("application/openmetrics-text;q=nonsense", False),
    ],
)
def test_wants_openmetrics(accept: str | None, expected: bool) -> None:
    assert wants_openmetrics(accept) is expected


# -- the kernel's accept queue ---------------------------------------------------------------


@contextlib.contextmanager
def closing_all() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_listen_queue_is_none_for_unix_and_closed_sockets(tmp_path: Path) -> None:
    with closing_all() as socks:
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        socks.append(unix)
        unix.bind(str(tmp_path / "sock"))
        unix.listen(8)
        assert listen_queue(unix) is None
        closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        closed.close()
        assert listen_queue(closed) is None


def test_the_bus_counters_of_workers_and_the_relay() -> None:
    import dataclasses

    from hive.supervisor import relay

    a = dataclasses.replace(
        stats(1), pubsub_published=3, pubsub_delivered=30, pubsub_subscribers=10
    )
    b = dataclasses.replace(
        stats(1), pubsub_delivered=20, pubsub_dropped=2, pubsub_subscribers=5, pubsub_slow=1
    )
    state = make_state(worker(101, 0, stats=a), worker(102, 1, stats=b))
    state.retired.add(dataclasses.replace(stats(0), pubsub_published=4, pubsub_delivered=7))
    relay.handle(state.relay, 101, ipc.Subscribe("news", 1, ""), NOW)
    relay.handle(state.relay, 102, ipc.Subscribe("news", 1, ""), NOW)
    relay.handle(state.relay, 101, ipc.Publish("news", ["ab", b"cde"]), NOW)
    samples, types = render(state)
    assert value(samples, "hive_pubsub_published_total") == 3 + 4
    assert value(samples, "hive_pubsub_delivered_total") == 30 + 20 + 7
    assert value(samples, "hive_pubsub_dropped_total") == 2
    assert value(samples, "hive_pubsub_slow_subscribers_total") == 1
    assert value(samples, "hive_pubsub_subscribers") == 15
    assert value(samples, "hive_pubsub_relayed_total") == 4  # two messages, two workers
    assert value(samples, "hive_pubsub_backlog_messages") == 2
    assert value(samples, "hive_pubsub_backlog_bytes") == 5
    assert types["hive_pubsub_subscribers"] == "gauge"
    assert types["hive_pubsub_delivered"] == "counter"
