"""Listening addresses and the sockets bound to them.

The supervisor binds every listener before any worker starts and keeps the sockets open for
its whole life, so a worker that restarts never leaves a port unbound.

Address syntax (`parse_bind`)::

    127.0.0.1:8080   example.org:8080   [::1]:8080   :8080   8080   unix:/run/hive.sock

``:8080`` and ``8080`` mean every IPv4 interface (0.0.0.0). ``localhost`` means 127.0.0.1, so
that one address gives one socket; list ``[::1]:8080`` as well to serve IPv6 clients. IPv6
sockets are IPv6-only, so ``0.0.0.0:8080`` and ``[::]:8080`` can be used together. A host
name is resolved when binding, and its first address is used.

Unix sockets are created with mode 0o660 (`UNIX_SOCKET_MODE`): the server's user and group
may connect, nobody else. Give a reverse proxy access by putting its user in that group.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import re
import socket
import stat
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "UNIX_SOCKET_MODE",
    "BindAddress",
    "ListenerError",
    "SocketGroups",
    "bind_socket",
    "close_listener",
    "parse_bind",
    "socket_address",
    "url_for",
]

#: Permissions of a unix socket file: connecting needs write permission on it.
UNIX_SOCKET_MODE = 0o660

_ALL_INTERFACES = "0.0.0.0"
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_DOTTED_NUMBERS = re.compile(r"[0-9.]+")

_REASONS = {
    errno.EADDRINUSE: "address already in use",
    errno.EACCES: "permission denied",
    errno.EADDRNOTAVAIL: "address not available on this host",
}


class ListenerError(ValueError):
    """An address that cannot be parsed or listened on. The message is one line."""


@dataclass(frozen=True)
class BindAddress:
    """Where to listen: a TCP host and port, or a unix socket path."""

    family: Literal["tcp", "unix"]
    #: An IP address (IPv6 without brackets) or a host name; "" for unix sockets.
    host: str = ""
    port: int = 0
    #: The socket file for unix sockets, as given (a relative path is relative to the cwd).
    path: str = ""

    def __str__(self) -> str:
        if self.family == "unix":
            return f"unix:{self.path}"
        return _host_port(self.host, self.port)


def parse_bind(text: str) -> BindAddress:
    """Parse an address as given on the command line; see the module docstring."""
    if not text:
        raise ListenerError("empty listen address")
    if text.startswith("unix:"):
        return _parse_unix(text)
    host, port_text, bracketed = _split_host_port(text)
    return BindAddress(
        "tcp", host=_parse_host(host, bracketed, text), port=_parse_port(port_text, text)
    )


def bind_socket(
    address: BindAddress,
    *,
    backlog: int,
    reuse_port: bool = False,
    unix_mode: int = UNIX_SOCKET_MODE,
) -> socket.socket:
    """Return a listening, non-blocking socket for `address`.

    `reuse_port` sets SO_REUSEPORT (several sockets share one port); it raises ListenerError
    where the platform lacks it and is ignored for unix sockets. A unix socket file left
    behind by a dead server is removed first; a live one, or a path that is not a socket,
    is an error. Every failure is a ListenerError such as
    ``cannot listen on 127.0.0.1:8080: address already in use``.
    """
    if address.family == "unix":
        return _bind_unix(address, backlog=backlog, mode=unix_mode)
    return _bind_tcp(address, backlog=backlog, reuse_port=reuse_port)


def socket_address(sock: socket.socket) -> str:
    """The address `sock` is bound to, e.g. ``127.0.0.1:43123`` (the real port after port 0)."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return "unix:" + _unix_name(name)
    return _host_port(name[0], name[1])


def url_for(sock: socket.socket) -> str:
    """A URL for logs: ``http://127.0.0.1:43123``, ``http://[::1]:80`` or ``unix:/x.sock``."""
    if sock.family == socket.AF_UNIX:
        return socket_address(sock)
    return "http://" + socket_address(sock)


# -- parsing --------------------------------------------------------------------------------


def _invalid(text: str, why: str) -> ListenerError:
    return ListenerError(f"invalid listen address {text!r}: {why}")


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_unix(text: str) -> BindAddress:
    path = text.removeprefix("unix:")
    if not path:
        raise _invalid(text, "missing socket path after 'unix:'")
    if "\0" in path:
        raise _invalid(text, "NUL character in socket path")
    return BindAddress("unix", path=path)


