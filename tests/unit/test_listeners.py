from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hive.supervisor.listeners import (
    UNIX_SOCKET_MODE,
    BindAddress,
    ListenerError,
    bind_socket,
    parse_bind,
    socket_address,
    url_for,
)


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


# -- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        ("127.0.0.1:8080", BindAddress("tcp", host="127.0.0.1", port=8080), "127.0.0.1:8080"),
        ("0.0.0.0:80", BindAddress("tcp", host="0.0.0.0", port=80), "0.0.0.0:80"),
        ("[::1]:8080", BindAddress("tcp", host="::1", port=8080), "[::1]:8080"),
        ("[::]:443", BindAddress("tcp", host="::", port=443), "[::]:443"),
        ("[0:0::1]:1", BindAddress("tcp", host="::1", port=1), "[::1]:1"),
        (":8080", BindAddress("tcp", host="0.0.0.0", port=8080), "0.0.0.0:8080"),
        ("8080", BindAddress("tcp", host="0.0.0.0", port=8080), "0.0.0.0:8080"),
        ("localhost:9000", BindAddress("tcp", host="127.0.0.1", port=9000), "127.0.0.1:9000"),
        ("example.org:80", BindAddress("tcp", host="example.org", port=80), "example.org:80"),
        ("127.0.0.1:0", BindAddress("tcp", host="127.0.0.1", port=0), "127.0.0.1:0"),
        ("127.0.0.1:65535", BindAddress("tcp", host="127.0.0.1", port=65535), "127.0.0.1:65535"),
        ("unix:/run/hive.sock", BindAddress("unix", path="/run/hive.sock"), "unix:/run/hive.sock"),
        ("unix:hive.sock", BindAddress("unix", path="hive.sock"), "unix:hive.sock"),
    ],
)
def test_parse_bind(text: str, expected: BindAddress, canonical: str) -> None:
    address = parse_bind(text)
    assert address == expected
    assert str(address) == canonical
    assert parse_bind(str(address)) == address


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("127.0.0.1", "missing port"),
        ("localhost", "missing port"),
        ("127.0.0.1:", "missing port"),
        (":", "missing port"),
        ("127.0.0.1:http", "not a number from 0 to 65535"),
        ("127.0.0.1:65536", "not a number from 0 to 65535"),
        ("127.0.0.1:-1", "not a number from 0 to 65535"),
        ("127.0.0.1:+80", "not a number from 0 to 65535"),
        ("127.0.0.1:0000080", "not a number from 0 to 65535"),
        ("127.0.0.1:\uff18\uff10", "not a number from 0 to 65535"),
        ("99999", "not a number from 0 to 65535"),
        ("::1:8080", "brackets"),
        ("::1", "brackets"),
        ("fe80::1:80", "brackets"),
        ("[::1]", "missing port"),
        ("[::1]8080", "missing port"),
        ("[::1:8080", "missing ']'"),
        ("[127.0.0.1]:80", "not an IPv6 address"),
        ("256.1.1.1:80", "not an IPv4 address"),
        ("1.2.3:80", "not an IPv4 address"),
        ("bad host:80", "not a host name"),
        ("-x.org:80", "not a host name"),
        (" 127.0.0.1:80", "not a host name"),
        ("unix:", "missing socket path"),
        ("unix:/a\0b", "NUL"),
    ],
)
def test_parse_bind_rejects(text: str, why: str) -> None:
    with pytest.raises(ListenerError) as info:
        parse_bind(text)
    message = str(info.value)
    assert why in message
    assert "\n" not in message
    if text:
        assert repr(text) in message


def test_listener_error_is_a_value_error() -> None:
    assert issubclass(ListenerError, ValueError)


# -- TCP ------------------------------------------------------------------------------------


def test_reuse_port_unavailable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(socket, "SO_REUSEPORT", raising=False)
    with pytest.raises(ListenerError, match="SO_REUSEPORT is not available"):
        bind_socket(parse_bind("127.0.0.1:0"), backlog=16, reuse_port=True)


def test_unresolvable_host_is_a_listener_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(ListenerError) as info:
        bind_socket(parse_bind("nowhere.test:80"), backlog=16)
    assert str(info.value) == (
        "cannot listen on nowhere.test:80: cannot resolve 'nowhere.test': Name or service not known"
    )


# -- unix sockets ---------------------------------------------------------------------------


def test_bind_unix_socket(tmp_path: Path, sockets: list[socket.socket]) -> None:
    path = tmp_path / "s.sock"
    sock = bind_socket(parse_bind(f"unix:{path}"), backlog=16)
    sockets.append(sock)
    assert socket_address(sock) == f"unix:{path}"
    assert url_for(sock) == f"unix:{path}"
    assert sock.getblocking() is False
    mode = path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == UNIX_SOCKET_MODE
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sockets.append(client)
    client.connect(str(path))


def test_unix_socket_mode_can_be_chosen(tmp_path: Path, sockets: list[socket.socket]) -> None:
    path = tmp_path / "s.sock"
    sockets.append(bind_socket(parse_bind(f"unix:{path}"), backlog=16, unix_mode=0o600))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_stale_unix_socket_is_replaced(tmp_path: Path, sockets: list[socket.socket]) -> None:
    path = tmp_path / "s.sock"
    # A server that died without removing its socket file.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))
        dead.listen(1)
    assert path.exists()
    sock = bind_socket(parse_bind(f"unix:{path}"), backlog=16)
    sockets.append(sock)
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


def test_live_unix_socket_is_in_use(tmp_path: Path, sockets: list[socket.socket]) -> None:
    path = tmp_path / "s.sock"
    sockets.append(bind_socket(parse_bind(f"unix:{path}"), backlog=16))
    with pytest.raises(ListenerError) as info:
        sockets.append(bind_socket(parse_bind(f"unix:{path}"), backlog=16))
    assert str(info.value) == f"cannot listen on unix:{path}: address already in use"
    assert path.exists()


def test_unix_socket_refuses_to_replace_a_file(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("precious")
    with pytest.raises(ListenerError) as info:
        bind_socket(parse_bind(f"unix:{path}"), backlog=16)
    assert str(info.value) == f"cannot listen on unix:{path}: path exists and is not a socket"
    assert path.read_text() == "precious"


def test_unix_socket_in_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "s.sock"
    with pytest.raises(ListenerError) as info:
        bind_socket(parse_bind(f"unix:{path}"), backlog=16)
    assert str(info.value) == f"cannot listen on unix:{path}: no such file or directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unix_socket_permission_denied(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(ListenerError, match="permission denied"):
            bind_socket(parse_bind(f"unix:{locked / 's.sock'}"), backlog=16)
    finally:
        locked.chmod(0o700)
