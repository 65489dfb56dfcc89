"""Real TCP sockets on loopback: binding, SO_REUSEPORT, the names asyncio reports, and the
kernel's listen queue as the ops endpoint reads it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from hive.address import IPv4Address, address_from_sockaddr
from hive.supervisor.listeners import (
    ListenerError,
    bind_socket,
    parse_bind,
    socket_address,
    url_for,
)
from hive.supervisor.metrics import listen_queue


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    """Sockets a test opened; all closed afterwards, even when the test fails."""
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
needs_reuse_port = pytest.mark.skipif(
    not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT here"
)


@contextlib.contextmanager
def closing_all() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_bind_ipv4_port_zero_reports_real_port(sockets: list[socket.socket]) -> None:
    sock = bind_socket(parse_bind("127.0.0.1:0"), backlog=16)
    sockets.append(sock)
    port = sock.getsockname()[1]
    assert port > 0
    assert socket_address(sock) == f"127.0.0.1:{port}"
    assert url_for(sock) == f"http://127.0.0.1:{port}"
    assert sock.getblocking() is False
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0


def test_bound_socket_accepts_connections(sockets: list[socket.socket]) -> None:
    server = bind_socket(parse_bind("127.0.0.1:0"), backlog=16)
    sockets.append(server)
    client = socket.create_connection(server.getsockname(), timeout=5)
    sockets.append(client)
    server.settimeout(5)
    connection, _ = server.accept()
    sockets.append(connection)
    client.sendall(b"ping")
    assert connection.recv(4) == b"ping"


@needs_ipv6
def test_bind_ipv6_port_zero(sockets: list[socket.socket]) -> None:
    sock = bind_socket(parse_bind("[::1]:0"), backlog=16)
    sockets.append(sock)
    port = sock.getsockname()[1]
    assert sock.family == socket.AF_INET6
    assert socket_address(sock) == f"[::1]:{port}"
    assert url_for(sock) == f"http://[::1]:{port}"
    assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1


def test_second_bind_to_same_port_is_in_use(sockets: list[socket.socket]) -> None:
    first = bind_socket(parse_bind("127.0.0.1:0"), backlog=16)
    sockets.append(first)
    port = first.getsockname()[1]
    with pytest.raises(ListenerError) as info:
        sockets.append(bind_socket(parse_bind(f"127.0.0.1:{port}"), backlog=16))
    assert str(info.value) == f"cannot listen on 127.0.0.1:{port}: address already in use"


@needs_reuse_port
def test_reuse_port_lets_two_sockets_share_a_port(sockets: list[socket.socket]) -> None:
    first = bind_socket(parse_bind("127.0.0.1:0"), backlog=16, reuse_port=True)
    sockets.append(first)
    port = first.getsockname()[1]
    second = bind_socket(parse_bind(f"127.0.0.1:{port}"), backlog=16, reuse_port=True)
    sockets.append(second)
    assert socket_address(second) == f"127.0.0.1:{port}"
    assert second.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0


def test_real_asyncio_peer_and_sock_names() -> None:
    async def exchange() -> tuple[object, object, object, int]:
        accepted: asyncio.Future[tuple[object, object]] = asyncio.get_running_loop().create_future()

        def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(
                (writer.get_extra_info("peername"), writer.get_extra_info("sockname"))
            )
            writer.close()

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        peer, sock = await accepted
        client_sock = writer.get_extra_info("sockname")
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return peer, sock, client_sock, port

    peer, sock, client_sock, port = asyncio.run(exchange())
    assert address_from_sockaddr(socket.AF_INET, sock) == IPv4Address("TCP", "127.0.0.1", port)
    assert address_from_sockaddr(socket.AF_INET, peer) == address_from_sockaddr(
        socket.AF_INET, client_sock
    )


@pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="TCP_INFO is Linux's")
def test_listen_queue_counts_connections_not_yet_accepted() -> None:
    with closing_all() as socks:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        socks.append(server)
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        assert listen_queue(server) == (0, 8)
        for _ in range(3):
            client = socket.create_connection(server.getsockname(), timeout=5)
            socks.append(client)
        # The handshake's last ACK is processed on loopback before connect() returns, but
        # the kernel does not promise it: allow a moment.
        deadline = time.monotonic() + 5
        while listen_queue(server) != (3, 8) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert listen_queue(server) == (3, 8)
        conn, _ = server.accept()
        socks.append(conn)
        assert listen_queue(server) == (2, 8)
        # Established and unbound TCP sockets are not listening: no queue.
        assert listen_queue(conn) is None
        unbound = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        socks.append(unbound)
        assert listen_queue(unbound) is None