def _split_host_port(text: str) -> tuple[str, str, bool]:
    """Split into (host, port text, whether the host was in brackets)."""
    if _is_digits(text):
        return "", text, False
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise _invalid(text, "missing ']' after IPv6 address")
        if not rest.startswith(":") or rest == ":":
            raise _invalid(text, "missing port after ']'")
        return host, rest[1:], True
    host, colon, port_text = text.rpartition(":")
    if not colon or not port_text:
        raise _invalid(text, "missing port")
    if ":" in host:
        raise _invalid(text, "put IPv6 addresses in brackets, as in [::1]:8080")
    return host, port_text, False


def _parse_host(host: str, bracketed: bool, text: str) -> str:
    if bracketed:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise _invalid(text, f"{host!r} is not an IPv6 address") from None
    if not host:
        return _ALL_INTERFACES
    if host.lower() == "localhost":
        return "127.0.0.1"
    if _DOTTED_NUMBERS.fullmatch(host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise _invalid(text, f"{host!r} is not an IPv4 address") from None
    if _HOSTNAME.fullmatch(host):
        return host
    raise _invalid(text, f"{host!r} is not a host name or IP address")


def _parse_port(port_text: str, text: str) -> int:
    if not _is_digits(port_text) or len(port_text) > 5 or int(port_text) > 65535:
        raise _invalid(text, f"port {port_text!r} is not a number from 0 to 65535")
    return int(port_text)


def _is_digits(text: str) -> bool:
    # str.isdigit alone accepts digits of other scripts, which int() would then take.
    return text.isascii() and text.isdigit()


# -- binding --------------------------------------------------------------------------------


def _bind_tcp(address: BindAddress, *, backlog: int, reuse_port: bool) -> socket.socket:
    family, sockaddr = _resolve(address)
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise _bind_error(address, exc) from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, _reuse_port_option(address), 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException as exc:
        sock.close()
        if isinstance(exc, OSError):
            raise _bind_error(address, exc) from exc
        raise
    return sock


def _resolve(address: BindAddress) -> tuple[socket.AddressFamily, tuple[object, ...]]:
    flags = socket.AI_PASSIVE | socket.AI_NUMERICSERV
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM, flags=flags)
    except (socket.gaierror, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ListenerError(
            f"cannot listen on {address}: cannot resolve {address.host!r}: {why}"
        ) from exc
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def _reuse_port_option(address: BindAddress) -> int:
    option: int | None = getattr(socket, "SO_REUSEPORT", None)
    if option is None:
        raise ListenerError(f"cannot listen on {address}: SO_REUSEPORT is not available here")
    return option


def _bind_unix(address: BindAddress, *, backlog: int, mode: int) -> socket.socket:
    _remove_stale_socket(address)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound = False
    try:
        sock.bind(address.path)
        bound = True
        # Before listen() every connect is refused, so the mode is set before anyone can
        # get in with the looser permissions the umask gave the file.
        os.chmod(address.path, mode)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException as exc:
        sock.close()
        if bound:
            _unlink_quietly(address.path)
        if isinstance(exc, OSError):
            raise _bind_error(address, exc) from exc
        raise
    return sock


def _remove_stale_socket(address: BindAddress) -> None:
    """Remove a socket file nobody accepts on; refuse a live socket or any other file."""
    try:
        mode = os.lstat(address.path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _bind_error(address, exc) from exc
    if not stat.S_ISSOCK(mode):
        raise ListenerError(f"cannot listen on {address}: path exists and is not a socket")
    try:
        live = _accepts_connections(address.path)
    except OSError as exc:
        raise _bind_error(address, exc) from exc
    if live:
        raise ListenerError(f"cannot listen on {address}: address already in use")
    _unlink_quietly(address.path)


def _accepts_connections(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Non-blocking, so that a live server with a full backlog answers EAGAIN at once
    # instead of making us wait.
    probe.setblocking(False)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except (BlockingIOError, InterruptedError):
        return True
    finally:
        probe.close()
    return True


def close_listener(sock: socket.socket) -> None:
    """Close a socket made by `bind_socket`; a unix socket's file is removed too."""
    path = sock.getsockname() if sock.family == socket.AF_UNIX and sock.fileno() >= 0 else None
    sock.close()
    if isinstance(path, str) and path:
        _unlink_quietly(path)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _bind_error(address: BindAddress, exc: OSError) -> ListenerError:
    reason = _REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
    reason = reason[:1].lower() + reason[1:]
    if exc.errno == errno.EACCES and address.family == "tcp" and 0 < address.port < 1024:
        reason += " (ports below 1024 need privileges)"
    return ListenerError(f"cannot listen on {address}: {reason}")


def _unix_name(name: str | bytes) -> str:
    if isinstance(name, bytes):
        # Linux abstract sockets start with NUL; show it as '@' like ss(8) does.
        text = name.decode("utf-8", "backslashreplace")
        return "@" + text[1:] if text.startswith("\0") else text
    return name


class SocketGroups:
    """The supervisor's listening sockets: one group per worker slot, held for life.

    In "reuseport" mode group g holds one SO_REUSEPORT socket per TCP address, all on the
    same port, and the kernel spreads new connections over the groups; in "shared" mode
    there is one group.  A unix address has one socket, shared by every group.  Groups are
    made on first use and never closed while serving, so a slot's replacement worker
    accepts from the very socket its predecessor did and nothing queued is lost.
    """

    def __init__(self, addresses: list[BindAddress], *, backlog: int, shared: bool) -> None:
        self.addresses = addresses
        self.backlog = backlog
        self.shared = shared
        self._groups: list[list[socket.socket]] = []
        #: The sockets came from systemd: their unix socket files are systemd's to remove.
        self._adopted = False

    @classmethod
    def adopt(cls, sockets: list[socket.socket]) -> SocketGroups:
        """Groups made of sockets bound by someone else (systemd): one shared group."""
        groups = cls([], backlog=0, shared=True)
        groups._groups.append(list(sockets))
        groups._adopted = True
        return groups

    def open(self) -> None:
        """Bind group 0 (every address); errors are ListenerError, one line each."""
        if self._groups:
            return  # adopted
        try:
            self._groups.append([self._bind_first(address) for address in self.addresses])
        except BaseException:
            self.close()
            raise

    def _bind_first(self, address: BindAddress) -> socket.socket:
        if address.family == "unix" or self.shared:
            return bind_socket(address, backlog=self.backlog)
        if address.port != 0:
            # Another server listening with SO_REUSEPORT under our uid would let us join its
            # group and share its traffic: a plain bind first tells that the port is taken.
            bind_socket(address, backlog=1).close()
        return bind_socket(address, backlog=self.backlog, reuse_port=True)

    def sockets(self, groups: tuple[int, ...]) -> list[socket.socket]:
        """The sockets of ``groups`` (each socket once), binding groups not made yet."""
        result: list[socket.socket] = []
        for group in groups:
            for sock in self._group(0 if self.shared else group):
                if sock not in result:
                    result.append(sock)
        return result

    def _group(self, index: int) -> list[socket.socket]:
        while len(self._groups) <= index:
            first = self._groups[0]
            group = []
            for address, sock in zip(self.addresses, first, strict=True):
                if address.family == "unix":
                    group.append(sock)
                else:
                    port = sock.getsockname()[1]
                    same = BindAddress(address.family, address.host, port, address.path)
                    group.append(bind_socket(same, backlog=self.backlog, reuse_port=True))
            self._groups.append(group)
        return self._groups[index]

    def listeners(self) -> list[tuple[str, socket.socket]]:
        """(URL, socket) of every TCP socket of every group, for listen queue metrics."""
        return [
            (f"{url_for(sock)}#{index}", sock)
            for index, group in enumerate(self._groups)
            for sock in group
            if sock.family != socket.AF_UNIX
        ]

    def urls(self, tls: bool = False) -> list[str]:
        urls = [url_for(sock) for sock in self._groups[0]] if self._groups else []
        return [url.replace("http://", "https://", 1) for url in urls] if tls else urls

    def close(self) -> None:
        """Close every socket; unix socket files are removed."""
        seen: set[int] = set()
        for group in self._groups:
            for sock in group:
                if id(sock) not in seen:
                    seen.add(id(sock))
                    if self._adopted:
                        sock.close()
                    else:
                        close_listener(sock)
        self._groups.clear()

    def close_in_child(self, keep: list[socket.socket]) -> None:
        """In a worker: close the sockets it does not serve, leaving the files alone."""
        for group in self._groups:
            for sock in group:
                if sock not in keep and sock.fileno() >= 0:
                    sock.close()
