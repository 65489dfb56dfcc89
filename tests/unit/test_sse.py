"""hive.sse: the event encoder, and event streams through the real Site, Request and
Connection in memory (tests/unit/harness.py), fed by a LocalBus."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from hive import _ipc as ipc
from hive.pubsub import LocalBus, Message
from hive.resource import NOT_DONE_YET, EncodingResourceWrapper, Resource
from hive.server import GzipEncoderFactory, Request
from hive.sse import EventSourceResource, EventStream, format_comment, format_event
from tests.unit.harness import Harness, run, settle

# -- the encoder ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "wire"),
    [
        ({"data": "hello"}, b"data: hello\n\n"),
        ({"data": "a\nb\r\nc\rd"}, b"data: a\ndata: b\ndata: c\ndata: d\n\n"),
        ({"data": ""}, b"data: \n\n"),
        ({"data": " lead"}, b"data:  lead\n\n"),  # the parser takes one space off
        ({"data": "x\n"}, b"data: x\ndata: \n\n"),
        (
            {"data": "é", "event": "update", "id": "1-2", "retry": 1500},
            "event: update\nid: 1-2\nretry: 1500\ndata: é\n\n".encode(),
        ),
        ({"id": ""}, b"id: \n\n"),
        ({"retry": 0}, b"retry: 0\n\n"),
        ({"data": "a\u2028b\x0bc"}, "data: a\u2028b\x0bc\n\n".encode()),  # not line ends
    ],
)
def test_format_event(kwargs: dict[str, Any], wire: bytes) -> None:
    assert format_event(**kwargs) == wire


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, ValueError),
        ({"data": "x", "event": "a\nb"}, ValueError),
        ({"data": "x", "id": "1\r"}, ValueError),
        ({"data": "x", "id": "a\0b"}, ValueError),
        ({"data": "x", "retry": -1}, ValueError),
        ({"data": "x", "retry": 1.5}, ValueError),
        ({"data": "x", "retry": True}, ValueError),
        ({"data": b"bytes"}, TypeError),
        ({"data": "x", "event": 3}, TypeError),
    ],
)
def test_format_event_refuses(kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        format_event(**kwargs)


def test_format_comment() -> None:
    assert format_comment() == b":\n"
    assert format_comment("two\nlines") == b":two\n:lines\n"


def parse_stream(text: str) -> list[dict[str, str]]:
    """The events a browser's EventSource would dispatch (the standard's algorithm)."""
    events = []
    data: list[str] = []
    fields: dict[str, str] = {}
    for line in re.split(r"\r\n|\r|\n", text):
        if not line:
            if data:
                events.append({**fields, "data": "\n".join(data)})
            data, fields = [], {k: v for k, v in fields.items() if k == "id"}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name in ("event", "id", "retry"):
            fields[name] = value
    return events


def test_encoded_events_parse_back() -> None:
    sent = [("one\ntwo", "a", "1-1"), ("  spaced ", None, "1-2"), ("x\r\ny", "b", "1-3")]
    wire = b"".join(format_event(d, event=e, id=i) for d, e, i in sent)
    wire += format_comment("heartbeat")
    events = parse_stream(wire.decode())
    got = [(e["data"], e.get("event"), e["id"]) for e in events]
    assert got == [(d.replace("\r\n", "\n"), e, i) for d, e, i in sent]


# -- streams over a request ----------------------------------------------------------------


def split_response(raw: bytes) -> tuple[str, str]:
    """The head, and the body of a chunked response so far (de-chunked)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    body = bytearray()
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body += rest[:size]
        rest = rest[size + 2 :]
    return head.decode("latin-1"), body.decode("utf-8")


def is_finished(raw: bytes) -> bool:
    return raw.endswith(b"\r\n0\r\n\r\n")


