"""Which WebSocket frame codec hive uses: CPU per 64-byte echo message, codec alone.

The server side of an open connection is fed one masked client frame per read (as an echo
client sends them), hands out its event, and frames the echo; no sockets, no loop.  Both
are sans-IO: wsproto (Twisted's choice) and the `Protocol` of ``websockets`` (uvicorn's).
A text message is decoded to str as a handler receives it (wsproto decodes it itself;
websockets' Protocol leaves it to its caller, so the cost is added here).

    python -m loadtests.ws_codec [--messages 200000] [--rounds 5]

Prints microseconds of CPU per message, the median of the rounds, for each codec.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

MESSAGE = "x" * 64


def client_frames(count: int) -> list[bytes]:
    """``count`` masked text frames of MESSAGE, as a client sends them."""
    from wsproto import ConnectionType
    from wsproto.connection import Connection
    from wsproto.events import TextMessage

    client = Connection(ConnectionType.CLIENT)
    return [client.send(TextMessage(MESSAGE)) for _ in range(count)]


def wsproto_echo(frames: list[bytes]) -> float:
    from wsproto import ConnectionType
    from wsproto.connection import Connection
    from wsproto.events import TextMessage

    server = Connection(ConnectionType.SERVER)
    out = 0
    start = time.process_time()
    for frame in frames:
        server.receive_data(frame)
        for event in server.events():
            if type(event) is TextMessage:
                out += len(server.send(TextMessage(event.data)))
    return time.process_time() - start


def websockets_echo(frames: list[bytes]) -> float:
    from websockets.frames import Opcode
    from websockets.protocol import Protocol, Side

    server = Protocol(Side.SERVER)
    out = 0
    start = time.process_time()
    for frame in frames:
        server.receive_data(frame)
        for event in server.events_received():
            if event.opcode is Opcode.TEXT:
                text = event.data.decode("utf-8")
                server.send_text(text.encode("utf-8"))
        for data in server.data_to_send():
            out += len(data)
    return time.process_time() - start


CODECS: dict[str, Callable[[list[bytes]], float]] = {
    "wsproto": wsproto_echo,
    "websockets": websockets_echo,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    frames = client_frames(args.messages)
    results: dict[str, list[float]] = {name: [] for name in CODECS}
    for _ in range(args.rounds):
        for name, echo in CODECS.items():  # interleaved, so both see the same machine
            results[name].append(echo(frames) / args.messages * 1e6)
    for name, values in results.items():
        print(f"{name:12s} {statistics.median(values):6.2f} us CPU per 64-byte echo message")


if __name__ == "__main__":
    main()
