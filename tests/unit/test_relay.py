"""The bus's decisions on one host: the relay, its backlog and ids, and what the
supervisor's state does with bus messages. Events in, messages out; time is a number."""

from __future__ import annotations

import pytest

from hive import _ipc as ipc
from hive.pubsub.backlog import Backlog, parse_id
from hive.supervisor import relay as bus
from hive.supervisor import state as sv
from hive.supervisor.relay import REPLAY_CHUNK, Relay
from tests.unit.test_supervisor_state import Sim

EPOCH = 1_700_000_000_000


def published(sends: list[tuple[int, ipc.Message]]) -> list[tuple[int, str, str | bytes]]:
    out: list[tuple[int, str, str | bytes]] = []
    for pid, message in sends:
        assert isinstance(message, ipc.Published)
        out.extend((pid, i, d) for i, d in zip(message.ids, message.data, strict=True))
    return out


# -- ids and the backlog ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("1700000000000-5", (1700000000000, 5)),
        (b"3-0", (3, 0)),
        ("", None),
        (None, None),
        ("12", None),
        ("a-1", None),
        ("1-b", None),
        ("-1-2", None),
        ("1-2-3", None),
        (b"\xff-1", None),
        ("1" * 30 + "-1", None),
    ],
)
def test_parse_id(text: str | bytes | None, key: tuple[int, int] | None) -> None:
    assert parse_id(text) == key


def test_ids_grow_across_channels_and_restarts() -> None:
    backlog = Backlog(EPOCH)
    a = backlog.append("a", "1", 0.0)
    b = backlog.append("b", "2", 0.0)
    assert (a.id, b.id) == (f"{EPOCH}-1", f"{EPOCH}-2")
    assert a.key < b.key
    later = Backlog(EPOCH + 1).append("a", "3", 0.0)  # hive restarted
    assert later.key > b.key


def test_backlog_replays_after_an_id() -> None:
    backlog = Backlog(EPOCH)
    entries = [backlog.append("news", f"m{n}", float(n)) for n in range(5)]
    backlog.append("other", "x", 5.0)
    assert [e.data for e in backlog.after("news", entries[1].key, 5.0)] == ["m2", "m3", "m4"]
    assert [e.data for e in backlog.after("news", None, 5.0)] == ["m0", "m1", "m2", "m3", "m4"]
    assert backlog.after("news", entries[4].key, 5.0) == []
    assert backlog.after("nothing", None, 5.0) == []
    # An id from before a restart (a smaller epoch): everything held is newer.
    assert len(backlog.after("news", (EPOCH - 1, 999), 5.0)) == 5


def test_backlog_bounds_count_age_and_bytes() -> None:
    backlog = Backlog(EPOCH, size=3, age=10.0, max_bytes=10)
    for n in range(5):
        backlog.append("news", str(n), 0.0)
    assert [e.data for e in backlog.after("news", None, 0.0)] == ["2", "3", "4"]
    assert backlog.after("news", None, 10.5) == []  # too old
    assert backlog.channels() == 0 and backlog.bytes == 0
    backlog.append("old", "aaaa", 20.0)
    backlog.append("new", "bbbb", 20.0)
    backlog.append("new", "cccc", 20.0)  # 12 bytes: the least recently published channel pays
    assert backlog.after("old", None, 20.0) == []
    assert [e.data for e in backlog.after("new", None, 20.0)] == ["bbbb", "cccc"]
    assert backlog.bytes == 8
    backlog.expire(31.0)
    assert backlog.messages() == 0 and backlog.channels() == 0


# -- the relay --------------------------------------------------------------------------------


def test_publish_goes_to_the_workers_that_subscribed() -> None:
    relay = Relay.new(EPOCH)
    assert bus.handle(relay, 1, ipc.Subscribe("news", 1, ""), 0.0) == [
        (1, ipc.Subscribed(1, [], [], False))
    ]
    bus.handle(relay, 2, ipc.Subscribe("news", 1, ""), 0.0)
    bus.handle(relay, 3, ipc.Subscribe("other", 1, ""), 0.0)
    sends = bus.handle(relay, 3, ipc.Publish("news", ["hello"]), 0.0)
    assert sorted(published(sends)) == [(1, f"{EPOCH}-1", "hello"), (2, f"{EPOCH}-1", "hello")]
    assert bus.handle(relay, 1, ipc.Publish("nobody", [b"x"]), 0.0) == []  # kept for replay only
    assert (relay.published, relay.relayed) == (2, 2)


def test_order_of_one_publisher_is_kept() -> None:
    relay = Relay.new(EPOCH)
    bus.handle(relay, 1, ipc.Subscribe("news", 1, ""), 0.0)
    ids = []
    for n in range(100):
        batch: list[str | bytes] = [f"{n}a", f"{n}b"]
        ((_, message),) = bus.handle(relay, 2, ipc.Publish("news", batch), 0.0)
        assert isinstance(message, ipc.Published) and message.data == batch
        for id in message.ids:
            key = parse_id(id)
            assert key is not None
            ids.append(key)
    assert ids == sorted(ids) and len(set(ids)) == 200
    assert bus.handle(relay, 2, ipc.Publish("news", []), 0.0) == []


def test_subscribe_answers_with_the_replay_after_the_id() -> None:
    relay = Relay.new(EPOCH)
    for n in range(4):
        bus.handle(relay, 1, ipc.Publish("news", [f"m{n}"]), 0.0)
    answers = bus.handle(relay, 2, ipc.Subscribe("news", 7, f"{EPOCH}-2"), 0.0)
    assert answers == [(2, ipc.Subscribed(7, [f"{EPOCH}-3", f"{EPOCH}-4"], ["m2", "m3"], False))]
    # An id the relay never gave (another shape): all that is held.
    ((_, every),) = bus.handle(relay, 3, ipc.Subscribe("news", 8, "garbage"), 0.0)
    assert isinstance(every, ipc.Subscribed) and every.data == ["m0", "m1", "m2", "m3"]


