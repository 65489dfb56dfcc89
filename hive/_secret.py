"""The server's secret: the key that lets every worker trust what another worker signed.

Digest nonces (hive.cred) are signed with it, so a nonce one worker gave is taken by any
other. ``hive run``'s supervisor makes it before it forks the workers, which inherit it in
memory: it is in no file, no environment and no argument, so neither ``ps`` nor a child
process (a CGI script) sees it. It lasts as long as the supervisor: a restart makes a new
one, and clients holding an old nonce are asked again (Digest's ``stale=true``, which
browsers and curl answer without asking the user).

Several hosts behind one name must share it: ``--secret-file PATH`` (at least 32 bytes,
readable by the owner only) gives it to every worker of every host that names the file.
A process without a supervisor (an embedded ``Server``) makes its own on first use.
"""

from __future__ import annotations

import os
import secrets
import stat

__all__ = ["MIN_SECRET_SIZE", "SecretError", "load_secret_file", "server_secret", "set_secret"]

#: The shortest secret file taken, in bytes.
MIN_SECRET_SIZE = 32

_secret: bytes | None = None


class SecretError(Exception):
    """The secret file cannot be used; the message is one line."""


def server_secret() -> bytes:
    """The secret of this server, made at first use (in the supervisor, before the fork)."""
    global _secret
    if _secret is None:
        _secret = secrets.token_bytes(32)
    return _secret


def set_secret(secret: bytes) -> None:
    """Use ``secret`` from now on (the supervisor's ``--secret-file``; tests)."""
    global _secret
    if len(secret) < 16:
        raise ValueError("the server secret must have at least 16 bytes")
    _secret = secret


def load_secret_file(path: str) -> bytes:
    """The contents of ``path``, refused if short or readable by others."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise SecretError(f"cannot open the secret file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(f"the secret file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise SecretError(
                f"the secret file {path} is open to others (mode {info.st_mode & 0o777:o}):"
                f" chmod 600 {path}"
            )
        data = file.read(1 << 16).strip()
    if len(data) < MIN_SECRET_SIZE:
        raise SecretError(
            f"the secret file {path} holds {len(data)} bytes; it needs {MIN_SECRET_SIZE} or"
            " more (head -c 48 /dev/urandom | base64 > FILE)"
        )
    return data
