"""Element and the ``renderer`` decorator, with Twisted's names and semantics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from zope.interface import implementer

from hive.error import MissingRenderMethod, MissingTemplateLoader, UnexposedMethodError
from hive.iweb import IRenderable, IRequest, ITemplateLoader
from hive.template._tags import Flattenable, Tag

__all__ = ["Element", "Expose", "renderer"]

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., object])

_NO_DEFAULT: Any = object()


class Expose:
    """Marks methods as usable for one purpose, and finds them again by name.

    ``renderer`` is one: ``@renderer`` on a method lets templates name it in
    ``t:render``; a method without it cannot be reached from a template.
    """

    def __call__(self, f: _F, /, *funcObjs: Callable[..., object]) -> _F:
        for function in (f, *funcObjs):
            exposed: list[Expose] = getattr(function, "exposedThrough", [])
            exposed.append(self)
            function.exposedThrough = exposed  # type: ignore[attr-defined]
        return f

    @overload
    def get(self, instance: object, methodName: str) -> Callable[..., Any]: ...

    @overload
    def get(self, instance: object, methodName: str, default: _T) -> Callable[..., Any] | _T: ...

    def get(self, instance: object, methodName: str, default: object = _NO_DEFAULT) -> object:
        """The method ``methodName`` of ``instance`` if it was exposed through this;
        otherwise ``default``, or UnexposedMethodError without one."""
        method = getattr(instance, methodName, None)
        if self not in getattr(method, "exposedThrough", ()):
            if default is _NO_DEFAULT:
                raise UnexposedMethodError(self, methodName)
            return default
        return method


renderer = Expose()
renderer.__doc__ = """Decorate a method of an Element to make it a render method.

    class Greeting(Element):
        loader = XMLString('<p xmlns:t="..." t:render="hello" />')

        @renderer
        def hello(self, request, tag):
            return tag("Hello, world.")

A render method gets the request and a clone of the tag that named it, and returns
anything flattenable: the tag (filled, extended), other tags, a list or generator of
them, or an awaitable (``async def`` works) of any of these.
"""


@implementer(IRenderable)
class Element:
    """A part of a page: a template (``loader``) and the render methods it names.

    Elements nest: one in a tree or returned by a renderer is rendered in place, with
    its own template and renderers.
    """

    loader: ITemplateLoader | None = None

    def __init__(self, loader: ITemplateLoader | None = None) -> None:
        if loader is not None:
            self.loader = loader

    def lookupRenderMethod(self, name: str) -> Callable[[Any, Tag], Flattenable]:
        """The render method ``name``; MissingRenderMethod if there is no such @renderer."""
        method: Any = getattr(self, name, None)  # renderer.get, without a call: it is hot
        if renderer not in getattr(method, "exposedThrough", ()):
            raise MissingRenderMethod(self, name)
        found: Callable[[Any, Tag], Flattenable] = method
        return found

    def render(self, request: IRequest | None) -> Flattenable:
        """The template's nodes (what the flattener writes for this element)."""
        loader = self.loader
        if loader is None:
            raise MissingTemplateLoader(self)
        return loader.load()
