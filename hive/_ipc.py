"""The messages between a worker and the supervisor, and their framing on the channel.

Each message is one msgpack object, ``[kind, fields]``: a short str and a map of field name
to value. msgpack is self-delimiting, so there is no length prefix. A field this version
does not know is ignored; a missing or wrongly typed field makes the message `Malformed`,
unless the field has a default (fields added later have one, so that adding a field
needs no new protocol version), and a well-formed message of an unknown kind decodes as
`Unknown`.

Messages grow by adding fields with a default at the end of a class: a peer that does not
send such a field gets the default, so adding one needs no new `PROTOCOL_VERSION` (changing
or removing a field does).

`Decoder` never raises. It frames messages itself rather than through `msgpack.Unpacker`,
whose buffer limit does not bound a message (the C unpacker builds containers as bytes
arrive) and which cannot say where the next message starts after an error. Framing first
means that a bad message (undecodable UTF-8, wrong shape, oversize) costs only itself: the
decoder knows where it ended and reads on. Only bytes that cannot start a message (byte
0xC1, or anything but an array where a message starts) lose the framing: msgpack has no
resynchronisation marker, so the decoder returns one `Malformed`, drops the message it was
reading and the rest of that feed, and takes the next feed as the start of a message. The
caller owns the channel and decides whether to keep it.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeAlias

import msgpack  # type: ignore[import-untyped]

__all__ = [
    "DURATION_BUCKETS",
    "MAX_MESSAGE_SIZE",
    "PROTOCOL_VERSION",
    "Decoder",
    "Drain",
    "Failed",
    "Heartbeat",
    "Hello",
    "Malformed",
    "Message",
    "Publish",
    "Published",
    "Ready",
    "Stats",
    "Stop",
    "Subscribe",
    "Subscribed",
    "Unknown",
    "Unsubscribe",
    "encode",
]

PROTOCOL_VERSION = 1

#: Upper bounds in seconds of the request-duration histogram; a last count for +Inf follows.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: `Decoder` refuses a message of more bytes than this, without buffering it.
MAX_MESSAGE_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Hello:
    """Worker: the first message on a fresh channel. The supervisor checks `version`."""

    version: int
    slot: int
    generation: int
    pid: int


@dataclass(frozen=True, slots=True)
class Ready:
    """Worker: the application was imported and the worker is listening."""

    generation: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Worker: sent from its event loop every second, so a blocked loop goes silent."""

    sent_at: float


@dataclass(frozen=True, slots=True)
class Stats:
    """Worker: counters, cumulative since it started.

    `responses` maps "METHOD STATUS" (e.g. "GET 200") to counts; `durations` holds the
    counts of the `DURATION_BUCKETS` histogram plus one for +Inf; another length raises
    ValueError.
    """

    requests: int
    in_flight: int
    connections_active: int
    connections_idle: int
    accepted: int
    rss: int
    cpu_seconds: float
    responses: dict[str, int]
    durations: list[int]
    #: The sum of request durations in seconds (the histogram's _sum).
    duration_sum: float
    #: WebSockets open now; messages received and sent; close code (a str) -> closes.
    websockets_open: int = 0
    websocket_messages_in: int = 0
    websocket_messages_out: int = 0
    websocket_closes: dict[str, int] = field(default_factory=dict)
    #: HTTP logins (hive.guard) by result: "succeeded", "failed", "limited", "busy".
    logins: dict[str, int] = field(default_factory=dict)
    #: The bus (hive.pubsub): messages this worker published, handed to its subscribers,
    #: and lost (a slow subscriber dropped, an unreachable bus); subscribers now, and
    #: subscribers dropped for being slow.
    pubsub_published: int = 0
    pubsub_delivered: int = 0
    pubsub_dropped: int = 0
    pubsub_subscribers: int = 0
    pubsub_slow: int = 0

    def __post_init__(self) -> None:
        if len(self.durations) != len(DURATION_BUCKETS) + 1:
            raise ValueError(
                f"stats.durations: expected {len(DURATION_BUCKETS) + 1} counts,"
                f" got {len(self.durations)}"
            )


@dataclass(frozen=True, slots=True)
class Failed:
    """Worker: it could not start. `error` is one line, e.g. the application's import error."""

    error: str


@dataclass(frozen=True, slots=True)
class Drain:
    """Supervisor: stop accepting, finish requests in flight within `timeout` seconds, close
    idle connections, exit."""

    timeout: float


@dataclass(frozen=True, slots=True)
class Stop:
    """Supervisor: exit now."""


