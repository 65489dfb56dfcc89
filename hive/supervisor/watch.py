"""Development mode's watcher: ``hive run --reload`` reloads when a source file changes.

The supervisor forks one watcher process (`Watcher.start`) before its first worker.  The
watcher runs watchfiles over `Sources` and writes each batch of changed paths to a pipe,
one JSON line a batch; the supervisor reads the pipe in its loop and reloads the way
``hive reload`` does: new workers beside the old ones, which drain only once every new one
is ready.  A change that fails to import abandons that reload (the old workers keep
serving and the error is logged); the next save reloads again.  A separate process keeps
the supervisor single-threaded, so its forks of workers are safe, and the watcher's
inotify watches belong to nothing else.

What is watched, by default: the directory the application is imported from (``--app-dir``,
the current directory) and everything under it, or the ``--reload-dir`` directories
instead; and the ``--config`` file.  Of these, only Python sources and templates count
(`WATCHED_SUFFIXES`), and nothing in a virtualenv (a directory with a ``pyvenv.cfg``, or the
running Python's own prefix), in site-packages, in ``__pycache__``, ``node_modules`` or a
dot-directory such as ``.git`` or ``.venv``.  Static files need no reload: they are read
from disk on each request.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["WATCHED_SUFFIXES", "SourceFilter", "Sources", "Watcher"]

log = logging.getLogger("hive.supervisor")

#: Python sources, and the templates of Twisted, Jinja, Django and Mako, which frameworks
#: cache once loaded.
WATCHED_SUFFIXES: Final = (
    ".py",
    ".html",
    ".htm",
    ".xhtml",
    ".xml",
    ".jinja",
    ".jinja2",
    ".j2",
    ".tmpl",
    ".tpl",
    ".mako",
)
#: Directories never watched, besides virtualenvs and those watchfiles leaves out itself
#: (.git, .venv, __pycache__, node_modules, ...).
IGNORED_DIRS: Final = ("site-packages", "dist-packages", ".nox", ".ruff_cache", ".eggs")
#: watchfiles waits for this many milliseconds without a change before reporting a batch
#: (an editor's save is often several writes and a rename), and at most DEBOUNCE.
STEP: Final = 50
DEBOUNCE: Final = 1600
#: The watcher looks at least this often (ms) whether the supervisor is still there.
_CHECK: Final = 1000


@dataclass(frozen=True)
class Sources:
    """What a development hive watches: directories, and files wherever they are."""

    roots: tuple[str, ...]
    files: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, app_dir: str | None, reload_dirs: Iterable[str], config_file: str | None
    ) -> Sources:
        """The application's directory (or `reload_dirs`) and the config file."""
        roots = [os.path.abspath(d) for d in reload_dirs] or [os.path.abspath(app_dir or ".")]
        files = (os.path.abspath(config_file),) if config_file else ()
        return cls(tuple(roots), files)

    def watched_dirs(self) -> list[str]:
        """The directories to watch: the roots, and those of files outside them."""
        dirs = list(self.roots)
        for file in self.files:
            if not any(_inside(file, root) for root in self.roots):
                dirs.append(os.path.dirname(file))
        return dirs


class SourceFilter:
    """Whether a changed path is a source of the application (see the module docstring).

    Called with watchfiles' (change, path) for every change under the watched directories.
    """

    def __init__(self, sources: Sources) -> None:
        from watchfiles import DefaultFilter

        self._sources = sources
        self._default = DefaultFilter(ignore_dirs=(*DefaultFilter.ignore_dirs, *IGNORED_DIRS))
        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
        self._prefixes = tuple(os.path.join(os.path.realpath(p), "") for p in prefixes)

    def __call__(self, change: object, path: str) -> bool:
        if path in self._sources.files:
            return True
        if not path.endswith(WATCHED_SUFFIXES):
            return False
        root = next((r for r in self._sources.roots if _inside(path, r)), None)
        if root is None or os.path.realpath(path).startswith(self._prefixes):
            return False
        if not self._default(change, path):  # type: ignore[arg-type]
            return False
        directory = os.path.dirname(path)
        while _inside(directory, root):
            if _is_virtualenv(directory):
                return False
            if directory == root:
                break
            directory = os.path.dirname(directory)
        return True


@functools.lru_cache(maxsize=4096)
def _is_virtualenv(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "pyvenv.cfg"))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(os.path.join(root, ""))


class Watcher:
    """The supervisor's end of the watcher process: its pid, and the pipe it reports on."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self._fd = fd
        self._partial = b""

    @classmethod
    def start(cls, sources: Sources, in_child: Callable[[], None]) -> Watcher:
        """Fork the watcher; ``in_child`` drops, in the child, what is the supervisor's."""
        # Imported here so that a missing watchfiles is an error now, not in the child.
        import watchfiles  # noqa: F401

        read_fd, write_fd = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read_fd)
                in_child()
                code = _watch(sources, write_fd, parent)
            except BaseException:
                log.exception("the file watcher failed")
            finally:
                os._exit(code)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        return cls(pid, read_fd)

    def fileno(self) -> int:
        return self._fd

    def read(self) -> list[list[str]] | None:
        """The batches of changed paths reported since the last call; None once the
        watcher is gone (its end of the pipe closed)."""
        try:
            data = os.read(self._fd, 65536)
        except (BlockingIOError, InterruptedError):
            return []
        if not data:
            return None
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        batches = []
        for line in lines:
            with contextlib.suppress(ValueError):
                paths = json.loads(line)
                if isinstance(paths, list):
                    batches.append([str(path) for path in paths])
        return batches

    def stop(self) -> None:
        """End the watcher (the supervisor reaps it with its workers)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _watch(sources: Sources, fd: int, parent: int) -> int:
    """The watcher process: report changes until the supervisor is gone."""
    from watchfiles import watch

    # Ctrl-C reaches the whole process group: stopping is the supervisor's to decide.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # "1 change detected" each time: the supervisor says what changed and what it does.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with os.fdopen(fd, "wb") as out:
        for changes in watch(
            *sources.watched_dirs(),
            watch_filter=SourceFilter(sources),
            debounce=DEBOUNCE,
            step=STEP,
            rust_timeout=_CHECK,
            yield_on_timeout=True,
            raise_interrupt=False,
            ignore_permission_denied=True,
        ):
            if os.getppid() != parent:
                return 0
            if changes:
                try:
                    out.write(json.dumps(sorted({path for _, path in changes})).encode() + b"\n")
                    out.flush()
                except BrokenPipeError:
                    return 0
    return 0
