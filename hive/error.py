"""Exceptions of the resource model and of templates, with the names of ``twisted.web.error``."""

from __future__ import annotations

import reprlib
import traceback
from collections.abc import Sequence
from typing import Any

__all__ = [
    "Error",
    "FlattenerError",
    "MissingRenderMethod",
    "MissingTemplateLoader",
    "RenderError",
    "UnexposedMethodError",
    "UnfilledSlot",
    "UnsupportedMethod",
    "UnsupportedType",
]


class Error(Exception):
    """An HTTP error a resource may raise: ``code`` is the status to answer."""

    def __init__(self, code: int, message: bytes | None = None, response: bytes | None = None):
        super().__init__(code, message, response)
        self.status = code
        self.message = message
        self.response = response

    def __str__(self) -> str:
        message = self.message.decode("latin-1") if self.message else ""
        return f"{self.status} {message}".strip()


class UnsupportedMethod(Exception):
    """The resource does not render the request's method; the server answers 405."""

    def __init__(self, allowedMethods: Sequence[bytes], *args: object) -> None:
        super().__init__(allowedMethods, *args)
        self.allowedMethods = list(allowedMethods)

    def __str__(self) -> str:
        allowed = b", ".join(self.allowedMethods).decode("ascii", "replace")
        return f"expected one of {allowed}"


# -- templates (hive.template) ---------------------------------------------------------------


class RenderError(Exception):
    """Base of the errors a template's rendering can raise."""


class MissingRenderMethod(RenderError):
    """A ``t:render`` directive names a method the element does not expose with @renderer."""

    def __init__(self, element: object, renderName: str) -> None:
        super().__init__(element, renderName)
        self.element = element
        self.renderName = renderName

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__!r}: {self.element!r} had no render method named"
            f" {self.renderName!r}"
        )


class MissingTemplateLoader(RenderError):
    """An Element was rendered without a ``loader``."""

    def __init__(self, element: object) -> None:
        super().__init__(element)
        self.element = element

    def __repr__(self) -> str:
        return f"{type(self).__name__!r}: {self.element!r} had no loader"


class UnexposedMethodError(Exception):
    """A method was asked for through an Expose (``renderer.get``) that it does not expose."""


class UnfilledSlot(Exception):
    """A slot without a default was flattened with no value filled for it."""


class UnsupportedType(Exception):
    """An object of a type the flattener cannot flatten was met in the tree."""


_ROOTS_SHOWN = 20
_roots_repr = reprlib.Repr()
_roots_repr.maxlevel = 3
_roots_repr.maxstring = 60
_roots_repr.maxother = 60


class FlattenerError(Exception):
    """Flattening failed: ``_exception`` is what was raised, ``_roots`` the objects being
    flattened at the time (outermost first), ``_traceback`` where (``traceback.extract_tb``).

    Its text is a template traceback: the tags (with file, line and column when they came
    from a file) and the Python frames that led to the error.
    """

    def __init__(
        self, exception: BaseException, roots: list[Any], traceback: traceback.StackSummary
    ) -> None:
        super().__init__(exception, roots, traceback)
        self._exception = exception
        self._roots = roots
        self._traceback = traceback

    def _formatRoot(self, obj: Any) -> str:
        if isinstance(obj, str | bytes):
            if len(obj) > 40:
                cut: Any = "<...>" if isinstance(obj, str) else b"<...>"
                return ascii(obj[:20] + cut + obj[-20:])
            return ascii(obj)
        name = getattr(obj, "tagName", None)
        if isinstance(name, str | bytes) and hasattr(obj, "lineNumber"):
            shown = name if isinstance(name, str) else name.decode("ascii", "replace")
            if obj.lineNumber is None:
                return f"Tag <{shown}>"
            where = obj.filename or "<string>"
            return f'File "{where}", line {obj.lineNumber}, column {obj.columnNumber}, in "{shown}"'
        # Bounded: a root may be a list nested ten thousand deep.
        return _roots_repr.repr(obj)

    def __repr__(self) -> str:
        roots = self._roots
        if len(roots) > 2 * _ROOTS_SHOWN:  # a tree thousands deep: its two ends
            hidden = len(roots) - 2 * _ROOTS_SHOWN
            lines = [self._formatRoot(root) for root in roots[:_ROOTS_SHOWN]]
            lines.append(f"... {hidden} more ...")
            lines += [self._formatRoot(root) for root in roots[-_ROOTS_SHOWN:]]
        else:
            lines = [self._formatRoot(root) for root in roots]
        shown = "".join(f"  {line}\n" for line in lines)
        frames = "".join(
            line + "\n"
            for entry in traceback.format_list(self._traceback)
            for line in entry.splitlines()
        )
        exception = self._exception
        return (
            f"Exception while flattening:\n{shown}{frames}{type(exception).__name__}: {exception}\n"
        )

    def __str__(self) -> str:
        return repr(self)
