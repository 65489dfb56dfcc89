"""hive's settings: one frozen Config, validated when it is made."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from hive.engine import HeadLimits
from hive.worker.connection import ConnectionLimits

__all__ = ["Config", "ConfigError"]


class ConfigError(ValueError):
    """A setting has a bad value; the message names it."""


_ENGINES = ("auto", "h11", "httptools")
_LOOPS = ("auto", "asyncio", "uvloop")


@dataclass(frozen=True)
class Config:
    """Everything ``hive run`` needs to know.  Times are in seconds, sizes in bytes."""

    #: What to serve: "module:attribute".
    app: str = ""
    #: Where the application is imported from; None for the current directory.
    app_dir: str | None = None
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
    #: How long a graceful stop waits for requests in flight.
    graceful_timeout: float = 30.0
    head: HeadLimits = field(default_factory=HeadLimits)
    connection: ConnectionLimits = field(default_factory=ConnectionLimits)

    def __post_init__(self) -> None:
        if not self.binds:
            raise ConfigError("bind: at least one address is needed")
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
