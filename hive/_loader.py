"""Loading the application named on the command line: ``hive run module:attribute``.

The attribute is required. Hive accepts three kinds of object (a Site, a root Resource, or a
factory returning either), and a Twisted-style module often defines both ``root`` and
``site``; guessing one could silently serve the wrong object, whereas naming it costs a few
characters. The attribute may be dotted (``pkg.mod:factory.root``).

Every failure is a `LoadError` with a one-line message that says which file and line of the
application went wrong, so the command line can print it without a traceback.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import sysconfig
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType, TracebackType
from typing import Any, TypeVar

__all__ = ["LoadError", "load_target", "resolve_site"]

S = TypeVar("S")

_THIS_FILE = os.path.abspath(__file__)
_LIBRARY_DIRS = tuple(
    os.path.join(os.path.abspath(path), "")
    for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (path := sysconfig.get_paths().get(key))
)


class LoadError(Exception):
    """The application cannot be loaded. The message is one line."""


def load_target(spec: str, *, app_dir: str | None = None) -> object:
    """Import the module of ``module:attribute`` and return the attribute.

    `app_dir` (default: the current directory) is put first on sys.path unless it is there
    already, so that the application's modules are found as they are in development.
    """
    module_name, attribute = _parse_spec(spec)
    directory = os.path.abspath(app_dir if app_dir is not None else os.getcwd())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module = _import(module_name, directory)
    return _get_attribute(module, module_name, attribute, directory)


def resolve_site(
    obj: object,
    *,
    site_type: type[S],
    resource_type: type,
    make_site: Callable[[Any], S],
    spec: str | None = None,
    adapters: Sequence[tuple[type, Callable[[Any], S]]] = (),
) -> S:
    """Turn what `load_target` returned into the Site to serve.

    A `site_type` instance is returned as is. A resource (an instance of `resource_type`,
    or any object with ``render`` and ``getChildWithDefault`` methods) becomes
    ``make_site(resource)``, an instance of a type in `adapters` its adapter's Site. Any
    other callable is called once without arguments and its result must be one of those.
    `spec` names the object in error messages.
    """
    name = repr(spec) if spec else "the application object"
    for kind, adapt in adapters:
        if isinstance(obj, kind):
            return adapt(obj)
    if _is_servable(obj, site_type, resource_type):
        return _as_site(obj, site_type, make_site)
    if not callable(obj):
        raise LoadError(
            f"{name} is {_kind(obj)}, not a Site, a Resource or a callable returning one"
        )
    if inspect.iscoroutinefunction(obj):
        raise LoadError(f"{name} is an async function; a factory must return its result")
    result = _call_factory(obj, name)
    for kind, adapt in adapters:
        if isinstance(result, kind):
            return adapt(result)
    if not _is_servable(result, site_type, resource_type):
        if inspect.iscoroutine(result):
            result.close()
        raise LoadError(f"{name} returned {_kind(result)}, not a Site or a Resource")
    return _as_site(result, site_type, make_site)


# -- importing ------------------------------------------------------------------------------


def _parse_spec(spec: str) -> tuple[str, str]:
    module_name, colon, attribute = spec.partition(":")
    if not (colon and _is_dotted_name(module_name) and _is_dotted_name(attribute)):
        raise LoadError(f"expected module:attribute, got {spec!r}")
    return module_name, attribute


def _is_dotted_name(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def _import(module_name: str, directory: str) -> ModuleType:
    # A module written moments ago may be missing from the finders' cached listings.
    importlib.invalidate_caches()
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _is_missing(module_name, exc):
            raise LoadError(f"cannot import module {module_name!r}: {_one_line(exc)}") from exc
        raise LoadError(
            f"error while importing {module_name!r}: {_describe(exc, directory)}"
        ) from exc
    except ImportError as exc:
        raise LoadError(
            f"error while importing {module_name!r}: {_describe(exc, directory)}"
        ) from exc
    except SyntaxError as exc:
        raise LoadError(
            f"syntax error while importing {module_name!r}: {_describe_syntax(exc, directory)}"
        ) from exc
    except (Exception, SystemExit) as exc:
        raise LoadError(
            f"an exception was raised while importing {module_name!r}: {_describe(exc, directory)}"
        ) from exc


def _is_missing(module_name: str, exc: ModuleNotFoundError) -> bool:
    """Whether the module itself (or a package above it) is missing, not one it imports."""
    missing = exc.name
    return missing is not None and (module_name == missing or module_name.startswith(missing + "."))


def _get_attribute(module: ModuleType, module_name: str, attribute: str, directory: str) -> object:
    obj: object = module
    parts = attribute.split(".")
    for index, part in enumerate(parts):
        owner = f"module {module_name!r}"
        if index:
            owner = repr(f"{module_name}:{'.'.join(parts[:index])}")
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LoadError(f"{owner} has no attribute {part!r}") from None
        except Exception as exc:
            raise LoadError(
                f"an exception was raised while looking up {part!r} on {owner}: "
                f"{_describe(exc, directory)}"
            ) from exc
    return obj


# -- resolving ------------------------------------------------------------------------------


def _is_servable(obj: object, site_type: type, resource_type: type) -> bool:
    return isinstance(obj, (site_type, resource_type)) or _is_resource_like(obj)


def _is_resource_like(obj: object) -> bool:
    # A class has these methods too (unbound), but it is a factory, not a resource.
    return (
        not isinstance(obj, type)
        and callable(getattr(obj, "render", None))
        and callable(getattr(obj, "getChildWithDefault", None))
    )


def _as_site(obj: object, site_type: type[S], make_site: Callable[[Any], S]) -> S:
    if isinstance(obj, site_type):
        return obj
    return make_site(obj)


def _call_factory(factory: Callable[[], object], name: str) -> object:
    try:
        return factory()
    except (Exception, SystemExit) as exc:
        raise LoadError(
            f"an exception was raised while calling {name}: {_describe(exc, os.getcwd())}"
        ) from exc


def _kind(obj: object) -> str:
    if obj is None:
        return "None"
    if isinstance(obj, type):
        return f"the class {obj.__qualname__}"
    type_name = type(obj).__qualname__
    article = "an" if type_name[:1].lower() in "aeiou" else "a"
    return f"{article} {type_name}"


# -- describing errors ----------------------------------------------------------------------


def _describe(exc: BaseException, directory: str) -> str:
    """``ValueError: boom (app.py:7)``: the exception and where in the application it came."""
    message = _one_line(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    location = _location(exc.__traceback__, directory)
    return f"{text} ({location})" if location else text


def _describe_syntax(exc: SyntaxError, directory: str) -> str:
    message = _one_line(exc.msg or "invalid syntax")
    if exc.filename and not exc.filename.startswith("<"):
        location: str | None = f"{_display_path(exc.filename, directory)}:{exc.lineno}"
    else:
        location = _location(exc.__traceback__, directory)
    return f"{message} ({location})" if location else message


def _one_line(value: object) -> str:
    lines = str(value).strip().splitlines()
    if not lines:
        return ""
    return lines[0] + (" ..." if len(lines) > 1 else "")


def _location(tb: TracebackType | None, directory: str) -> str | None:
    """The deepest frame of application code, or else the deepest frame outside hive."""
    frames = [
        (filename, lineno)
        for filename, lineno in _frames(tb)
        if not filename.startswith("<") and os.path.abspath(filename) != _THIS_FILE
    ]
    application = [frame for frame in frames if not _is_library(frame[0])]
    chosen = application or frames
    if not chosen:
        return None
    filename, lineno = chosen[-1]
    return f"{_display_path(filename, directory)}:{lineno}"


def _frames(tb: TracebackType | None) -> Iterator[tuple[str, int]]:
    while tb is not None:
        yield tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next


def _is_library(filename: str) -> bool:
    path = os.path.abspath(filename)
    parts = path.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    return path.startswith(_LIBRARY_DIRS)


def _display_path(filename: str, directory: str) -> str:
    path = os.path.abspath(filename)
    if path.startswith(os.path.join(directory, "")):
        return os.path.relpath(path, directory)
    return path