@dataclass(frozen=True, slots=True)
class Publish:
    """Worker: publish each of ``data`` on ``channel``, in order (hive.pubsub); the relay
    gives each its id. A worker sends what was published in one turn of its loop as one
    message: the decoding, the deciding and the sending are paid once for the batch."""

    channel: str
    data: list[str | bytes]


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Worker: send me what is published on ``channel`` from now on, and answer ``token``
    with a `Subscribed` holding the messages held after the id ``after`` ("" for none)."""

    channel: str
    token: int
    after: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Worker: its last subscriber of ``channel`` is gone."""

    channel: str


@dataclass(frozen=True, slots=True)
class Published:
    """Supervisor: messages published on a channel the worker subscribed to, in order,
    with their ids (one `Publish` batch)."""

    channel: str
    ids: list[str]
    data: list[str | bytes]

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.data):
            raise ValueError("published: ids and data differ in length")


@dataclass(frozen=True, slots=True)
class Subscribed:
    """Supervisor: the answer to `Subscribe` ``token``: the messages to replay, oldest
    first, split over several messages under the size limit (``more`` on all but the last).
    Every message published after it reaches the worker as `Published`."""

    token: int
    ids: list[str]
    data: list[str | bytes]
    more: bool

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.data):
            raise ValueError("subscribed: ids and data differ in length")


@dataclass(frozen=True, slots=True)
class Unknown:
    """A well-formed message of a kind this version does not know."""

    kind: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Malformed:
    """Bytes that were not a message. `reason` is one line."""

    reason: str


Message: TypeAlias = (
    Hello
    | Ready
    | Heartbeat
    | Stats
    | Failed
    | Drain
    | Stop
    | Publish
    | Subscribe
    | Unsubscribe
    | Published
    | Subscribed
)
#: The bus's messages, which the supervisor's relay decides on (hive.supervisor.relay).
BUS_MESSAGES = (Publish, Subscribe, Unsubscribe)

_KINDS: dict[type[Any], str] = {
    Hello: "hello",
    Ready: "ready",
    Heartbeat: "heartbeat",
    Stats: "stats",
    Failed: "failed",
    Drain: "drain",
    Stop: "stop",
    Publish: "publish",
    Subscribe: "subscribe",
    Unsubscribe: "unsubscribe",
    Published: "published",
    Subscribed: "subscribed",
}
_CLASSES = {kind: cls for cls, kind in _KINDS.items()}
_NAMES = {cls: tuple(field.name for field in fields(cls)) for cls in _KINDS}


def encode(message: Message) -> bytes:
    """The bytes of one message, ready to write to the channel."""
    names = _NAMES[type(message)]
    body = {name: getattr(message, name) for name in names}
    packed: bytes = msgpack.packb([_KINDS[type(message)], body], use_bin_type=True)
    return packed


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Field checkers by annotation: the checked value, or None when it has the wrong type.
# A float field also takes an int, which other msgpack encoders may write for 1.0.
_CHECKS: dict[str, Any] = {
    "int": lambda v: v if _is_int(v) else None,
    "float": lambda v: float(v) if _is_int(v) or isinstance(v, float) else None,
    "str": lambda v: v if isinstance(v, str) else None,
    "bool": lambda v: v if isinstance(v, bool) else None,
    "list[str]": lambda v: v if isinstance(v, list) and all(type(s) is str for s in v) else None,
    "list[str | bytes]": lambda v: (
        v if isinstance(v, list) and all(isinstance(s, str | bytes) for s in v) else None
    ),
    "dict[str, int]": lambda v: (
        v
        if isinstance(v, dict) and all(type(k) is str and _is_int(n) for k, n in v.items())
        else None
    ),
    "list[int]": lambda v: v if isinstance(v, list) and all(map(_is_int, v)) else None,
}
# (name, annotation, whether the field has a default) of each kind's fields.
_SPECS = {
    kind: (
        cls,
        tuple(
            (
                item.name,
                str(item.type),
                item.default is not MISSING or item.default_factory is not MISSING,
            )
            for item in fields(cls)
        ),
    )
    for kind, cls in _CLASSES.items()
}


def _parse(frame: bytes | bytearray) -> Message | Unknown | Malformed:
    try:
        obj = msgpack.unpackb(frame, raw=False)
    # The C and pure-Python unpackers raise different exceptions for bad input.
    except Exception as exc:
        return Malformed(f"undecodable msgpack: {exc or type(exc).__name__}")
    if not isinstance(obj, list) or len(obj) != 2:
        return Malformed("expected a [kind, fields] array")
    kind, body = obj
    if not isinstance(kind, str):
        return Malformed(f"kind: expected str, got {type(kind).__name__}")
    if not isinstance(body, dict) or not all(type(key) is str for key in body):
        return Malformed(f"{kind}: expected a map of field names")
    spec = _SPECS.get(kind)
    if spec is None:
        return Unknown(kind, body)
    cls, annotations = spec
    values = {}
    for name, annotation, optional in annotations:
        if name not in body:
            if optional:
                continue  # added later: the class's default
            return Malformed(f"{kind}.{name}: missing")
        value = _CHECKS[annotation](body[name])
        if value is None:
            got = type(body[name]).__name__
            return Malformed(f"{kind}.{name}: expected {annotation}, got {got}")
        values[name] = value
    try:
        return cls(**values)  # type: ignore[no-any-return]
    except ValueError as exc:
        return Malformed(str(exc))


