from __future__ import annotations

import dataclasses
import itertools
import typing
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive._ipc import (
    DURATION_BUCKETS,
    MAX_MESSAGE_SIZE,
    PROTOCOL_VERSION,
    Decoder,
    Drain,
    Failed,
    Heartbeat,
    Hello,
    Malformed,
    Message,
    Publish,
    Published,
    Ready,
    Stats,
    Stop,
    Subscribe,
    Subscribed,
    Unknown,
    Unsubscribe,
    encode,
)

IMPORT_ERROR = "ModuleNotFoundError: No module named 'app'"
HISTOGRAM = list(range(len(DURATION_BUCKETS) + 1))
STATS = Stats(
    requests=10,
    in_flight=1,
    connections_active=2,
    connections_idle=3,
    accepted=4,
    rss=50_000_000,
    cpu_seconds=1.25,
    responses={"GET 200": 8, "POST 404": 2},
    durations=HISTOGRAM,
    duration_sum=0.75,
    websockets_open=3,
    websocket_messages_in=100,
    websocket_messages_out=90,
    websocket_closes={"1000": 5, "1001": 2},
    logins={"succeeded": 3, "failed": 2},
    pubsub_published=5,
    pubsub_delivered=40,
    pubsub_dropped=1,
    pubsub_subscribers=7,
    pubsub_slow=1,
)
EXAMPLES: list[tuple[Message, str, dict[str, Any]]] = [
    (
        Hello(version=1, slot=3, generation=7, pid=4242),
        "hello",
        {"version": 1, "slot": 3, "generation": 7, "pid": 4242},
    ),
    (Ready(generation=7), "ready", {"generation": 7}),
    (Heartbeat(sent_at=1700000000.5), "heartbeat", {"sent_at": 1700000000.5}),
    (STATS, "stats", dataclasses.asdict(STATS)),
    (Failed(error=IMPORT_ERROR), "failed", {"error": IMPORT_ERROR}),
    (Drain(timeout=30.0), "drain", {"timeout": 30.0}),
    (Stop(), "stop", {}),
    (Publish("news", ["héllo"]), "publish", {"channel": "news", "data": ["héllo"]}),
    (Publish("raw", [b"\x00\xff", "t"]), "publish", {"channel": "raw", "data": [b"\x00\xff", "t"]}),
    (
        Subscribe("news", token=3, after="1700000000000-41"),
        "subscribe",
        {"channel": "news", "token": 3, "after": "1700000000000-41"},
    ),
    (Unsubscribe("news"), "unsubscribe", {"channel": "news"}),
    (
        Published("news", ["1700000000000-42"], [b"x"]),
        "published",
        {"channel": "news", "ids": ["1700000000000-42"], "data": [b"x"]},
    ),
    (
        Subscribed(3, ["1-1", "1-2"], ["a", b"b"], more=True),
        "subscribed",
        {"token": 3, "ids": ["1-1", "1-2"], "data": ["a", b"b"], "more": True},
    ),
]
MESSAGES = [message for message, _, _ in EXAMPLES]


def pack(kind: object, fields: object) -> bytes:
    packed: bytes = msgpack.packb([kind, fields], use_bin_type=True)
    return packed


def fields_of(message: Message) -> dict[str, Any]:
    return {field.name: getattr(message, field.name) for field in dataclasses.fields(message)}


def decode_one(data: bytes) -> object:
    """Decode `data`, which must hold exactly one message, and check the decoder is in sync
    after it: a message that follows in the same feed decodes."""
    results = Decoder().feed(data + encode(Stop()))
    assert len(results) == 2, results
    assert results[1] == Stop()
    return results[0]


