"""Which build of hive runs: pure Python, or with its hot modules compiled by mypyc.

The Python sources are the truth.  ``HIVE_COMPILE=1 pip install .`` (with a C compiler)
compiles `MODULES` with mypyc; any other install is pure Python.  setup.py reads `MODULES`
from this file, which therefore imports nothing of hive.  `make test` runs the suite
against both builds (the compiled one from a copy of the tree, see the Makefile).

What compiling asks of those modules: a class users or other modules subclass says
``@mypyc_attr(allow_interpreted_subclasses=True)``, one with a builtin base (an exception)
``native_class=False``; a class attribute a subclass overrides is a ClassVar; a slice of
bytes never ends before it starts (mypyc's bytes slice does not clamp that case).
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util

__all__ = ["MODULES", "build"]

#: The modules compiled, as paths from the project's root: the request's hot path.
MODULES = (
    "hive/_accesslog.py",
    "hive/_clock.py",
    "hive/engine/__init__.py",
    "hive/engine/fast.py",
    "hive/http_headers.py",
    "hive/worker/connection.py",
)


@functools.cache
def build() -> str:
    """``"mypyc"`` if every module of `MODULES` is compiled here, else ``"python"``."""
    for path in MODULES:
        name = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        spec = importlib.util.find_spec(name)
        origin = (spec.origin if spec is not None else None) or ""
        if not origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            return "python"
    return "mypyc"
