"""The error log: where hive's own messages and application tracebacks go."""

from __future__ import annotations

import logging
import sys

__all__ = ["reopen_log_files", "setup_logging"]

FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"


def setup_logging(error_log: str | None = None) -> None:
    """Log to standard error, or to the file ``error_log`` (reopened on SIGUSR1)."""
    handler: logging.Handler
    if error_log:
        handler = logging.FileHandler(error_log, delay=True)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def reopen_log_files() -> None:
    """Close logging's file handlers; each reopens its file, by name, on the next record.

    For logrotate: after it moves a file away, SIGUSR1 makes hive write to a new one.
    """
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                handler.close()
            finally:
                handler.release()
