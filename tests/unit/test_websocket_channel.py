"""hive.websocket.ChannelFactory: a hive.pubsub channel over WebSockets, through the real
Site, Request and WebSocket connection in memory, read with websockets' client codec."""

from __future__ import annotations

from typing import Any

from websockets.frames import Close, Opcode

from hive.pubsub import LocalBus
from hive.websocket import TRY_AGAIN_LATER, ChannelFactory, WebSocketResource
from tests.unit.harness import run, settle
from tests.unit.test_websocket import Client, close_of, handshake_bytes


def client(bus: LocalBus, factory: ChannelFactory | None = None) -> Client:
    return Client(WebSocketResource(factory or ChannelFactory("news", bus=bus)))


def open_at(peer: Client, path: str) -> bytes:
    peer.harness.send(handshake_bytes(path=path))
    data = bytes(peer.harness.transport.data)
    head, _, rest = data.partition(b"\r\n\r\n")
    peer._seen = len(head) + 4
    if rest:
        peer.codec.receive_data(rest)
        peer._seen = len(data)
    return head


def messages(peer: Client) -> list[tuple[Opcode, bytes]]:
    return [(f.opcode, bytes(f.data)) for f in peer.received() if f.opcode is not Opcode.CLOSE]


def test_each_message_goes_to_every_client_as_it_was_published() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        peers = [client(bus), client(bus)]
        for peer in peers:
            assert peer.open().startswith(b"HTTP/1.1 101")
        await settle()
        assert bus.subscribers() == 2
        bus.publish("news", "text é")
        bus.publish("news", b"\x00bytes")
        bus.publish("other", "not here")
        await settle()
        for peer in peers:
            assert messages(peer) == [
                (Opcode.TEXT, "text é".encode()),
                (Opcode.BINARY, b"\x00bytes"),
            ]
        peers[0].send_text("ignored")  # what a client sends is not an error
        await settle()
        assert messages(peers[0]) == []

    run(scenario())


def test_last_id_replays_and_a_closed_socket_unsubscribes() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        for n in range(3):
            bus.publish("news", f"m{n}")
        await settle()
        peer = client(bus)
        assert open_at(peer, f"/ws?last_id={bus.backlog.epoch}-1").startswith(b"HTTP/1.1 101")
        await settle()
        assert [data for _, data in messages(peer)] == [b"m1", b"m2"]
        peer.ws.connection_lost(None)
        await settle()
        assert bus.subscribers() == 0

    run(scenario())


def test_a_client_that_does_not_read_is_closed_with_1013() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        peer = client(bus, ChannelFactory("news", bus=bus, limit=3))
        peer.open()
        await settle()
        peer.ws.pause_writing(0.0)
        bus.publish("news", "queued")
        await settle()
        peer.ws.resume_writing()
        await settle()
        assert [data for _, data in messages(peer)] == [b"queued"]  # sent once it could be
        peer.ws.pause_writing(0.0)
        for n in range(5):
            bus.publish("news", f"m{n}")
        await settle()
        assert close_of(peer.received()) == Close(
            TRY_AGAIN_LATER, "too slow: come back with last_id"
        )
        assert bus.slow == 1

    run(scenario())


def test_the_bus_closing_closes_with_1001_and_no_channel_refuses() -> None:
    class Rooms(ChannelFactory):
        def channelFor(self, request: Any) -> str | None:
            room = request.args.get(b"room")
            return f"room:{room[0].decode()}" if room else None

    async def scenario() -> None:
        bus = LocalBus()
        peer = client(bus)
        peer.open()
        await settle()
        bus.close()  # the worker drains
        await settle()
        assert close_of(peer.received()).code == 1001
        refused = client(bus, Rooms(bus=bus))
        assert refused.open().startswith(b"HTTP/1.1 403")

    run(scenario())