class Ticks(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.streams: list[EventStream] = []

    def render_GET(self, request: Request) -> Any:
        stream = EventStream(request, retry=2000)
        self.streams.append(stream)
        return NOT_DONE_YET


def test_event_stream_head_events_and_close() -> None:
    async def scenario() -> None:
        resource = Ticks()
        harness = Harness(EncodingResourceWrapper(resource, [GzipEncoderFactory(minimumSize=0)]))
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        (stream,) = resource.streams
        head, body = split_response(bytes(harness.transport.data))
        assert head.startswith("HTTP/1.1 200 OK")
        assert "Content-Type: text/event-stream" in head
        assert "Cache-Control: no-cache" in head and "X-Accel-Buffering: no" in head
        assert "Transfer-Encoding: chunked" in head
        assert "Content-Encoding" not in head  # never compressed
        assert body == "retry: 2000\n\n"
        stream.send("first", event="tick", id="1")
        # Each event is written at once: it is in the transport now.
        assert split_response(bytes(harness.transport.data))[1].endswith(
            "event: tick\nid: 1\ndata: first\n\n"
        )
        stream.comment("note")
        stream.close()
        assert stream.closed
        raw = bytes(harness.transport.data)
        assert is_finished(raw)
        assert parse_stream(split_response(raw)[1]) == [
            {"event": "tick", "id": "1", "data": "first"}
        ]
        stream.send("after close")  # nothing, no error
        assert bytes(harness.transport.data) == raw

    run(scenario())


def test_heartbeat_after_silence_and_the_client_going_away() -> None:
    async def scenario() -> None:
        resource = Ticks()
        harness = Harness(resource)
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        (stream,) = resource.streams
        before = len(harness.transport.data)
        stream._beat()  # not due: nothing
        assert len(harness.transport.data) == before
        stream._last_write -= stream.heartbeat or 0
        stream._beat()
        assert split_response(bytes(harness.transport.data))[1].endswith(":\n\n")
        closed: list[bool] = []
        stream.notifyClose(lambda: closed.append(True))
        harness.connection.connection_lost(None)
        await settle()
        assert stream.closed and closed == [True] and stream._timer is None

    run(scenario())


def test_last_event_id_is_read() -> None:
    async def scenario() -> None:
        resource = Ticks()
        harness = Harness(resource)
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 17-3\r\n\r\n")
        assert resource.streams[0].lastEventId == "17-3"

    run(scenario())


# -- EventSourceResource ------------------------------------------------------------------


def open_stream(harness: Harness, headers: str = "") -> None:
    harness.send(f"GET /events HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())


def site(bus: LocalBus, **kwargs: Any) -> Resource:
    root = Resource()
    root.putChild(b"events", EventSourceResource("news", bus=bus, **kwargs))
    return root


def test_a_channel_served_as_events_with_the_bus_ids() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        harness = Harness(site(bus, event="news", heartbeat=None))
        open_stream(harness)
        assert harness.transport.data == b""  # the head waits for the bus
        await settle()
        head, body = split_response(bytes(harness.transport.data))
        assert "text/event-stream" in head and body == ""
        bus.publish("news", "line one\nline two")
        bus.publish("news", b"bytes are UTF-8 \xc3\xa9")
        bus.publish("other", "not here")
        await settle()
        events = parse_stream(split_response(bytes(harness.transport.data))[1])
        assert [e["data"] for e in events] == ["line one\nline two", "bytes are UTF-8 é"]
        assert all(e["event"] == "news" for e in events)
        assert [e["id"] for e in events] == [f"{bus.backlog.epoch}-{n}" for n in (1, 2)]
        assert bus.subscribers() == 1 and bus.delivered == 2

    run(scenario())


def test_reconnecting_with_last_event_id_replays_what_was_missed() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        for n in range(4):
            bus.publish("news", f"m{n}")
        await settle()
        harness = Harness(site(bus))
        open_stream(harness, f"Last-Event-ID: {bus.backlog.epoch}-2\r\n")
        await settle()
        bus.publish("news", "m4")
        await settle()
        events = parse_stream(split_response(bytes(harness.transport.data))[1])
        assert [e["data"] for e in events] == ["m2", "m3", "m4"]

    run(scenario())


def test_the_stream_ends_when_the_bus_closes_and_the_client_going_away_unsubscribes() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        draining, gone = Harness(site(bus)), Harness(site(bus))
        open_stream(draining)
        open_stream(gone)
        await settle()
        assert bus.subscribers() == 2
        gone.connection.connection_lost(None)
        await settle()
        assert bus.subscribers() == 1
        bus.close()  # the worker drains: streams end, clients reconnect elsewhere
        await settle()
        assert is_finished(bytes(draining.transport.data))

    run(scenario())


def test_a_client_that_does_not_read_is_queued_for_then_dropped() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        harness = Harness(site(bus, limit=3))
        open_stream(harness)
        await settle()
        harness.connection.pause_writing(0.0)
        bus.publish("news", "m0")  # written; the client reads nothing
        bus.publish("news", "m1")  # queued from here on
        await settle()
        written = len(harness.transport.data)
        harness.connection.resume_writing()
        await settle()
        assert len(harness.transport.data) > written  # m1 went out once it could
        harness.connection.pause_writing(0.0)
        for n in range(2, 7):
            bus.publish("news", f"m{n}")
        await settle()
        raw = bytes(harness.transport.data)
        assert is_finished(raw)  # dropped: the client comes back with its last id
        events = parse_stream(split_response(raw)[1])
        assert [e["data"] for e in events] == ["m0", "m1", "m2"]
        assert bus.slow == 1 and bus.subscribers() == 0

    run(scenario())


def test_one_formatting_per_message_for_every_stream() -> None:
    calls: list[Message] = []

    class Counting(EventSourceResource):
        def eventFor(self, message: Message) -> bytes:
            calls.append(message)
            return super().eventFor(message)

    async def scenario() -> None:
        bus = LocalBus()
        root = Resource()
        root.putChild(b"events", Counting("news", bus=bus))
        harnesses = [Harness(root) for _ in range(20)]
        for harness in harnesses:
            open_stream(harness)
        await settle()
        bus.publish("news", "once")
        await settle()
        assert all(b"data: once" in h.transport.data for h in harnesses)

    run(scenario())
    assert len(calls) == 1


def test_channel_per_request_and_none_answers_404() -> None:
    class Rooms(EventSourceResource):
        def channelFor(self, request: Any) -> str | None:
            room = request.args.get(b"room", [b""])[0].decode()
            return f"room:{room}" if room else None

    async def scenario() -> None:
        bus = LocalBus()
        root = Resource()
        root.putChild(b"events", Rooms(bus=bus))
        harness = Harness(root)
        response = harness.get("/events")
        assert response.status == 404
        other = Harness(root)
        other.send(b"GET /events?room=7 HTTP/1.1\r\nHost: x\r\n\r\n")
        await settle()
        bus.publish("room:7", "hi")
        bus.publish("room:8", "not for 7")
        await settle()
        events = parse_stream(split_response(bytes(other.transport.data))[1])
        assert [e["data"] for e in events] == ["hi"]

    run(scenario())


def test_head_gets_the_headers_only() -> None:
    async def scenario() -> None:
        harness = Harness(site(LocalBus()))
        response = harness.get("/events", method="HEAD")
        assert response.status == 200
        assert response.header("content-type") == "text/event-stream"

    run(scenario())


def test_worker_stats_carry_the_bus_counters() -> None:
    from hive.worker.stats import WorkerStats

    async def scenario() -> ipc.Stats:
        bus = LocalBus()
        subscription = bus.subscribe("news")
        await subscription.ready()
        bus.publish("news", "x")
        await asyncio.sleep(0)
        await settle()
        return WorkerStats().snapshot(accepted=0, active=0, idle=0, bus=bus)

    stats = run(scenario())
    assert (stats.pubsub_published, stats.pubsub_delivered, stats.pubsub_subscribers) == (1, 1, 1)
