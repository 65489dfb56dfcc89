"""Resource scripts, with the names of ``twisted.web.script``.

An ``.rpy`` file is Python that binds the name ``resource``; `ResourceScript` runs it and
serves that resource.  As in Twisted the script runs again for every request unless it
calls ``cache()`` (then the first run's resource is kept, per worker), and its globals
hold ``registry`` (the `hive.static.Registry` of the File that found it), ``cache`` and
``recache``.  An ``.epy`` file (`PythonScript`) runs with ``request`` in its globals and
writes its own page.

These run code found in the served directory with the server's rights: ``hive run --path
DIR`` only gives ``.rpy``, ``.epy`` and ``.cgi`` files to them with ``--scripts``; without
it such files are neither run nor served.  Each worker runs its own copy of a script.
"""

from __future__ import annotations

import os
import traceback
from html import escape
from typing import Any

from hive import http
from hive.iweb import IRequest
from hive.resource import NOT_DONE_YET, NoResource, Resource
from hive.static import Registry, _safe_name

__all__ = [
    "AlreadyCached",
    "CacheScanner",
    "PythonScript",
    "ResourceScript",
    "ResourceScriptDirectory",
    "ResourceScriptWrapper",
    "ResourceTemplate",
    "noRsrc",
    "rpyNoResource",
]

rpyNoResource = """<p>You forgot to assign to the variable "resource" in your script. \
For example:</p>
<pre>
# MyCoolWebApp.rpy

import mygreatresource

resource = mygreatresource.MyGreatResource()
</pre>
"""


class _ScriptError(Resource):
    """500 with a fixed HTML explanation (hive's own text, so not escaped)."""

    isLeaf = True

    def __init__(self, brief: str, html: str) -> None:
        super().__init__()
        self.brief = brief
        self.html = html

    def render(self, request: IRequest) -> bytes:
        request.setResponseCode(http.INTERNAL_SERVER_ERROR)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        page = (
            f"<html><head><title>500 - {escape(self.brief)}</title></head>"
            f"<body><h1>{escape(self.brief)}</h1>{self.html}</body></html>\n"
        )
        return page.encode("utf-8")


#: What a script that binds no ``resource`` serves.
noRsrc = _ScriptError("Whoops! Internal Error", rpyNoResource)


class AlreadyCached(Exception):
    """Raised by ``cache()`` in a script whose resource is cached: stops the run."""


class CacheScanner:
    """The ``cache`` and ``recache`` of a script's globals."""

    def __init__(self, path: str, registry: Registry) -> None:
        self.path = path
        self.registry = registry
        self.doCache = 0

    def cache(self) -> None:
        cached = self.registry.getCachedPath(self.path)
        if cached is not None:
            raise AlreadyCached(cached)
        self.recache()

    def recache(self) -> None:
        self.doCache = 1


def _run_file(path: str, namespace: dict[str, Any]) -> None:
    with open(path, "rb") as file:
        source = file.read()
    exec(compile(source, path, "exec"), namespace, namespace)


def ResourceScript(path: str, registry: Registry) -> Any:
    """The resource the script at ``path`` binds to ``resource`` (a processor for File)."""
    scanner = CacheScanner(path, registry)
    namespace: dict[str, Any] = {
        "__file__": path,
        "__name__": "__rpy__",
        "resource": noRsrc,
        "registry": registry,
        "cache": scanner.cache,
        "recache": scanner.recache,
    }
    try:
        _run_file(path, namespace)
    except AlreadyCached as cached:
        return cached.args[0]
    resource = namespace["resource"]
    if scanner.doCache and resource is not noRsrc:
        registry.cachePath(path, resource)
    return resource


def ResourceTemplate(path: str, registry: Registry) -> Any:
    """A Quixote PTL template (``.rtl``) that binds ``resource``; needs ``quixote``."""
    try:
        from quixote.ptl import ptl_compile
    except ImportError:
        try:
            from quixote import ptl_compile  # Quixote 2
        except ImportError:
            raise RuntimeError(
                f"{path}: ResourceTemplate needs Quixote's PTL (pip install quixote)"
            ) from None
    namespace: dict[str, Any] = {"__file__": path, "resource": noRsrc, "registry": registry}
    with open(path) as file:
        code = ptl_compile.compile_template(file, path)
    exec(code, namespace, namespace)
    return namespace["resource"]


class ResourceScriptWrapper(Resource):
    """A resource that runs the script at ``path`` for each request and delegates to it
    (``twistd web --resource-script``)."""

    def __init__(self, path: str, registry: Registry | None = None) -> None:
        super().__init__()
        self.path = path
        self.registry = registry or Registry()

    def render(self, request: IRequest) -> Any:
        return ResourceScript(self.path, self.registry).render(request)

    def getChildWithDefault(self, path: bytes, request: IRequest) -> Any:
        return ResourceScript(self.path, self.registry).getChildWithDefault(path, request)


class ResourceScriptDirectory(Resource):
    """A directory whose files are all resource scripts (subdirectories likewise); names
    that are not plain file names (``..``, NUL, slashes) are 404."""

    def __init__(self, pathname: str, registry: Registry | None = None) -> None:
        super().__init__()
        self.path = pathname
        self.registry = registry or Registry()

    def getChild(self, path: bytes, request: IRequest) -> Any:
        name = _safe_name(path)
        if not name:
            return NoResource()
        child = os.path.join(self.path, name)
        if os.path.isdir(child):
            return ResourceScriptDirectory(child, self.registry)
        if os.path.isfile(child):
            return ResourceScript(child, self.registry)
        return NoResource()

    def render(self, request: IRequest) -> bytes:
        return NoResource().render(request)


class PythonScript(Resource):
    """An ``.epy`` file: Python run with ``request`` in its globals, writing its own page
    (``request.write``).  An exception shows its traceback in the page, as in Twisted."""

    isLeaf = True

    def __init__(self, filename: str, registry: Registry) -> None:
        super().__init__()
        self.filename = filename
        self.registry = registry

    def render(self, request: IRequest) -> Any:
        namespace = {"request": request, "__file__": self.filename, "registry": self.registry}
        try:
            _run_file(self.filename, namespace)
        except FileNotFoundError:
            request.setResponseCode(http.NOT_FOUND)
            request.write(NoResource("File not found.").render(request))
        except Exception:
            request.write(f"<pre>{escape(traceback.format_exc())}</pre>".encode())
        if not request.finished:
            request.finish()
        return NOT_DONE_YET
