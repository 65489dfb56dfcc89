"""hive.pubsub in one process: subscriptions, queues, replays, threads; and a worker's
RelayBus wired to the supervisor's real relay decisions (no process, no socket)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hive import _ipc as ipc
from hive import pubsub
from hive.pubsub import LocalBus, Message, SlowSubscriber, Subscription
from hive.pubsub.relay import RelayBus
from hive.supervisor import relay
from hive.supervisor.relay import Relay
from tests.unit.harness import run, settle


async def take(subscription: Subscription, count: int) -> list[Message]:
    out = []
    async for message in subscription:
        out.append(message)
        if len(out) == count:
            break
    return out


def test_publish_reaches_every_subscriber_in_order() -> None:
    async def scenario() -> tuple[list[str], list[str], list[str]]:
        bus = LocalBus()
        one, two = bus.subscribe("news"), bus.subscribe("news")
        other = bus.subscribe("sport")
        await one.ready()
        await two.ready()
        for n in range(5):
            bus.publish("news", f"m{n}")
        bus.publish("sport", b"goal")
        a, b, c = await take(one, 5), await take(two, 5), await take(other, 1)
        ids = [m.id for m in a]
        assert ids == [m.id for m in b] and [m.key for m in a] == sorted(m.key for m in a)
        assert c[0].data == b"goal" and c[0].channel == "sport"
        return [m.data for m in a], [m.data for m in b], [str(m.data) for m in c]  # type: ignore[misc]

    first, second, _ = run(scenario())
    assert first == second == [f"m{n}" for n in range(5)]


def test_a_message_keeps_its_type() -> None:
    async def scenario() -> list[str | bytes]:
        bus = LocalBus()
        async with bus.subscribe("c") as subscription:
            await subscription.ready()
            bus.publish("c", "text")
            bus.publish("c", b"\x00bytes")
            return [m.data for m in await take(subscription, 2)]

    assert run(scenario()) == ["text", b"\x00bytes"]


@pytest.mark.parametrize(
    ("channel", "data", "error"),
    [
        ("c", 42, TypeError),
        ("c", {"a": 1}, TypeError),
        (b"c", "x", TypeError),
        ("", "x", ValueError),
        ("c" * 257, "x", ValueError),
        ("c", "x" * (pubsub.MAX_MESSAGE_SIZE + 1), ValueError),
        ("c", "é" * (pubsub.MAX_MESSAGE_SIZE // 2 + 1), ValueError),  # counted in UTF-8
        ("c", "\udc80", ValueError),
    ],
)
def test_bad_messages_are_refused_at_publish(channel: Any, data: Any, error: type) -> None:
    async def scenario() -> None:
        bus = LocalBus()
        with pytest.raises(error):
            bus.publish(channel, data)
        assert bus.published == 0

    run(scenario())


def test_replay_after_the_last_id_then_live_without_duplicates() -> None:
    async def scenario() -> list[str | bytes]:
        bus = LocalBus()
        seen = bus.subscribe("news")
        await seen.ready()
        for n in range(3):
            bus.publish("news", f"m{n}")
        first = await take(seen, 3)
        seen.close()
        bus.publish("news", "m3")
        bus.publish("news", "m4")
        again = bus.subscribe("news", last_id=first[0].id)
        bus.publish("news", "m5")  # published while the replay is on its way
        return [m.data for m in await take(again, 5)]

    assert run(scenario()) == ["m1", "m2", "m3", "m4", "m5"]


def test_a_subscriber_without_an_id_gets_only_what_follows() -> None:
    async def scenario() -> list[str | bytes]:
        bus = LocalBus()
        bus.publish("news", "old")
        await settle()
        subscription = bus.subscribe("news")
        await subscription.ready()
        bus.publish("news", "new")
        return [m.data for m in await take(subscription, 1)]

    assert run(scenario()) == ["new"]


def test_a_slow_subscriber_is_dropped_after_what_it_had_queued() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        slow = bus.subscribe("news", limit=3)
        fast = bus.subscribe("news", limit=10)
        await slow.ready()
        for n in range(5):
            bus.publish("news", str(n))
        await settle()
        assert slow.closed and not fast.closed
        got = []
        with pytest.raises(SlowSubscriber):
            async for message in slow:
                got.append(message.data)
        assert got == ["0", "1", "2"]
        assert [m.data for m in await take(fast, 5)] == ["0", "1", "2", "3", "4"]
        assert (bus.slow, bus.dropped, bus.subscribers()) == (1, 1, 1)
        assert bus.delivered == 3 + 5

    run(scenario())


def test_close_ends_iteration_and_closing_the_bus_ends_every_subscription() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        one = bus.subscribe("a")
        waiting = asyncio.ensure_future(take(one, 1))
        await settle()
        bus.close()  # a worker drains
        assert await waiting == []
        late = bus.subscribe("a")
        assert late.closed  # a draining worker takes no new subscriber
        bus.publish("a", "still published")
        assert bus.published == 1 and bus.subscribers() == 0

    run(scenario())


def test_listen_calls_back_on_the_loop_and_reports_the_end() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        got: list[str | bytes] = []
        ended: list[BaseException | None] = []
        subscription = bus.listen(
            "news", lambda m: got.append(m.data), on_close=ended.append, limit=2
        )
        await subscription.ready()
        bus.publish("news", "a")
        await settle()
        assert got == ["a"]
        with pytest.raises(TypeError):
            await subscription.__anext__()
        subscription.overflowed()
        assert len(ended) == 1 and isinstance(ended[0], SlowSubscriber)
        bus.publish("news", "b")
        await settle()
        assert got == ["a"]

    run(scenario())


def test_publish_from_threads_keeps_each_threads_order() -> None:
    async def scenario() -> dict[str, list[int]]:
        bus = LocalBus()
        subscription = bus.subscribe("news", limit=10_000)
        await subscription.ready()

        def publisher(name: str) -> None:
            for n in range(500):
                bus.publish("news", f"{name} {n}")

        threads = [threading.Thread(target=publisher, args=(name,)) for name in "ab"]
        for thread in threads:
            thread.start()
        messages = await take(subscription, 1000)
        for thread in threads:
            thread.join()
        order: dict[str, list[int]] = {"a": [], "b": []}
        for message in messages:
            name, n = str(message.data).split()
            order[name].append(int(n))
        return order

    order = run(scenario())
    assert order == {"a": list(range(500)), "b": list(range(500))}


def test_publish_from_a_thread_before_the_bus_has_a_loop_is_an_error() -> None:
    bus = LocalBus()
    errors: list[BaseException] = []

    def publisher() -> None:
        try:
            bus.publish("news", "x")
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=publisher)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "no event loop" in str(errors[0])


def test_the_process_bus_is_a_local_one_until_set() -> None:
    async def scenario() -> None:
        pubsub.set_bus(None)
        try:
            subscription = pubsub.subscribe("x")
            assert isinstance(pubsub.get_bus(), LocalBus)
            await subscription.ready()
            pubsub.publish("x", "y")
            assert [m.data for m in await take(subscription, 1)] == ["y"]
            mine = LocalBus()
            pubsub.set_bus(mine)
            assert pubsub.get_bus() is mine
        finally:
            pubsub.set_bus(None)

    run(scenario())


# -- RelayBus, wired to the relay ---------------------------------------------------------


class Host:
    """Workers' RelayBuses and the supervisor's real relay decisions between them; what
    the relay sends arrives on the loop later, as over a socket."""

    def __init__(self, loop: asyncio.AbstractEventLoop, workers: int) -> None:
        self.loop = loop
        self.relay = Relay.new(1_700_000_000_000)
        self.buses = {pid: RelayBus(self._sender(pid), loop) for pid in range(1, workers + 1)}
        self.sent: list[tuple[int, ipc.Message]] = []

    def _sender(self, pid: int) -> Any:
        def send(message: ipc.Message) -> None:
            decoded = ipc.Decoder().feed(ipc.encode(message))  # through the wire format
            assert decoded == [message]
            self.sent.append((pid, message))
            assert isinstance(message, ipc.Publish | ipc.Subscribe | ipc.Unsubscribe)
            for target, out in relay.handle(self.relay, pid, message, self.loop.time()):
                assert isinstance(out, ipc.Published | ipc.Subscribed)
                self.loop.call_soon(self.buses[target].received, out)

        return send


def test_relay_buses_deliver_to_every_worker_with_the_same_ids() -> None:
    async def scenario() -> None:
        host = Host(asyncio.get_running_loop(), workers=2)
        one, two = host.buses[1], host.buses[2]
        a, b = one.subscribe("news"), two.subscribe("news")
        await a.ready()
        await b.ready()
        two.publish("news", "from two")
        one.publish("news", "from one")
        got_a, got_b = await take(a, 2), await take(b, 2)
        assert [(m.id, m.data) for m in got_a] == [(m.id, m.data) for m in got_b]
        assert [m.data for m in got_a] == ["from two", "from one"]
        # The worker asked once per subscriber and told the relay when the last one left.
        a.close()
        assert (1, ipc.Unsubscribe("news")) in host.sent
        assert host.relay.interest == {"news": {2}}

    run(scenario())


def test_relay_replay_across_a_new_worker() -> None:
    async def scenario() -> list[str | bytes]:
        host = Host(asyncio.get_running_loop(), workers=2)
        old, new = host.buses[1], host.buses[2]
        subscription = old.subscribe("news")
        await subscription.ready()
        old.publish("news", "seen")
        (seen,) = await take(subscription, 1)
        old.close()  # a reload: the old worker drains
        host.relay.forget(1)
        old.publish("news", "missed 1")
        new.publish("news", "missed 2")
        await settle()
        again = new.subscribe("news", last_id=seen.id)
        new.publish("news", "live")
        return [m.data for m in await take(again, 3)]

    assert run(scenario()) == ["missed 1", "missed 2", "live"]


def test_live_messages_during_a_replay_are_not_given_twice() -> None:
    async def scenario() -> list[str | bytes]:
        host = Host(asyncio.get_running_loop(), workers=1)
        bus = host.buses[1]
        first = bus.subscribe("news")
        await first.ready()
        bus.publish("news", "m0")
        (m0,) = await take(first, 1)
        # A second subscriber asks for a replay while live messages keep arriving.
        second = bus.subscribe("news", last_id=m0.id)
        for n in range(1, 4):
            bus.publish("news", f"m{n}")
        await second.ready()
        bus.publish("news", "m4")
        return [m.data for m in await take(second, 4)]

    assert run(scenario()) == ["m1", "m2", "m3", "m4"]


def test_a_burst_goes_to_the_relay_in_batches_and_in_order() -> None:
    async def scenario() -> None:
        host = Host(asyncio.get_running_loop(), workers=1)
        bus = host.buses[1]
        subscription = bus.subscribe("a", limit=10_000)
        await subscription.ready()
        host.sent.clear()
        for n in range(2500):
            bus.publish("a", str(n))
        bus.publish("b", "other channel")
        bus.publish("a", "after")
        late = bus.subscribe("b")  # goes after what was published before it
        await late.ready()
        kinds = [(type(m).__name__, getattr(m, "channel", "")) for _, m in host.sent]
        assert kinds == [
            *[("Publish", "a")] * 3,  # 1000 a message at most
            ("Publish", "b"),
            ("Publish", "a"),
            ("Subscribe", "b"),
        ]
        got = [m.data for m in await take(subscription, 2501)]
        assert got == [str(n) for n in range(2500)] + ["after"]

    run(scenario())


def test_a_publish_from_a_thread_wakes_the_loop() -> None:
    async def scenario() -> bool:
        bus = LocalBus()
        subscription = bus.subscribe("t")
        await subscription.ready()
        received = threading.Event()

        def publisher() -> bool:
            bus.publish("t", "x")
            return received.wait(10)  # the loop must wake up to deliver it

        waiting = asyncio.get_running_loop().run_in_executor(None, publisher)
        (message,) = await asyncio.wait_for(take(subscription, 1), 10)
        assert message.data == "x"
        received.set()
        return await waiting

    # In debug mode asyncio refuses a call_soon from another thread: the hop must be
    # call_soon_threadsafe, which also wakes the loop at once.
    assert asyncio.run(scenario(), debug=True)