# How a msgpack object's lead byte frames it, from the msgpack spec: (kind, width of the
# big-endian length after the lead byte, a count added to that length). A _SKIP object is
# followed by that many bytes, an _ARRAY by that many objects, a _MAP by twice that many.
_SKIP, _ARRAY, _MAP, _BAD = range(4)
_LEADS = (
    [(_SKIP, 0, 0)] * 0x80  # positive fixint
    + [(_MAP, 0, n) for n in range(16)]
    + [(_ARRAY, 0, n) for n in range(16)]
    + [(_SKIP, 0, n) for n in range(32)]  # fixstr
    + [(_SKIP, 0, 0), (_BAD, 0, 0), (_SKIP, 0, 0), (_SKIP, 0, 0)]  # nil, never used, bools
    + [(_SKIP, width, 0) for width in (1, 2, 4)]  # bin
    + [(_SKIP, width, 1) for width in (1, 2, 4)]  # ext: a type byte, then the data
    + [(_SKIP, 0, n) for n in (4, 8, 1, 2, 4, 8, 1, 2, 4, 8)]  # float 32/64, uint, int
    + [(_SKIP, 0, n) for n in (2, 3, 5, 9, 17)]  # fixext 1 to 16, with its type byte
    + [(_SKIP, width, 0) for width in (1, 2, 4)]  # str
    + [(_ARRAY, 2, 0), (_ARRAY, 4, 0), (_MAP, 2, 0), (_MAP, 4, 0)]
    + [(_SKIP, 0, 0)] * 0x20  # negative fixint
)


class Decoder:
    """Decodes one channel's stream: feed it bytes as they arrive, split anywhere.

    A message over `max_size` bytes is one `Malformed`, returned as soon as its headers show
    the size, and is skipped without being buffered. So garbage that reads as a large length
    swallows the bytes that follow until that length has passed; the channel goes quiet,
    which the heartbeat timeout notices.
    """

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._max_size = max_size
        self._reset()

    def _reset(self) -> None:
        self._head = b""  # an object header that the last feed cut off
        self._frame = bytearray()  # the last feeds' bytes of the message being read
        self._oversize = False  # that message was reported and is being skipped
        self._items = 0  # objects of that message still to read; 0 between messages
        self._skip = 0  # bytes of the current object's payload still to pass

    def feed(self, data: bytes) -> list[Message | Unknown | Malformed]:
        """The messages that `data` completed, in order; the rest waits for the next feed."""
        out: list[Message | Unknown | Malformed] = []
        buf = self._head + data if self._head else data
        self._head = b""
        items, skip = self._items, self._skip
        pos = start = 0  # start: where this feed's part of the current message begins
        end = len(buf)
        while True:
            if skip:
                step = min(skip, end - pos)
                pos += step
                skip -= step
                if skip:
                    break
                if not items:
                    self._complete(buf[start:pos], out)
                    start = pos
            if pos == end:
                break
            lead = buf[pos]
            kind, width, count = _LEADS[lead]
            if kind == _BAD or (not items and kind != _ARRAY):
                reason = f"lost the framing at byte 0x{lead:02x}; dropped the rest of this feed"
                out.append(Malformed(reason))
                self._reset()
                return out
            items = items or 1  # a message starts here
            if pos + 1 + width > end:
                self._head = bytes(buf[pos:])  # the caller may reuse its buffer
                break
            if width:
                count += int.from_bytes(buf[pos + 1 : pos + 1 + width])
            pos += 1 + width
            items -= 1
            if kind == _SKIP:
                skip = count
            else:
                items += count if kind == _ARRAY else 2 * count
            # Every object still to come takes at least one byte.
            size = len(self._frame) + pos - start + skip + items
            if size > self._max_size and not self._oversize:
                out.append(Malformed(f"message over {self._max_size} bytes"))
                self._oversize = True
                self._frame.clear()
            if not items and not skip:
                self._complete(buf[start:pos], out)
                start = pos
        self._items, self._skip = items, skip
        if not self._oversize:
            self._frame += buf[start:pos]
        return out

    def _complete(self, tail: bytes, out: list[Message | Unknown | Malformed]) -> None:
        if self._oversize:
            self._oversize = False
        elif self._frame:
            out.append(_parse(self._frame + tail))
            self._frame.clear()
        else:
            out.append(_parse(tail))
