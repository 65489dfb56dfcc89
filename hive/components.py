"""Adapters and componentized objects, with ``twisted.python.components``'s names.

``registerAdapter(Counter, Session, ICounter)`` registers in hive's global adapter registry
(a zope.interface ``AdapterRegistry``), and an adapter hook makes ``ICounter(obj)`` find
it, as Twisted's does. A `Componentized` object (hive's ``Session`` is one) keeps the
adapters made for it, so ``ICounter(session)`` is the same object each time.

Sessions live in a store every worker shares: see hive.session for which components
last beyond a request (plain data ones, kept in the session's JSON) and which stay in one
worker's memory.
"""

from __future__ import annotations

from typing import Any

from zope.interface import declarations, interface
from zope.interface.adapter import AdapterRegistry

__all__ = [
    "ALLOW_DUPLICATES",
    "Adapter",
    "CannotAdapt",
    "Componentized",
    "getAdapterFactory",
    "getRegistry",
    "globalRegistry",
    "proxyForInterface",
    "qual",
    "registerAdapter",
]

#: Whether registerAdapter may replace an adapter registered before (Twisted's switch).
ALLOW_DUPLICATES = False

globalRegistry = AdapterRegistry()

#: What adapting raises when no adapter fits (Twisted's alias).
CannotAdapt = TypeError


def _declaration(origin: Any) -> Any:
    # A class adapts through what it implements; an interface adapts as itself.
    if isinstance(origin, interface.InterfaceClass):
        return origin
    return declarations.implementedBy(origin)  # type: ignore[no-untyped-call]


def registerAdapter(adapterFactory: Any, origInterface: Any, *interfaceClasses: Any) -> None:
    """Make ``adapterFactory(obj)`` the adapter to each of ``interfaceClasses`` for objects
    providing ``origInterface`` (an interface, or a class: its instances)."""
    if not interfaceClasses:
        raise ValueError("registerAdapter needs at least one interface to adapt to")
    origin = _declaration(origInterface)
    for target in interfaceClasses:
        factory = globalRegistry.registered([origin], target)
        if factory is not None and not ALLOW_DUPLICATES:
            raise ValueError(f"an adapter ({factory}) was already registered.")
    for target in interfaceClasses:
        globalRegistry.register([origin], target, "", adapterFactory)


def getAdapterFactory(fromInterface: Any, toInterface: Any, default: Any) -> Any:
    """The adapter factory registered from ``fromInterface`` (or class) to
    ``toInterface``, or ``default``. Only hive's registry is looked in."""
    factory = globalRegistry.lookup1(  # type: ignore[attr-defined]
        _declaration(fromInterface), toInterface
    )
    return default if factory is None else factory


def getRegistry() -> AdapterRegistry:
    """hive's global adapter registry."""
    return globalRegistry


def _hook(target: Any, obj: Any) -> Any:
    factory = globalRegistry.lookup1(  # type: ignore[attr-defined]
        declarations.providedBy(obj), target
    )
    return None if factory is None else factory(obj)


interface.adapter_hooks.append(_hook)


def qual(target: Any) -> str:
    """An interface's (or class's) dotted name, the key components are kept under."""
    name = getattr(target, "__qualname__", None) or target.__name__
    return f"{target.__module__}.{name}"


class Adapter:
    """A base for adapters: keeps the adapted object as ``original``.

    ``temporaryAdapter``: a Componentized object does not keep it; ``multiComponent``: it
    is kept for every interface its class provides and was registered for.
    """

    temporaryAdapter = False
    multiComponent = True

    def __init__(self, original: Any) -> None:
        self.original = original

    def __conform__(self, target: Any) -> Any:
        conform = getattr(self.original, "__conform__", None)
        return conform(target) if conform is not None else None

    def isuper(self, iface: Any, adapter: Any) -> Any:
        return self.original.isuper(iface, adapter)