def test_protocol_constants() -> None:
    assert PROTOCOL_VERSION == 1
    assert DURATION_BUCKETS == (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
    assert set(typing.get_args(Message)) == {
        *(Hello, Ready, Heartbeat, Stats, Failed, Drain, Stop),
        *(Publish, Subscribe, Unsubscribe, Published, Subscribed),
    }


@pytest.mark.parametrize(("message", "kind", "fields"), EXAMPLES)
def test_wire_format(message: Message, kind: str, fields: dict[str, Any]) -> None:
    data = encode(message)
    assert msgpack.unpackb(data, raw=False) == [kind, fields]
    assert data == pack(kind, fields)


@pytest.mark.parametrize("message", MESSAGES)
def test_round_trip(message: Message) -> None:
    assert Decoder().feed(encode(message)) == [message]


def test_messages_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Ready(1).generation = 2  # type: ignore[misc]


def test_stats_needs_one_count_per_bucket_and_inf() -> None:
    with pytest.raises(ValueError, match="durations"):
        dataclasses.replace(STATS, durations=[0] * len(DURATION_BUCKETS))
    fields = fields_of(STATS) | {"durations": [0] * 3}
    assert decode_one(pack("stats", fields)) == Malformed(
        "stats.durations: expected 12 counts, got 3"
    )


def test_unknown_kind_keeps_its_fields() -> None:
    fields = {"a": 1, "b": [b"x", {"c": None}]}
    assert decode_one(pack("reload", fields)) == Unknown("reload", fields)
    assert decode_one(pack("reload", {})) == Unknown("reload", {})


def test_extra_fields_are_ignored() -> None:
    for message, kind, fields in EXAMPLES:
        assert decode_one(pack(kind, fields | {"added_in_v2": [1, 2]})) == message


def test_a_float_field_takes_an_int() -> None:
    decoded = decode_one(pack("heartbeat", {"sent_at": 5}))
    assert decoded == Heartbeat(5.0)
    assert isinstance(decoded, Heartbeat)
    assert type(decoded.sent_at) is float


def _required(message: Message, name: str) -> bool:
    item = next(f for f in dataclasses.fields(message) if f.name == name)
    return item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING


MISSING = [
    (kind, name, {key: value for key, value in fields.items() if key != name})
    for message, kind, fields in EXAMPLES
    for name in fields
    if _required(message, name)
]
OPTIONAL = [
    (message, kind, name, {key: value for key, value in fields.items() if key != name})
    for message, kind, fields in EXAMPLES
    for name in fields
    if not _required(message, name)
]


@pytest.mark.parametrize(
    ("kind", "name", "fields"), MISSING, ids=[f"{k}.{n}" for k, n, _ in MISSING]
)
def test_missing_field(kind: str, name: str, fields: dict[str, Any]) -> None:
    assert decode_one(pack(kind, fields)) == Malformed(f"{kind}.{name}: missing")


@pytest.mark.parametrize(
    ("message", "kind", "name", "fields"),
    OPTIONAL,
    ids=[f"{k}.{n}" for _, k, n, _ in OPTIONAL],
)
def test_field_added_later_takes_its_default(
    message: Message, kind: str, name: str, fields: dict[str, Any]
) -> None:
    """A peer that predates a field with a default (a worker of an older hive) still talks."""
    decoded = decode_one(pack(kind, fields))
    default = type(message)(**{k: v for k, v in fields_of(message).items() if k != name})
    assert decoded == default


def test_ids_and_data_are_as_many() -> None:
    fields = {"token": 1, "ids": ["1-1"], "data": [], "more": False}
    assert decode_one(pack("subscribed", fields)) == Malformed(
        "subscribed: ids and data differ in length"
    )
    fields = {"channel": "c", "ids": [], "data": ["x"]}
    assert decode_one(pack("published", fields)) == Malformed(
        "published: ids and data differ in length"
    )


# A wrongly typed value for each annotation; bool is not an int, though Python says it is.
WRONG: dict[str, list[object]] = {
    "int": [True, 1.0, "1", None, [1]],
    "float": [False, "1.0", None],
    "str": [1, b"bytes", None],
    "dict[str, int]": [[], {"GET 200": "1"}, {"GET 200": 1.0}, {b"GET 200": 1}, {"GET 200": True}],
    "list[int]": [{}, [1.0] * 12, ["1"] * 12, [None] * 12],
    "bool": [0, 1, "true", None],
    "list[str]": [{}, "1-1", [b"1-1"], [1]],
    "list[str | bytes]": [{}, "ab", [1], [None]],
}
BAD = [
    (kind, name, annotation, value)
    for message, kind, _ in EXAMPLES
    for name, annotation in ((field.name, str(field.type)) for field in dataclasses.fields(message))
    for value in WRONG[annotation]
]


@pytest.mark.parametrize(("kind", "name", "annotation", "value"), BAD)
def test_wrongly_typed_field(kind: str, name: str, annotation: str, value: object) -> None:
    message = MESSAGES[[k for _, k, _ in EXAMPLES].index(kind)]
    decoded = decode_one(pack(kind, fields_of(message) | {name: value}))
    assert decoded == Malformed(f"{kind}.{name}: expected {annotation}, got {type(value).__name__}")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (msgpack.packb(["stop"]), "expected a [kind, fields] array"),
        (msgpack.packb(["stop", {}, 1]), "expected a [kind, fields] array"),
        (msgpack.packb([]), "expected a [kind, fields] array"),
        (msgpack.packb([1, {}]), "kind: expected str, got int"),
        (msgpack.packb([b"stop", {}], use_bin_type=True), "kind: expected str, got bytes"),
        (msgpack.packb(["stop", []]), "stop: expected a map of field names"),
        (
            msgpack.packb(["zap", {b"a": 1}], use_bin_type=True),
            "zap: expected a map of field names",
        ),
    ],
)
def test_wrong_shape(data: bytes, reason: str) -> None:
    assert decode_one(data) == Malformed(reason)


