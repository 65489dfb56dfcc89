from __future__ import annotations

import dataclasses
import os
import socket
import tempfile

import pytest

from hive.address import IPv4Address, IPv6Address, UNIXAddress, address_from_sockaddr


def test_ipv4() -> None:
    address = address_from_sockaddr(socket.AF_INET, ("127.0.0.1", 8080))
    assert address == IPv4Address("TCP", "127.0.0.1", 8080)
    assert isinstance(address, IPv4Address)
    assert (address.type, address.host, address.port) == ("TCP", "127.0.0.1", 8080)


def test_ipv6_four_tuple() -> None:
    address = address_from_sockaddr(socket.AF_INET6, ("::1", 443, 5, 2))
    assert address == IPv6Address("TCP", "::1", 443, flowInfo=5, scopeID=2)
    assert IPv6Address("TCP", "::1", 443) == IPv6Address("TCP", "::1", 443, 0, 0)


def test_ipv6_two_tuple() -> None:
    assert address_from_sockaddr(socket.AF_INET6, ("::1", 443)) == IPv6Address("TCP", "::1", 443)


def test_unix_variants() -> None:
    assert address_from_sockaddr(socket.AF_UNIX, "/tmp/s.sock") == UNIXAddress(b"/tmp/s.sock")
    assert address_from_sockaddr(socket.AF_UNIX, b"\x00abstract") == UNIXAddress(b"\x00abstract")
    assert address_from_sockaddr(socket.AF_UNIX, "") == UNIXAddress(None)
    assert address_from_sockaddr(socket.AF_UNIX, b"") == UNIXAddress(None)
    assert address_from_sockaddr(socket.AF_UNIX, None) == UNIXAddress(None)


@pytest.mark.parametrize(
    ("family", "sockaddr"),
    [
        (socket.AF_INET, ("127.0.0.1",)),
        (socket.AF_INET, ("127.0.0.1", "80")),
        (socket.AF_INET, None),
        (socket.AF_INET6, ("::1", 1, 2)),
        (socket.AF_UNIX, 42),
        (9999, ("127.0.0.1", 80)),
    ],
)
def test_malformed_input_raises_value_error(family: int, sockaddr: object) -> None:
    with pytest.raises(ValueError):
        address_from_sockaddr(family, sockaddr)


def test_addresses_are_frozen_and_hashable() -> None:
    address = IPv4Address("TCP", "10.0.0.1", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        address.port = 2  # type: ignore[misc]
    assert len({address, IPv4Address("TCP", "10.0.0.1", 1)}) == 1


def test_real_unix_socket_names() -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "s.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(path)
            server.listen()
            client.connect(path)
            assert address_from_sockaddr(socket.AF_UNIX, server.getsockname()) == UNIXAddress(
                os.fsencode(path)
            )
            assert address_from_sockaddr(socket.AF_UNIX, client.getsockname()) == UNIXAddress(None)
        finally:
            client.close()
            server.close()
