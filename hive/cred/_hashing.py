"""Password hashes (argon2id, bcrypt), verified off the event loop, and password files.

argon2-cffi and bcrypt do the work (the ``cred`` extra: ``pip install 'hive[cred]'``);
they are imported on first use, with a one-line error if missing. Both release the GIL
while they hash, so a verification in a thread costs the event loop nothing but the
hand-off. `Verifier` bounds that work: a few threads, and a queue that refuses logins
past its length (`LoginBusy`) instead of letting a flood wait for minutes.

bcrypt reads at most 72 bytes of a password; bcrypt 5 raises on longer ones, where every
earlier implementation (Apache's ``htpasswd -B`` included) used the first 72. Verifying
does as they did, so a file written by them keeps working; hashing refuses longer
passwords for bcrypt (use argon2id, the default).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import os
import secrets
import tempfile
import threading
from collections.abc import Callable
from typing import Any, Final

from hive.cred.error import LoginDenied

__all__ = [
    "BCRYPT_MAX_PASSWORD",
    "HashError",
    "LoginBusy",
    "Verifier",
    "dummy_hash",
    "hash_password",
    "identify",
    "verify_password",
    "write_password_file",
]

#: bcrypt's input limit in bytes.
BCRYPT_MAX_PASSWORD: Final = 72
ARGON2 = "argon2"
BCRYPT = "bcrypt"


class HashError(Exception):
    """A hash cannot be made or read (an unknown format, a library missing)."""


class LoginBusy(LoginDenied):
    """Too many password verifications are waiting: the login is refused for now (a guard
    answers 503 with Retry-After)."""


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise HashError(
            f"{name} is not installed: password hashes need pip install 'hive[cred]'"
        ) from None


def identify(hashed: bytes) -> str | None:
    """``"argon2"``, ``"bcrypt"`` or None, from the hash's prefix."""
    if hashed.startswith((b"$argon2id$", b"$argon2i$", b"$argon2d$")):
        return ARGON2
    if hashed[:4] in (b"$2a$", b"$2b$", b"$2y$") and len(hashed) == 60:
        return BCRYPT
    return None


def hash_password(password: bytes, scheme: str = ARGON2, **parameters: int) -> str:
    """A new hash of ``password``: argon2id (argon2-cffi's defaults, RFC 9106's second
    recommendation, unless ``time_cost``, ``memory_cost``, ``parallelism`` say otherwise)
    or bcrypt (``rounds``, default 12)."""
    if scheme == ARGON2:
        argon2 = _module("argon2")
        hasher = argon2.PasswordHasher(**parameters)
        return str(hasher.hash(password))
    if scheme == BCRYPT:
        if len(password) > BCRYPT_MAX_PASSWORD:
            raise HashError(f"bcrypt takes passwords of up to {BCRYPT_MAX_PASSWORD} bytes")
        bcrypt = _module("bcrypt")
        salt = bcrypt.gensalt(parameters.get("rounds", 12))
        return bytes(bcrypt.hashpw(password, salt)).decode("ascii")
    raise HashError(f"unknown password hash scheme {scheme!r}: argon2 or bcrypt")


def verify_password(password: bytes, hashed: bytes) -> bool:
    """Whether ``password`` matches ``hashed``; blocks for the hash's cost (run it in a
    thread: `Verifier`). A malformed hash is no match."""
    kind = identify(hashed)
    if kind == ARGON2:
        argon2 = _module("argon2")
        try:
            return bool(_argon2_hasher().verify(hashed, password))
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
    if kind == BCRYPT:
        bcrypt = _module("bcrypt")
        try:
            return bool(bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], hashed))
        except ValueError:  # a malformed salt
            return False
    return False


_ARGON2_HASHER: Any = None


def _argon2_hasher() -> Any:
    # verify() reads the parameters from the hash; one hasher serves every hash.
    global _ARGON2_HASHER
    if _ARGON2_HASHER is None:
        _ARGON2_HASHER = _module("argon2").PasswordHasher()
    return _ARGON2_HASHER