@pytest.mark.parametrize(
    "data",
    [
        pack("failed", {"error": "x"}).replace(b"\xa1x", b"\xa1\xff"),  # not UTF-8
        pack("zap", {"a": {1: 2}}),  # strict_map_key: an int key
        b"\x92\xa3zap\x81\xa1a\xc7\x03\xffabc",  # ext -1, a timestamp, of a bad length
        b"\x92\xa3zap\x81\xa1a" + b"\x91" * 5000 + b"\x90",  # nested too deep for msgpack
    ],
    ids=["utf8", "map-key", "timestamp", "deep"],
)
def test_undecodable_message_costs_only_itself(data: bytes) -> None:
    decoded = decode_one(data)
    assert isinstance(decoded, Malformed)
    assert decoded.reason.startswith("undecodable msgpack: ")


@pytest.mark.parametrize(
    "garbage", [b"\xc1", b"hello\n", b"\x00", msgpack.packb({"kind": "stop"}), b"\xff\x92"]
)
def test_garbage_where_a_message_starts_loses_the_rest_of_the_feed(garbage: bytes) -> None:
    decoder = Decoder()
    stop = encode(Stop())
    assert decoder.feed(stop + garbage + stop) == [
        Stop(),
        Malformed(f"lost the framing at byte 0x{garbage[0]:02x}; dropped the rest of this feed"),
    ]
    assert decoder.feed(stop) == [Stop()]


def test_garbage_inside_a_message_drops_what_was_buffered() -> None:
    decoder = Decoder()
    data = encode(STATS)
    # Where an object header is due: inside a string, 0xC1 would be just another byte.
    assert data.startswith(b"\x92\xa5stats")
    assert decoder.feed(data[:7]) == []
    assert decoder.feed(b"\xc1" + data) == [
        Malformed("lost the framing at byte 0xc1; dropped the rest of this feed")
    ]
    assert decoder.feed(data) == [STATS]
    assert decoder.feed(data[:9] + b"\xc1") == []


def test_header_split_across_feeds() -> None:
    decoder = Decoder()
    data = pack("zap", {"s": "x" * 70000})  # str 32: five header bytes
    cut = data.index(b"\xdb") + 3
    assert decoder.feed(data[:cut]) == []
    assert decoder.feed(data[cut:]) == [Unknown("zap", {"s": "x" * 70000})]