class Componentized:
    """An object that keeps the adapters (components) made for it, one per interface."""

    def __init__(self) -> None:
        self._adapterCache: dict[str, Any] = {}

    def locateAdapterClass(self, klass: Any, interfaceClass: Any, default: Any) -> Any:
        return getAdapterFactory(klass, interfaceClass, default)

    def setAdapter(self, interfaceClass: Any, adapterClass: Any) -> None:
        """Keep ``adapterClass(self)`` as the component for ``interfaceClass``."""
        self.setComponent(interfaceClass, adapterClass(self))

    def addAdapter(self, adapterClass: Any, ignoreClass: bool = False) -> Any:
        """``addComponent(adapterClass(self))``; returns the new component."""
        adapter = adapterClass(self)
        self.addComponent(adapter, ignoreClass)
        return adapter

    def setComponent(self, interfaceClass: Any, component: Any) -> None:
        """Keep ``component`` for ``interfaceClass``."""
        self._adapterCache[qual(interfaceClass)] = component

    def addComponent(self, component: Any, ignoreClass: bool = False) -> None:
        """Keep ``component`` for each interface it provides whose registered adapter for
        this class is the component's class (every interface, with ``ignoreClass``)."""
        for provided in declarations.providedBy(component):
            if ignoreClass or (
                self.locateAdapterClass(self.__class__, provided, None) == component.__class__
            ):
                self._adapterCache[qual(provided)] = component

    def unsetComponent(self, interfaceClass: Any) -> None:
        """Forget the component for ``interfaceClass`` (KeyError if there is none)."""
        del self._adapterCache[qual(interfaceClass)]

    def removeComponent(self, component: Any) -> list[Any]:
        """Forget ``component`` for every interface; the interfaces (their names, since
        hive does not import code named by data)."""
        removed = []
        for key, value in list(self._adapterCache.items()):
            if value is component:
                del self._adapterCache[key]
                removed.append(key)
        return removed

    def getComponent(self, interface: Any, default: Any = None) -> Any:
        """The component for ``interface``: kept, or made by the registered adapter
        (and kept, unless it is a ``temporaryAdapter``); ``default`` if none fits."""
        key = qual(interface)
        if key in self._adapterCache:
            return self._adapterCache[key]
        adapter = interface.__adapt__(self)
        if adapter is None:
            return default
        if not getattr(adapter, "temporaryAdapter", False):
            self._adapterCache[key] = adapter
            if getattr(adapter, "multiComponent", False):
                self.addComponent(adapter)
        return adapter

    def __conform__(self, interface: Any) -> Any:
        return self.getComponent(interface)


class _ProxyDescriptor:
    """Reads, writes and deletes an attribute of the proxy's original."""

    def __init__(self, name: str, originalAttribute: str) -> None:
        self.name = name
        self.originalAttribute = originalAttribute

    def __get__(self, proxy: Any, owner: Any = None) -> Any:
        if proxy is None:
            return self
        return getattr(getattr(proxy, self.originalAttribute), self.name)

    def __set__(self, proxy: Any, value: Any) -> None:
        setattr(getattr(proxy, self.originalAttribute), self.name, value)

    def __delete__(self, proxy: Any) -> None:
        delattr(getattr(proxy, self.originalAttribute), self.name)


def proxyForInterface(iface: Any, originalAttribute: str = "original") -> type:
    """A class whose instances pass what ``iface`` declares on to their original (made
    with ``Proxy(original)``); subclass it to change some of it."""

    def __init__(self: Any, original: Any) -> None:
        setattr(self, originalAttribute, original)

    contents: dict[str, object] = {"__init__": __init__}
    for name in iface:
        contents[name] = _ProxyDescriptor(name, originalAttribute)
    proxy = type(f"(Proxy for {qual(iface)})", (object,), contents)
    # mypy-zope's classImplements wants a class it can see; this one is made at run time.
    declarations.classImplements(proxy, iface)  # type: ignore[misc]
    return proxy