def dummy_hash(like: bytes | None) -> bytes:
    """A hash of a random password, as costly to verify as ``like`` (argon2 parameters,
    bcrypt rounds): verified for unknown users, so that an unknown name takes as long to
    refuse as a wrong password."""
    password = secrets.token_bytes(16)
    kind = identify(like) if like else None
    if kind == BCRYPT and like is not None:
        bcrypt = _module("bcrypt")
        rounds = int(like[4:6])
        return bytes(bcrypt.hashpw(password, bcrypt.gensalt(rounds)))
    argon2 = _module("argon2")
    if kind == ARGON2 and like is not None:
        try:
            parameters = argon2.extract_parameters(like.decode("ascii"))
            hasher = argon2.PasswordHasher.from_parameters(parameters)
            return str(hasher.hash(password)).encode("ascii")
        except (argon2.exceptions.InvalidHashError, ValueError, UnicodeDecodeError):
            pass
    return str(argon2.PasswordHasher().hash(password)).encode("ascii")


#: How much nicer than the rest of the worker the verifying threads run (Linux sets a
#: nice value per thread): when the cores are busy, the event loop goes first.
VERIFIER_NICENESS: Final = 10


def _lower_priority() -> None:
    try:
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + VERIFIER_NICENESS))
    except (AttributeError, OSError):
        pass  # not Linux, or not allowed: the threads run at the worker's priority


class Verifier:
    """Runs password verifications in ``threads`` threads, at most ``backlog`` waiting.

    The threads are made on first use, in the process that uses them (so never across a
    fork), at a lower priority than the event loop's thread (`VERIFIER_NICENESS`). A
    verification beyond the backlog raises `LoginBusy` at once.
    """

    def __init__(self, threads: int = 1, backlog: int = 64) -> None:
        if threads < 1 or backlog < 0:
            raise ValueError("a Verifier needs at least one thread and a backlog >= 0")
        self.threads = threads
        self.backlog = backlog
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()
        #: Verifications running or waiting.
        self.pending = 0

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._executor is None or self._pid != os.getpid():
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    self.threads, thread_name_prefix="hive-cred", initializer=_lower_priority
                )
                self._pid = os.getpid()
                self.pending = 0
            return self._executor

    async def run(self, function: Callable[[], bool]) -> bool:
        """``function()`` in a thread of the pool; LoginBusy if too many wait."""
        pool = self._pool()
        if self.pending >= self.threads + self.backlog:
            raise LoginBusy("too many logins in progress")
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, function)
        finally:
            self.pending -= 1

    def verify(self, password: bytes, hashed: bytes) -> asyncio.Future[bool]:
        """`verify_password` in the pool, as an awaitable (LoginBusy when full)."""
        return asyncio.ensure_future(self.run(lambda: verify_password(password, hashed)))


def write_password_file(
    path: str, username: bytes, hashed: bytes | None, delim: bytes = b":"
) -> bool:
    """Set (or, with ``hashed`` None, remove) ``username``'s line in the password file at
    ``path``, keeping the other lines, written whole to a new file renamed over the old
    (mode 0600 when new, the old file's mode otherwise). Whether the user was there."""
    if not username or delim in username or b"\n" in username or b"\r" in username:
        raise HashError(f"user names must be non-empty, without {delim!r} or line ends")
    try:
        with open(path, "rb") as file:
            lines = file.read().splitlines()
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        lines, mode = [], 0o600
    found = False
    out: list[bytes] = []
    for line in lines:
        if line.split(delim, 1)[0] == username and not line.startswith(b"#"):
            found = True
            if hashed is not None:
                out.append(username + delim + hashed)
                hashed = None  # a user named twice keeps one line
            continue
        out.append(line)
    if hashed is not None:
        out.append(username + delim + hashed)
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".passwd-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(b"".join(line + b"\n" for line in out))
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return found