def test_largest_message_decodes_and_one_byte_more_does_not() -> None:
    overhead = len(encode(Failed("x" * 70000))) - 70000
    largest = Failed("x" * (MAX_MESSAGE_SIZE - overhead))
    data = encode(largest)
    assert len(data) == MAX_MESSAGE_SIZE
    assert Decoder().feed(data) == [largest]
    too_big = encode(Failed("x" * (MAX_MESSAGE_SIZE - overhead + 1)))
    assert decode_one(too_big) == Malformed(f"message over {MAX_MESSAGE_SIZE} bytes")


def test_oversize_is_reported_at_once_and_skipped_unbuffered() -> None:
    decoder = Decoder(max_size=1000)
    data = encode(Failed("x" * 5000))
    # The header shows the size: the Malformed comes before the string does.
    assert decoder.feed(data[:20]) == [Malformed("message over 1000 bytes")]
    for offset in range(20, len(data), 100):
        assert decoder.feed(data[offset : offset + 100]) == []
    assert decoder.feed(encode(Stop())) == [Stop()]


def test_oversize_by_count_of_objects() -> None:
    decoder = Decoder(max_size=1000)
    data = pack("zap", {"n": [0] * 2000})  # small objects, each a byte
    assert decoder.feed(data[:30]) == [Malformed("message over 1000 bytes")]
    assert decoder.feed(data[30:] + encode(Stop())) == [Stop()]
    nested = pack("zap", {"n": [[0] * 10] * 100})  # no single length is over the limit
    assert len(nested) > 1000
    assert Decoder(max_size=1000).feed(nested + encode(Stop())) == [
        Malformed("message over 1000 bytes"),
        Stop(),
    ]


# Lengths on both sides of each msgpack size class, so every header width is framed.
SIZES = [0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536]
EDGE_VALUES: list[object] = [
    *("s" * n for n in SIZES),
    *(b"b" * n for n in SIZES),
    *([0] * n for n in SIZES),
    *({str(i): None for i in range(n)} for n in SIZES),
    *(msgpack.ExtType(5, b"e" * n) for n in [1, 2, 3, 4, 8, 16, 17, 255, 256, 65535, 65536]),
    *(
        sign * 2**bits + delta
        for bits in (7, 8, 15, 16, 31, 32, 63)
        for sign in (1, -1)
        for delta in (-1, 0, 1)
        if -(2**63) <= sign * 2**bits + delta < 2**64
    ),
    2**64 - 1,
    -(2**63),
    None,
    True,
    False,
    0.5,
    -32,
    -33,
    127,
    128,
]


def edge_id(value: object) -> str:
    if isinstance(value, msgpack.ExtType):
        return f"ext{len(value.data)}"
    if isinstance(value, str | bytes | list | dict):
        return f"{type(value).__name__}{len(value)}"
    return repr(value)


@pytest.mark.parametrize("value", EDGE_VALUES, ids=edge_id)
def test_framing_agrees_with_msgpack(value: object) -> None:
    data = pack("zap", {"v": value})
    assert decode_one(data) == Unknown("zap", {"v": value})
    decoder = Decoder()
    assert [r for i in range(len(data)) for r in decoder.feed(data[i : i + 1])] == [
        Unknown("zap", {"v": value})
    ]


def test_float32_is_framed() -> None:
    data = msgpack.packb(["heartbeat", {"sent_at": 0.5}], use_single_float=True)
    assert b"\xca" in data
    assert decode_one(data) == Heartbeat(0.5)


def test_wide_array_and_map_headers_start_a_message() -> None:
    # Another encoder may write the outer array or the fields map in a wider form.
    wide = b"\xdc\x00\x02\xa4stop\xde\x00\x00"
    assert decode_one(wide) == Stop()
    assert decode_one(b"\xdd\x00\x00\x00\x02\xa4stop\xdf\x00\x00\x00\x00") == Stop()


