"""hive's settings: one frozen Config, validated when it is made."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields

from hive._forwarded import TrustedProxies, checked_prefix
from hive.engine import ENGINES, HeadLimits
from hive.worker.connection import ConnectionLimits

__all__ = ["Config", "ConfigError", "usable_cores"]


def usable_cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class ConfigError(ValueError):
    """A setting has a bad value; the message names it."""


_ENGINES = ("auto", *ENGINES)
_LOOPS = ("auto", "asyncio", "uvloop")
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP token, as hive._forms


@dataclass(frozen=True)
class Config:
    """Everything ``hive run`` needs to know.  Times are in seconds, sizes in bytes."""

    #: What to serve: "module:attribute".
    app: str = ""
    #: Where the application is imported from; None for the current directory.
    app_dir: str | None = None
    #: Serve this directory's files (hive.static.File) instead of ``app``.
    path: str | None = None
    #: With ``path``: run its .rpy, .epy and .cgi files (hive.script, hive.twcgi).
    scripts: bool = False
    binds: tuple[str, ...] = ("127.0.0.1:8080",)
    backlog: int = 2048
    #: HTTP engine: "auto" (httptools if installed, else h11), "h11" or "httptools".
    http: str = "auto"
    #: Event loop: "auto" (uvloop if installed), "asyncio" or "uvloop".
    loop: str = "auto"
    #: "-" for standard output, a file path, or None for no access log.
    access_log: str | None = "-"
    display_tracebacks: bool = False
    #: The Server header; empty for none.
    server_header: str = "hive"
    #: How long a graceful stop or a drain waits for requests in flight.
    graceful_timeout: float = 30.0
    #: Worker processes; the usable cores by default.
    workers: int = field(default_factory=lambda: usable_cores())
    #: "reuseport" (a listening socket per worker slot) or "shared" (one for all).
    socket_mode: str = "reuseport"
    #: A worker silent (no heartbeat) this long is killed and replaced.
    timeout: float = 30.0
    #: A new worker not ready after this long has failed to start.
    boot_timeout: float = 60.0
    #: Recycle a worker after this many requests (0: never), plus up to the jitter.
    max_requests: int = 0
    max_requests_jitter: int = 0
    #: Recycle a worker whose resident memory passes this many bytes (0: never).
    max_memory: int = 0
    #: The control socket ``hive status|reload|stop|scale`` talk to; None for the default.
    control: str | None = None
    #: What ``hive list`` and ``--name`` call this hive; None: its first listening address.
    name: str | None = None
    #: Development mode: reload when the sources change (hive.supervisor.watch); it also
    #: shows tracebacks on 500 pages and defaults to one worker.
    reload: bool = False
    #: Development mode watches these directories instead of the application's.
    reload_dirs: tuple[str, ...] = ()
    pid_file: str | None = None
    #: Where the supervisor serves /metrics, /healthz, /readyz and /status; None for off.
    metrics_bind: str | None = None
    #: "combined" or "json" access log lines.
    log_format: str = "combined"
    #: The error log: None for standard error, or a file (reopened on SIGUSR1).
    error_log: str | None = None
    #: Proxies (addresses, networks, or "*") whose Forwarded and X-Forwarded-* headers are
    #: believed.
    forwarded_allow: tuple[str, ...] = ()
    #: The path prefix (``/app``) those proxies serve the site under and strip, for proxies
    #: that do not send X-Forwarded-Prefix; None: the header's, if any.
    root_path: str | None = None
    #: TLS: a PEM certificate chain and its key; both or neither.
    certfile: str | None = None
    keyfile: str | None = None
    #: Where the session store (sessions.sqlite3) lives; None: $XDG_RUNTIME_DIR/hive or
    #: /tmp/hive-<uid> (hive.session.default_session_dir).
    session_dir: str | None = None
    #: The session cookie's name (``__Host-`` before it on secure requests).
    session_cookie: str = "HIVE_SESSION"
    #: A file holding the server's secret (hive._secret), shared by hosts; None: a random
    #: secret per supervisor.
    secret_file: str | None = None
    #: ``app`` is a WSGI application, served at the root (hive.wsgi).
    wsgi: bool = False
    #: ``app`` is an ASGI 3 application, served at the root (hive.asgi).
    asgi: bool = False
    #: Threads per worker for WSGI applications; 0 runs them on the event loop.
    threads: int = 10
    #: The bus (hive.pubsub) between hosts: a Redis URL (redis://host:port/db, rediss://
    #: for TLS, unix:///path.sock?db=N); None: the supervisor relays it on this host.
    pubsub: str | None = None
    head: HeadLimits = field(default_factory=HeadLimits)
    connection: ConnectionLimits = field(default_factory=ConnectionLimits)

    def __post_init__(self) -> None:
        if not self.binds:
            raise ConfigError("bind: at least one address is needed")
        if not 1 <= self.workers <= 1024:
            raise ConfigError(f"workers: must be 1 to 1024, got {self.workers}")
        if self.socket_mode not in ("reuseport", "shared"):
            raise ConfigError(f"socket_mode: must be reuseport or shared, got {self.socket_mode!r}")
        for name in ("timeout", "boot_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be positive, got {getattr(self, name)}")
        for name in ("max_requests", "max_requests_jitter", "max_memory", "threads"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must not be negative, got {getattr(self, name)}")
        if self.log_format not in ("combined", "json"):
            raise ConfigError(f"log_format: must be combined or json, got {self.log_format!r}")
        if (self.certfile is None) != (self.keyfile is None):
            raise ConfigError("certfile and keyfile: give both or neither")
        if self.wsgi and self.asgi:
            raise ConfigError("wsgi and asgi: an application is one or the other")
        if self.path is not None and not os.path.isdir(self.path):
            raise ConfigError(f"path: not a directory: {self.path}")
        if self.scripts and self.path is None:
            raise ConfigError("scripts: runs the scripts of --path DIR; give --path too")
        cookie = self.session_cookie
        # hive adds __Host- itself on secure requests; a plain-HTTP cookie cannot have it.
        prefixed = cookie.lower().startswith(("__host-", "__secure-"))
        if _COOKIE_NAME.fullmatch(cookie) is None or prefixed:
            raise ConfigError(
                "session_cookie: must be a cookie name (letters, digits, !#$%&'*+-.^_`|~)"
                f" without a __Host- or __Secure- prefix, got {cookie!r}"
            )
        if self.pubsub is not None:
            _check_pubsub(self.pubsub)
        try:
            TrustedProxies(self.forwarded_allow)
        except ValueError as exc:
            raise ConfigError(f"forwarded_allow: {exc}") from None
        if self.root_path is not None:
            if checked_prefix(self.root_path) is None:
                raise ConfigError(
                    f"root_path: must be a path prefix such as /app, got {self.root_path!r}"
                )
            if not self.forwarded_allow:
                # Only a request through the proxy was served under the prefix.
                raise ConfigError(
                    "root_path: applies to requests from the proxies in forwarded_allow;"
                    " give forwarded_allow too"
                )
        if self.name is not None and (
            not 0 < len(self.name) <= 100
            or not self.name.isprintable()
            or any(c.isspace() for c in self.name)
        ):
            raise ConfigError(
                f"name: must be 1 to 100 printable characters and no spaces, got {self.name!r}"
            )
        for directory in self.reload_dirs:
            if not os.path.isdir(directory):
                raise ConfigError(f"reload_dir: not a directory: {directory}")
        if self.backlog < 1:
            raise ConfigError(f"backlog: must be at least 1, got {self.backlog}")
        if self.http not in _ENGINES:
            raise ConfigError(f"http: must be one of {', '.join(_ENGINES)}, got {self.http!r}")
        if self.loop not in _LOOPS:
            raise ConfigError(f"loop: must be one of {', '.join(_LOOPS)}, got {self.loop!r}")
        if self.graceful_timeout < 0:
            raise ConfigError(
                f"graceful_timeout: must not be negative, got {self.graceful_timeout}"
            )
        if any(c in self.server_header for c in "\r\n\0"):
            raise ConfigError("server_header: must not contain CR, LF or NUL")
        for limits in (self.head, self.connection):
            for item in fields(limits):
                value = getattr(limits, item.name)
                if value <= 0:
                    raise ConfigError(f"{item.name}: must be positive, got {value}")


_PUBSUB_SCHEMES = ("redis://", "rediss://", "unix://")


def _check_pubsub(url: str) -> None:
    if not url.startswith(_PUBSUB_SCHEMES):
        raise ConfigError(
            f"pubsub: a Redis URL (redis://host:port/db, rediss://..., unix:///path), got {url!r}"
        )
    try:
        import redis  # noqa: F401  (the workers would fail one by one without it)
    except ImportError:
        raise ConfigError("pubsub: Redis needs redis-py: pip install 'hive[redis]'") from None