def test_a_long_replay_is_split_under_the_channel_limit() -> None:
    relay = Relay.new(EPOCH)
    big = "x" * (200 * 1024)
    for _ in range(6):
        bus.handle(relay, 1, ipc.Publish("news", [big]), 0.0)
    answers = [m for _, m in bus.handle(relay, 2, ipc.Subscribe("news", 1, "0-0"), 0.0)]
    assert all(isinstance(m, ipc.Subscribed) for m in answers)
    assert [m.more for m in answers if isinstance(m, ipc.Subscribed)] == [True, True, False]
    assert sum(len(m.ids) for m in answers if isinstance(m, ipc.Subscribed)) == 6
    for message in answers:
        assert isinstance(message, ipc.Subscribed)
        assert sum(len(d) for d in message.data) <= REPLAY_CHUNK
        assert len(ipc.encode(message)) < ipc.MAX_MESSAGE_SIZE


def test_unsubscribe_and_forget() -> None:
    relay = Relay.new(EPOCH)
    for pid in (1, 2):
        bus.handle(relay, pid, ipc.Subscribe("news", 1, ""), 0.0)
        bus.handle(relay, pid, ipc.Subscribe("sport", 2, ""), 0.0)
    bus.handle(relay, 1, ipc.Unsubscribe("news"), 0.0)
    assert [p for p, _ in bus.handle(relay, 3, ipc.Publish("news", ["x"]), 0.0)] == [2]
    relay.forget(2)
    assert bus.handle(relay, 3, ipc.Publish("news", ["x"]), 0.0) == []
    assert [p for p, _ in bus.handle(relay, 3, ipc.Publish("sport", ["x"]), 0.0)] == [1]
    assert relay.interest == {"sport": {1}} and relay.channels_of == {1: {"sport"}}


def test_a_worker_that_does_not_serve_gets_its_replay_but_no_interest() -> None:
    relay = Relay.new(EPOCH)
    answers = bus.handle(relay, 1, ipc.Subscribe("news", 1, ""), 0.0, serving=False)
    assert answers == [(1, ipc.Subscribed(1, [], [], False))]
    assert relay.interest == {}


# -- in the supervisor's decisions ------------------------------------------------------------


def bus_sends(actions: list[sv.Action]) -> list[tuple[int, ipc.Message]]:
    return [(a.pid, a.message) for a in actions if isinstance(a, sv.Send)]


def test_state_relays_between_workers_and_ids_start_at_the_boot_epoch() -> None:
    sim = Sim(workers=2)
    sim.event(sv.Boot(epoch=EPOCH))
    one, two = sorted(sim.state.workers)
    for pid in (one, two):
        sim.ready(pid)
        sim.event(sv.MessageReceived(pid, ipc.Subscribe("news", 1, "")))
    actions = sim.event(sv.MessageReceived(one, ipc.Publish("news", ["hi"])))
    assert sorted(bus_sends(actions)) == [
        (one, ipc.Published("news", [f"{EPOCH}-1"], ["hi"])),
        (two, ipc.Published("news", [f"{EPOCH}-1"], ["hi"])),
    ]
    # Bus messages do nothing else: no spawn, no log.
    assert all(isinstance(a, sv.Send) for a in actions)


def test_state_ignores_bus_messages_of_unknown_pids() -> None:
    sim = Sim(workers=1)
    sim.boot()
    assert sim.event(sv.MessageReceived(999, ipc.Publish("news", ["x"]))) == []


def test_reload_keeps_the_backlog_and_drained_workers_get_nothing_more() -> None:
    sim = Sim(workers=1)
    sim.event(sv.Boot(epoch=EPOCH))
    (old,) = sim.state.workers
    sim.ready(old)
    sim.event(sv.MessageReceived(old, ipc.Subscribe("news", 1, "")))
    sim.event(sv.MessageReceived(old, ipc.Publish("news", ["before"])))
    sim.event(sv.SignalReceived(1))  # SIGHUP: reload
    (new,) = set(sim.state.workers) - {old}
    sim.ready(new)
    assert sim.state.workers[old].state is sv.WorkerState.DRAINING
    # The draining worker still publishes; it is sent nothing more.
    actions = sim.event(sv.MessageReceived(old, ipc.Publish("news", ["while draining"])))
    assert bus_sends(actions) == []
    # Its clients come back to the new worker with the last id they saw.
    actions = sim.event(sv.MessageReceived(new, ipc.Subscribe("news", 1, f"{EPOCH}-1")))
    assert bus_sends(actions) == [
        (new, ipc.Subscribed(1, [f"{EPOCH}-2"], ["while draining"], False))
    ]
    actions = sim.event(sv.MessageReceived(old, ipc.Subscribe("news", 2, "")))
    assert sim.state.relay.interest == {"news": {new}}


def test_an_exited_worker_is_forgotten_and_the_backlog_expires_on_ticks() -> None:
    sim = Sim(workers=2)
    sim.boot()
    one, two = sorted(sim.state.workers)
    sim.event(sv.MessageReceived(one, ipc.Subscribe("news", 1, "")))
    sim.event(sv.MessageReceived(two, ipc.Publish("news", ["x"])))
    sim.event(sv.Exited(one, -9))
    assert sim.state.relay.interest == {}
    assert sim.state.relay.backlog.messages() == 1
    sim.now = 10_000.0
    sim.event(sv.Tick())
    assert sim.state.relay.backlog.messages() == 0