# Hypothesis.

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
floats = st.floats(allow_nan=False)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Hello, ints, ints, ints, ints),
    st.builds(Ready, ints),
    st.builds(Heartbeat, floats),
    st.builds(
        Stats,
        *[ints] * 6,
        floats,
        st.dictionaries(st.text(), ints),
        st.lists(ints, min_size=len(HISTOGRAM), max_size=len(HISTOGRAM)),
        floats,
    ),
    st.builds(Failed, st.text()),
    st.builds(Drain, floats),
    st.just(Stop()),
    st.builds(Publish, st.text(), st.lists(st.text() | st.binary(), max_size=3)),
    st.builds(Subscribe, st.text(), ints, st.text()),
    st.builds(Unsubscribe, st.text()),
    st.lists(st.tuples(st.text(), st.text() | st.binary()), max_size=4).flatmap(
        lambda pairs: st.builds(
            Published, st.text(), st.just([i for i, _ in pairs]), st.just([d for _, d in pairs])
        )
    ),
    st.lists(st.tuples(st.text(), st.text() | st.binary()), max_size=4).flatmap(
        lambda pairs: st.builds(
            Subscribed,
            ints,
            st.just([i for i, _ in pairs]),
            st.just([d for _, d in pairs]),
            st.booleans(),
        )
    ),
)
values = st.recursive(
    st.none()
    | st.booleans()
    | ints
    | floats
    | st.text()
    | st.binary()
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary()),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def feed_all(decoder: Decoder, chunks: list[bytes]) -> list[object]:
    return [result for chunk in chunks for result in decoder.feed(chunk)]


@given(st.lists(messages, max_size=8), st.lists(st.integers(min_value=0), max_size=20))
def test_messages_split_anywhere_decode_the_same(batch: list[Message], cuts: list[int]) -> None:
    data = b"".join(map(encode, batch))
    assert feed_all(Decoder(), split(data, cuts)) == batch


def test_a_stream_split_at_every_point_decodes_the_same() -> None:
    data = b"".join(map(encode, MESSAGES))
    for cut in range(len(data) + 1):
        assert feed_all(Decoder(), [data[:cut], data[cut:]]) == MESSAGES
    assert feed_all(Decoder(), [data[i : i + 1] for i in range(len(data))]) == MESSAGES


@given(st.lists(values, max_size=5), st.lists(st.integers(min_value=0), max_size=10))
def test_any_msgpack_fields_are_framed_exactly(batch: list[object], cuts: list[int]) -> None:
    data = b"".join(pack("zap", {"v": value}) + encode(Ready(1)) for value in batch)
    expected = [r for value in batch for r in (Unknown("zap", {"v": value}), Ready(1))]
    assert feed_all(Decoder(), split(data, cuts)) == expected


@given(
    st.lists(st.one_of(messages, st.integers(0, 300)), max_size=8),
    st.lists(st.integers(min_value=0), max_size=20),
)
def test_oversize_messages_cost_only_themselves(
    batch: list[Message | int], cuts: list[int]
) -> None:
    # An int n stands for a message of n small ints: big ones go over the limit.
    limit = 100
    sent = [m if not isinstance(m, int) else Unknown("zap", {"n": [0] * m}) for m in batch]
    parts = [pack(m.kind, m.fields) if isinstance(m, Unknown) else encode(m) for m in sent]
    expected = [
        Malformed(f"message over {limit} bytes") if len(part) > limit else m
        for m, part in zip(sent, parts, strict=True)
    ]
    assert feed_all(Decoder(max_size=limit), split(b"".join(parts), cuts)) == expected


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_any_bytes_in_any_chunks_never_raise(chunks: list[bytes]) -> None:
    decoder = Decoder(max_size=100)
    for chunk in chunks:
        for result in decoder.feed(chunk):
            assert isinstance(result, (*typing.get_args(Message), Unknown, Malformed))


@given(st.binary(max_size=200), st.lists(st.integers(min_value=0), max_size=10))
def test_garbage_then_valid_messages_never_raise(garbage: bytes, cuts: list[int]) -> None:
    data = garbage + b"".join(map(encode, MESSAGES))
    results = feed_all(Decoder(), split(data, cuts))
    assert all(isinstance(r, (*typing.get_args(Message), Unknown, Malformed)) for r in results)
